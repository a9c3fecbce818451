#!/usr/bin/env bash
# quality-name.sh MODEL_DIR T K COUNT - the file name of a quality-grid question set: the
# sets depend only on the tokenizer, T, K and COUNT (seed 9000 + K), so models that share
# a tokenizer and T share them (bundle.sh makes them, quality.sh looks them up).
set -euo pipefail
[ $# -eq 4 ] || { echo "usage: $0 MODEL_DIR T K COUNT" >&2; exit 2; }
tok=$(sha256sum "$1/tokenizer.json" | cut -c1-12)
echo "q-$tok-T$2-${3}x-n$4.json"
