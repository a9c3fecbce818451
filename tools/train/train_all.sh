#!/usr/bin/env bash
# train_all.sh OUTDIR [TOTAL_SECONDS] [-- ARGS for every model]
# Trains the m2 retrieval model, then gdn and gka primed from it (GPU if present) within
# TOTAL_SECONDS of wall clock (default 470), writing OUTDIR/{gdn,m2,gka}/ (the model
# folders collage loads, with reference logits), OUTDIR/summary.json and OUTDIR/RESULTS.md.
# Needs python3 with torch, numpy, safetensors, tokenizers; no network.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 OUTDIR [TOTAL_SECONDS] [-- ARGS]" >&2; exit 2; }
out=$1; shift
total=470
if [ $# -ge 1 ] && [ "$1" != "--" ]; then total=$1; shift; fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$(dirname "$0")"
export PYTHONUNBUFFERED=1
exec "${PYTHON:-python3}" -m collage_train.train_all "$out" --total-s "$total" "$@"
