#!/usr/bin/env bash
# Reuse: a conversation's next turn prefills only its new tokens; a second process on the
# same store resumes the first request from it with identical output.
set -euo pipefail
source "$(dirname "$0")/pyenv.sh"
exec "$PY" "$DIR/restart_suite.py"
