#!/usr/bin/env bash
# A few hundred malformed requests (bad JSON, wrong types, out-of-range values, unknown
# paths, oversized bodies and headers) -> 4xx naming the field; the server survives.
set -euo pipefail
source "$(dirname "$0")/pyenv.sh"
exec "$PY" "$DIR/malformed_suite.py"
