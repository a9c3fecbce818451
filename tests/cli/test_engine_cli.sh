#!/usr/bin/env bash
# test_engine_cli - the CLI interfaces the checks use (logits, generate, info) on
# the golden checkpoints, and their error handling (one-line errors, exit codes).
. "$(dirname "$0")/lib.sh"
require_shared
T=$(scratch engine_cli)

tol_of() { case $1 in gka*) echo 2e-2 ;; gdn) echo 2e-3 ;; *) echo 1e-4 ;; esac; }

for c in m2 gdn swa gka gka_iter10 gka_iter0; do
  G=$SHARED/golden/$c; IO=$G/inputs_and_outputs.safetensors; tol=$(tol_of $c)
  ids=$($BIN tensors ids $IO input_ids) || fail "$c: reading input_ids"
  for mode in prefill decode; do
    $BIN logits --model $G --input-ids "$ids" --out $T/$c.$mode.safetensors --mode $mode \
      || fail "$c: logits --mode $mode"
    $BIN tensors diff $T/$c.$mode.safetensors $IO:logits --tol $tol >/dev/null \
      || fail "$c: logits --mode $mode differ: $($BIN tensors diff $T/$c.$mode.safetensors $IO:logits)"
  done
  ref=$($BIN tensors ids $IO nocache_greedy_ids)
  $BIN generate --model $G --input-ids "$ids" --max-new-tokens 16 --greedy --print-ids \
    --force-ids "$ref" --logits-out $T/$c.forced.safetensors >$T/$c.forced.txt || fail "$c: forced"
  [ "$(tr ' ' ',' <$T/$c.forced.txt)" = "$ref" ] || fail "$c: --force-ids not echoed"
  $BIN tensors diff $T/$c.forced.safetensors $IO:nocache_step_logits --tol $tol >/dev/null \
    || fail "$c: teacher-forced logits differ"
  case $c in m2|gdn|swa)  # margins above tolerance at every step: greedy ids must match
    got=$($BIN generate --model $G --input-ids "$ids" --max-new-tokens 16 --greedy --print-ids)
    [ "$(echo $got | tr ' ' ',')" = "$ref" ] || fail "$c: greedy ids $got != $ref" ;;
  esac
  $BIN info --model $G --json | grep -q '"layers":\["\*"' || fail "$c: info --json"
done

# --input-ids @FILE
G=$SHARED/golden/m2
$BIN tensors ids $G/inputs_and_outputs.safetensors input_ids | tr ',' '\n' >$T/ids.txt
a=$($BIN generate --model $G --input-ids @$T/ids.txt --max-new-tokens 4 --greedy)
b=$($BIN generate --model $G --input-ids "$(tr '\n' ',' <$T/ids.txt)" --max-new-tokens 4 --greedy)
[ "$a" = "$b" ] || fail "@FILE ids differ from inline ids"
$BIN generate --model $G --input-ids 1,2,3 --max-new-tokens 3 --greedy --json | grep -q '"ids":\[' \
  || fail "generate --json"

# --prefill-chunk: the forward-call size changes the sums' order, not the result
for c in 7 1000; do
  $BIN logits --model $G --input-ids @$T/ids.txt --prefill-chunk $c --out $T/chunk$c.safetensors \
    || fail "logits --prefill-chunk $c"
done
$BIN tensors diff $T/chunk7.safetensors $T/chunk1000.safetensors --tol 1e-5 >/dev/null \
  || fail "--prefill-chunk 7 vs 1000: $($BIN tensors diff $T/chunk7.safetensors $T/chunk1000.safetensors)"

# errors: one line, exit 1 for runtime errors, 2 for usage errors
expect_fail 1 "out of range" $BIN generate --model $G --input-ids 1,5000 --max-new-tokens 2
# malformed ids (negative, not a number, empty item, overflow) are usage errors alike
expect_fail 2 "not a token id" $BIN logits --model $G --input-ids 1,-3 --out $T/x.safetensors
expect_fail 2 "not a token id" $BIN generate --model $G --input-ids 1,x --max-new-tokens 2
expect_fail 2 "item 2 is empty" $BIN generate --model $G --input-ids 1,,2 --max-new-tokens 2
expect_fail 2 "out of range \[0, 2147483647\]" $BIN generate --model $G --input-ids 99999999999999999999
expect_fail 2 "no file name" $BIN generate --model $G --input-ids @
expect_fail 1 "context overflow" $BIN generate --model $G --input-ids 1,2,3 --max-new-tokens 8 --max-context 5
expect_fail 1 "not a model directory" $BIN info --model $T/nowhere
expect_fail 2 "unknown option" $BIN generate --model $G --bogus
expect_fail 2 "required" $BIN logits --model $G
expect_fail 1 "no such file|No such file" $BIN generate --model $G --input-ids @$T/missing.txt
expect_fail 2 "prefill-chunk" $BIN generate --model $G --input-ids 1,2 --prefill-chunk -1
# numbers: one parser, ranges checked, usage errors exit 2
expect_fail 2 "threads: '100000' is not an integer in \[1, 1024\]" $BIN generate --model $G --input-ids 1 --threads 100000
expect_fail 2 "threads" $BIN generate --model $G --input-ids 1 --threads 0
expect_fail 2 "threads" $BIN generate --model $G --input-ids 1 --threads -1
expect_fail 2 "gka-num-iter" $BIN generate --model $G --input-ids 1 --gka-num-iter 100000
expect_fail 2 "max-context" $BIN generate --model $G --input-ids 1 --max-context 0
expect_fail 2 "max-new-tokens: '-1'" $BIN generate --model $G --input-ids 1 --max-new-tokens -1
expect_fail 2 "max-new-tokens: 'abc'" $BIN generate --model $G --input-ids 1 --max-new-tokens abc
expect_fail 2 "max-new-tokens: '99999999999999999999' is not an integer in" $BIN generate --model $G --input-ids 1 --max-new-tokens 99999999999999999999
expect_fail 2 "store-max-bytes: '-5' is not a size" $BIN generate --model $G --input-ids 1 --store $T/st --store-max-bytes -5
expect_fail 2 "mode" $BIN logits --model $G --input-ids 1 --out $T/x.safetensors --mode fast
echo "ok"
