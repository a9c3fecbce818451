#!/usr/bin/env bash
# quality.sh - the composition-quality grid of issue 14 on the GPU machine: for each
# trained model, question sets of the retrieval task at 1T, 2T, 4T, 8T and 16T total
# context (T = the model's training context, read from its training.json; k documents
# of T tokens at kT), COUNT questions each (fresh seeds, never the training or held-out
# ones), then `collage bench quality` (plain prefill, every concat/sw compose type over
# separately prefilled documents, and the sequential-position variants of the concat
# types). Writes DIR/quality-<model>.json and a text table per model; prints the tables.
#
#   scripts/gpu/quality.sh MODELS_DIR OUT_DIR [COUNT]     # MODELS_DIR holds gdn/ m2/ gka/
# QUALITY_KINDS (default "m2 gdn gka") picks models. The question sets come from the
# bundle (CL_QUESTIONS, made by bundle.sh) when it has them, else they are generated here,
# which needs python3 with `tokenizers` (tools/train).
set -uo pipefail
[ $# -ge 2 ] || { echo "usage: $0 MODELS_DIR OUT_DIR [COUNT]" >&2; exit 2; }
models=$(cd "$1" && pwd); out=$2; count=${3:-200}
mkdir -p "$out"; out=$(cd "$out" && pwd)
cd "$(dirname "$0")/../.."
root=$(pwd)
source scripts/gpu/env.sh || exit 1
py=${PYTHON:-python3}
status=0
types=${QUALITY_TYPES:-all}
# (not QUALITY_MODELS: run-all.sh uses that name for MODELS_DIR)
for kind in ${QUALITY_KINDS:-m2 gdn gka}; do
  m=$models/$kind
  [ -f "$m/config.json" ] || { echo "quality: $m: no model"; status=1; continue; }
  T=$("$py" -c "import json,sys; print(json.load(open(sys.argv[1]))['eval']['context_T'])" \
      "$m/training.json") || { echo "quality: $m/training.json: no eval.context_T"; status=1; continue; }
  qargs=()
  for k in 1 2 4 8 16; do
    q=$out/q-$kind-${k}T.json
    carried=${CL_QUESTIONS:-/nonexistent}/$(scripts/gpu/quality-name.sh "$m" "$T" "$k" "$count")
    [ -f "$q" ] || [ ! -f "$carried" ] || cp "$carried" "$q"
    if [ ! -f "$q" ]; then
      (cd tools/train && "$py" -m collage_train.questions --context-tokens $((k * T)) \
        --docs $k --count "$count" --seed $((9000 + k)) --ids \
        --tokenizer "$m/tokenizer.json" --out "$q") >/dev/null || { status=1; continue; }
    fi
    qargs+=(--questions "$q")
  done
  echo "== $kind (T = $T)"
  COLLAGE_PROGRESS=0 timeout ${QUALITY_TIMEOUT:-500} "$CL_BIN" bench quality --model "$m" \
    "${qargs[@]}" --types "$types" --sequential --json-out "$out/quality-$kind.json" \
    > "$out/quality-$kind.txt" 2> "$out/quality-$kind.err" || status=1
  cat "$out/quality-$kind.txt"; tail -3 "$out/quality-$kind.err"
done
exit $status
