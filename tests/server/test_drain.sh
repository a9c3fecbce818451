#!/usr/bin/env bash
# SIGTERM drains in-flight streams (503 + Retry-After for new requests) and exits 0; past
# --drain-timeout, what still runs ends with an error event.
set -euo pipefail
source "$(dirname "$0")/pyenv.sh"
exec "$PY" "$DIR/drain_suite.py"
