#!/usr/bin/env bash
# test_trained_paths - the trained models answer through run, ingest + query and the server
# (tests/models/trained_paths.py; the server helpers of tests/server/srvlib.py).
set -euo pipefail
source "$(dirname "$0")/../server/pyenv.sh"
exec "$PY" "$(dirname "$0")/trained_paths.py"
