#!/usr/bin/env bash
# A client that disconnects (streaming, waiting for a whole answer, or queued) cancels its
# request at once; /metrics shows every KV page and state slot free again.
set -euo pipefail
source "$(dirname "$0")/pyenv.sh"
exec "$PY" "$DIR/disconnect_suite.py"
