#!/usr/bin/env bash
# 64 concurrent streaming clients (16 under ASan): zero errors, bounded time and memory,
# the cache free afterwards; a full queue answers 429 with Retry-After.
set -euo pipefail
source "$(dirname "$0")/pyenv.sh"
exec "$PY" "$DIR/load_suite.py"
