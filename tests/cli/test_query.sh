#!/usr/bin/env bash
# test_query - query-time composition of stored documents equals in-memory
# composition of the same (equal-length) chunks, for every compose type that
# applies to stored documents; documents are never prefilled again (ingest says
# "stored"); documents from another prefix or model are refused clearly.
. "$(dirname "$0")/lib.sh"
T=$(scratch query)
for preset in tiny-gka tiny-m2 tiny-gdn; do
  M=$T/$preset; S=$T/store-$preset
  $BIN mkmodel --preset $preset --out $M --seed 4 2>/dev/null || fail mkmodel
  P=11,12,13,14,15,16; C1=$(seq 100 120 | paste -sd,); C2=$(seq 200 220 | paste -sd,); Q=7,8,9,10
  printf '%s\n%s\n' "$C1" "$C2" >$T/docs.txt
  docs=$($BIN ingest --model $M --store $S --prefix-ids $P --ids-file $T/docs.txt | cut -d' ' -f1 | paste -sd,)
  [ $preset = tiny-gka ] && gka_docs=$docs
  again=$($BIN ingest --model $M --store $S --prefix-ids $P --ids-file $T/docs.txt)
  echo "$again" | grep -q "(stored)" || fail "$preset: re-ingest recomputed: $again"
  types="concat_kv_soup_ssm concat_kv_only concat_kv_fuse_ssm concat_kv_caso_ssm sw_soup_ssm"
  for t in $types; do
    $BIN compose --model $M --input-ids "$C1,$C2,$Q" --prefix-ids $P --suffix-ids $Q --num-chunks 2 \
      --compose-type $t --max-new-tokens 6 --greedy --print-ids --logits-out $T/mem.safetensors >$T/mem.txt \
      || fail "$preset $t: compose"
    $BIN query --model $M --store $S --docs $docs --compose-type $t --suffix-ids $Q --max-new-tokens 6 \
      --greedy --print-ids --force-ids "$(tr ' ' ',' <$T/mem.txt)" --logits-out $T/q.safetensors >$T/q.txt \
      || fail "$preset $t: query"
    $BIN tensors diff $T/q.safetensors $T/mem.safetensors --tol 1e-5 >/dev/null \
      || fail "$preset $t: stored != in-memory: $($BIN tensors diff $T/q.safetensors $T/mem.safetensors)"
  done
  # a document ingested with another prefix is refused
  other=$($BIN ingest --model $M --store $S --prefix-ids 1,2 --ids-file $T/docs.txt | head -1 | cut -d' ' -f1)
  expect_fail 1 "another prefix" $BIN query --model $M --store $S --docs ${docs%%,*},$other --suffix-ids $Q
done
# another model: refused
$BIN mkmodel --preset tiny-gka --out $T/other --seed 99 2>/dev/null
docs=$gka_docs
expect_fail 1 "another model" $BIN query --model $T/other --store $T/store-tiny-gka --docs ${docs%%,*} --suffix-ids 7,8
expect_fail 1 "not in the store" $BIN query --model $T/tiny-gka --store $T/store-tiny-gka --docs 0123456789abcdef0123456789abcdef --suffix-ids 7
expect_fail 2 "32 hex" $BIN query --model $T/tiny-gka --docs xyz --suffix-ids 7
expect_fail 2 "full KV" $BIN query --model $T/tiny-gka --docs ${docs%%,*} --compose-type full_kv_only --suffix-ids 7
echo ok
