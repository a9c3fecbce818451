#!/usr/bin/env bash
# test_tp_cli - --tp on the model verbs: documents ingested at --tp 2 are found stored
# (same keys) at --tp 1 and --tp 4, and a query over them gives the same logits at every
# tp (1e-5); stored prefixes are reused across tp sizes; bad --tp values fail clearly.
. "$(dirname "$0")/../cli/lib.sh"
T=$(scratch tp_cli)
for preset in tiny-gka tiny-gdn tiny-m2 tiny-swa; do
  M=$T/$preset; S=$T/store-$preset
  $BIN mkmodel --preset $preset --out $M --seed 4 2>/dev/null || fail mkmodel
  P=11,12,13,14,15,16; Q=7,8,9,10
  printf '%s\n%s\n' "$(seq 100 170 | paste -sd,)" "$(seq 200 230 | paste -sd,)" >$T/docs.txt
  docs=$($BIN ingest --model $M --store $S --tp 2 --threads 2 --prefix-ids $P --ids-file $T/docs.txt \
    | cut -d' ' -f1 | paste -sd,) || fail "$preset: ingest at tp 2"
  for tp in 1 4; do
    again=$($BIN ingest --model $M --store $S --tp $tp --threads 2 --prefix-ids $P --ids-file $T/docs.txt)
    [ "$(echo "$again" | grep -c '(stored)')" = 2 ] || fail "$preset: tp $tp recomputed: $again"
  done
  for tp in 1 2 4; do
    $BIN query --model $M --store $S --tp $tp --threads 2 --docs $docs --compose-type concat_kv_soup_ssm \
      --suffix-ids $Q --max-new-tokens 4 --greedy --print-ids --force-ids 1,2,3,4 \
      --logits-out $T/q$tp.safetensors >/dev/null || fail "$preset: query at tp $tp"
  done
  for tp in 2 4; do
    $BIN tensors diff $T/q$tp.safetensors $T/q1.safetensors --tol 1e-5 >/dev/null \
      || fail "$preset: query at tp $tp != tp 1: $($BIN tensors diff $T/q$tp.safetensors $T/q1.safetensors)"
  done
  # a prompt's prefix stored at tp 4 is reused at tp 1
  ids=$(seq 20 150 | paste -sd,)
  $BIN generate --model $M --store $S --tp 4 --threads 2 --input-ids $ids --max-new-tokens 2 --greedy \
    --print-ids >/dev/null || fail "$preset: generate at tp 4"
  out=$($BIN generate --model $M --store $S --tp 1 --threads 2 --input-ids $ids --max-new-tokens 2 \
    --greedy --json) || fail "$preset: generate at tp 1"
  echo "$out" | grep -Eq '"cached_tokens": ?[1-9]' || fail "$preset: no prefix reuse across tp: $out"
done
M=$T/tiny-gdn
expect_fail 2 "--tp" $BIN logits --model $M --input-ids 1,2 --out $T/x.safetensors --tp 0
expect_fail 2 "--tp" $BIN logits --model $M --input-ids 1,2 --out $T/x.safetensors --tp 65
expect_fail 1 "num_attention_heads 4 does not split across 3" \
  $BIN logits --model $M --backend cpu --input-ids 1,2 --out $T/x.safetensors --tp 3 --no-store
echo ok
