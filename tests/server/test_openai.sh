#!/usr/bin/env bash
# The official openai Python client against every endpoint of collage serve (streamed and
# whole chat and completions, tools, reasoning, documents, key, tokenize, metrics).
set -euo pipefail
source "$(dirname "$0")/pyenv.sh"
if [ "$OPENAI" != 1 ]; then
  [ "${COLLAGE_REQUIRE_OPENAI:-0}" = 1 ] && { echo "FAIL: the openai package is missing (scripts/install-deps.sh)" >&2; exit 1; }
  echo "SKIP: the openai Python package is not installed (scripts/install-deps.sh)"; exit 77
fi
exec "$PY" "$DIR/openai_suite.py"
