#!/usr/bin/env bash
# test_prefix_cli - prefix reuse across processes: the second run of a prompt
# restores it from the store (cached_tokens > 0) and gives the ids and logits (1e-5)
# of an uncached run; a chat's second turn resumes after the first turn's prompt
# and answer; `store verify` is clean afterwards.
. "$(dirname "$0")/lib.sh"
T=$(scratch prefix_cli)
M=$T/model; S=$T/store
$BIN mkmodel --preset tiny-m2 --out $M --seed 3 2>/dev/null || fail mkmodel
ids=$(seq 5 3 300 | head -90 | paste -sd,)
json_field() { sed "s/.*\"$1\":\([0-9]*\).*/\1/"; }

$BIN generate --model $M --input-ids "$ids" --max-new-tokens 8 --greedy --json \
  --logits-out $T/plain.safetensors >$T/plain.json || fail "uncached run"
$BIN generate --model $M --input-ids "$ids" --max-new-tokens 8 --greedy --json --store $S >$T/r1.json \
  || fail "first stored run"
$BIN generate --model $M --input-ids "$ids" --max-new-tokens 8 --greedy --json --store $S \
  --logits-out $T/r2.safetensors >$T/r2.json || fail "second stored run"
[ "$(json_field cached_tokens <$T/r1.json)" = 0 ] || fail "first run claims cached tokens"
c2=$(json_field cached_tokens <$T/r2.json)
[ "$c2" -gt 0 ] || fail "second run: cached_tokens = $c2"
[ "$(json_field prefill_tokens <$T/r2.json)" = $((90 - c2)) ] || fail "prefill_tokens"
ids_of() { sed 's/.*"ids":\[\([0-9,]*\)\].*/\1/' "$1"; }
[ "$(ids_of $T/plain.json)" = "$(ids_of $T/r2.json)" ] || fail "resumed ids differ"
$BIN tensors diff $T/r2.safetensors $T/plain.safetensors --tol 1e-5 >/dev/null \
  || fail "resumed logits differ: $($BIN tensors diff $T/r2.safetensors $T/plain.safetensors)"

# chat: turn 2 resumes after turn 1 (prompt + answer), also across processes
printf 'Hello there\n' | $BIN chat --model $M --store $S --no-think --max-new-tokens 6 --greedy --json >$T/c1.json \
  || fail "chat turn 1"
$BIN mkmodel --preset tiny-gka --out $T/chatm --seed 1 2>/dev/null || fail mkmodel
printf 'Hello there\nWhat next?\n' | $BIN chat --model $T/chatm --store $S --no-think --max-new-tokens 6 \
  --greedy --json >$T/c2.json || fail "chat two turns"
p1=$(sed 's/.*"turns":\[{"prompt_tokens":\([0-9]*\).*/\1/' $T/c2.json)
c2=$(sed 's/.*},{"prompt_tokens":[0-9]*,"cached_tokens":\([0-9]*\).*/\1/' $T/c2.json)
[ "$c2" -ge "$p1" ] || fail "chat turn 2 cached $c2 < turn 1 prompt $p1"
# a later process continuing the same conversation resumes too
printf 'Hello there\nWhat next?\n' | $BIN chat --model $T/chatm --store $S --no-think --max-new-tokens 6 \
  --greedy --json >$T/c3.json || fail "chat again"
c1=$(sed 's/.*"turns":\[{"prompt_tokens":[0-9]*,"cached_tokens":\([0-9]*\).*/\1/' $T/c3.json)
[ "$c1" -gt 0 ] || fail "a new process did not resume turn 1"
$BIN store verify --store $S >/dev/null || fail "store verify"
echo ok
