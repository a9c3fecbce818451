#!/usr/bin/env bash
# compose-parity.sh - composition and stored-document queries on the CUDA backend
# against the CPU backend (fp32 tiny models within 1e-4, bf16 within 2e-2), then
# `collage bench compose --backend cuda` (GPU figures for docs/PERFORMANCE.md).
# Same set-up as parity.sh: scripts/gpu/bundle.sh here, then a device call
# carrying .device. BACKENDS="cpu cpu" runs the script's logic without a GPU.
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/gpu/env.sh || exit 1
read -r A B <<<"${BACKENDS:-cpu cuda}"
T=$COLLAGE_TMP/compose-parity
rm -rf "$T" && mkdir -p "$T"
export COLLAGE_LOG=${COLLAGE_LOG:-warn}
status=0
rows=()
check() { # name tol a b
  if r=$("$CL_BIN" tensors diff "$3" "$4" --tol "$2"); then rows+=("ok   $1: $r")
  else rows+=("FAIL $1: $r"); status=1; fi
}
P=11,12,13,14,15,16; C1=$(seq 100 131 | paste -sd,); C2=$(seq 200 231 | paste -sd,); Q=7,8,9,10
printf '%s\n%s\n' "$C1" "$C2" >"$T/docs.txt"
for dt in float32 bfloat16; do
  tol=1e-4; [ $dt = bfloat16 ] && tol=2e-2
  for preset in tiny-gka tiny-gdn tiny-m2; do
    M=$T/$preset-$dt
    "$CL_BIN" mkmodel --preset $preset --dtype $dt --out "$M" --seed 3 >/dev/null 2>&1 || status=1
    for t in concat_kv_fuse_ssm concat_kv_soup_ssm; do
      for be in $A $B; do
        "$CL_BIN" compose --backend $be --model "$M" --input-ids "$C1,$C2,$Q" --prefix-ids $P \
          --suffix-ids $Q --num-chunks 2 --compose-type $t --max-new-tokens 6 --greedy \
          --force-ids 1,2,3,4,5,6 --logits-out "$T/c-$be.safetensors" >/dev/null || status=1
        docs=$("$CL_BIN" ingest --backend $be --model "$M" --store "$T/store-$be-$preset-$dt" \
          --prefix-ids $P --ids-file "$T/docs.txt" | cut -d' ' -f1 | paste -sd,) || status=1
        "$CL_BIN" query --backend $be --model "$M" --store "$T/store-$be-$preset-$dt" --docs "$docs" \
          --compose-type $t --suffix-ids $Q --max-new-tokens 6 --greedy --print-ids \
          --force-ids 1,2,3,4,5,6 --logits-out "$T/q-$be.safetensors" >/dev/null || status=1
      done
      check "compose $t $preset $dt" $tol "$T/c-$B.safetensors" "$T/c-$A.safetensors"
      check "query   $t $preset $dt" $tol "$T/q-$B.safetensors" "$T/q-$A.safetensors"
    done
  done
done
if [ -n "${OUT:-}" ] && [ "$B" = cuda ]; then
  timeout ${BENCH_TIMEOUT:-240} "$CL_BIN" bench compose --backend cuda \
    --preset ${BENCH_PRESETS:-small-gka,small-gdn,small-m2} --json > "$OUT/compose-bench.json" \
    2>"$OUT/compose-bench.err" || status=1
  "$CL_BIN" bench compose --backend cuda --preset tiny-gka --docs 2,16 2>/dev/null | tail -8
fi
echo "== compose/query parity ($B vs $A)"
printf '%s\n' "${rows[@]}"
exit $status
