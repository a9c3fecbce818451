#!/usr/bin/env bash
# test_trained_models - every model under models/ (trained by tools/train: m2, gdn, gka)
# loads in collage, its tokenizer gives the reference prompt's ids, and collage's logits (prefill and decode
# paths) and greedy ids match the PyTorch reference saved beside the model (fp32 logits
# computed in float64 from the same bf16 weights) to 1e-4 relative.
. "$(dirname "$0")/../cli/lib.sh"
MODELS=$(cd "$(dirname "$0")/../.." && pwd)/models
T=$(scratch trained_models)

n=0
for M in "$MODELS"/*/; do
  M=${M%/}; name=$(basename "$M")
  [ -f "$M/config.json" ] || continue
  REF=$M/reference.safetensors
  [ -f "$REF" ] || fail "$name: no reference.safetensors beside the model"
  ids=$($BIN tensors ids "$REF" input_ids) || fail "$name: reading input_ids"
  echo "$ids" | tr ',' '\n' >"$T/$name.ids"
  tok=$($BIN tokenize --tokenizer "$M/tokenizer.json" <"$M/reference_prompt.txt" | tr ' ' ',') \
    || fail "$name: tokenize"
  [ "$tok" = "$ids" ] || fail "$name: tokenizer ids differ from the reference's: $tok"
  for mode in prefill decode; do
    $BIN logits --no-store --model "$M" --input-ids "@$T/$name.ids" --mode $mode \
      --out "$T/$name.$mode.safetensors" || fail "$name: logits --mode $mode"
    $BIN tensors diff "$T/$name.$mode.safetensors" "$REF:logits" --tol 1e-4 >/dev/null \
      || fail "$name: $mode logits differ: $($BIN tensors diff "$T/$name.$mode.safetensors" "$REF:logits")"
  done
  want=$($BIN tensors ids "$REF" greedy_ids)
  got=$($BIN generate --no-store --model "$M" --input-ids "@$T/$name.ids" --max-new-tokens 5 \
    --greedy --ignore-eos --print-ids | tr ' ' ',') || fail "$name: generate"
  [ "$got" = "$want" ] || fail "$name: greedy ids $got, reference $want"
  n=$((n + 1))
done
[ "$n" -ge 3 ] || fail "expected the 3 trained models (m2, gdn, gka) under $MODELS, found $n"
echo "ok ($n models)"
