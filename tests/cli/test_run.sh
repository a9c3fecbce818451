#!/usr/bin/env bash
# test_run - `collage run` on a tiny mkmodel model through the real tokenizer and
# chat-template path: the printed text is exactly the decoded emitted ids, a seed
# makes sampling repeatable, --json reports ids/text/timings, thinking on/off.
. "$(dirname "$0")/lib.sh"
T=$(scratch run)
M=$T/model
$BIN mkmodel --preset tiny-gka --out $M --seed 5 2>/dev/null || fail "mkmodel"

for mode in "--chat" "--prompt"; do
  $BIN run --model $M $mode "Tell me a story about the sea." --max-new-tokens 24 --seed 9 \
    --temperature 0.9 >$T/a.txt || fail "run $mode"
  $BIN run --model $M $mode "Tell me a story about the sea." --max-new-tokens 24 --seed 9 \
    --temperature 0.9 >$T/b.txt || fail "run $mode (again)"
  cmp -s $T/a.txt $T/b.txt || fail "$mode: same seed gave different text"
  $BIN run --model $M $mode "Tell me a story about the sea." --max-new-tokens 24 --seed 9 \
    --temperature 0.9 --json >$T/a.json || fail "run $mode --json"
  grep -q '"decode_tok_s":' $T/a.json || fail "--json lacks timings"
  ids=$(sed 's/.*"ids":\[\([0-9,]*\)\].*/\1/' $T/a.json)
  [ -n "$ids" ] || fail "--json lacks ids"
  # the printed text (without run's final newline) == decode(ids), ids minus a final EOS
  eos=$(echo '<|im_end|>' | tr -d '\n' | $BIN tokenize --tokenizer $M/tokenizer.json)
  last=${ids##*,}
  [ "$last" = "$eos" ] && ids=${ids%,*}
  echo "$ids" | tr ',' ' ' | $BIN tokenize --tokenizer $M/tokenizer.json --decode >$T/dec.txt
  head -c -1 $T/a.txt >$T/a.trim
  cmp -s $T/a.trim $T/dec.txt || fail "$mode: printed text differs from decode(ids)"
done

# different seeds differ (24 tokens from a 512-token vocabulary)
$BIN run --model $M --chat "hi" --max-new-tokens 24 --seed 1 >$T/s1.txt
$BIN run --model $M --chat "hi" --max-new-tokens 24 --seed 2 >$T/s2.txt
cmp -s $T/s1.txt $T/s2.txt && fail "seeds 1 and 2 gave the same text"
# thinking off renders the empty think block into the prompt: more prompt tokens
p1=$($BIN run --model $M --chat "hi" --max-new-tokens 1 --json | sed 's/.*"prompt_tokens":\([0-9]*\).*/\1/')
p2=$($BIN run --model $M --chat "hi" --max-new-tokens 1 --no-think --json | sed 's/.*"prompt_tokens":\([0-9]*\).*/\1/')
[ "$p2" -gt "$p1" ] || fail "--no-think did not change the prompt ($p1 vs $p2)"
# stop strings cut the text
$BIN run --model $M --prompt "abc" --max-new-tokens 40 --greedy >$T/full.txt
stop=$(head -c 12 $T/full.txt | tail -c 3)
if [ -n "$stop" ]; then
  $BIN run --model $M --prompt "abc" --max-new-tokens 40 --greedy --stop "$stop" --json >$T/stop.json
  grep -q '"stop":"stop_string"' $T/stop.json || fail "--stop did not stop: $(cat $T/stop.json)"
fi
expect_fail 2 "exactly one" $BIN run --model $M
$BIN mkmodel --preset tiny-gka --out $T/notok --no-tokenizer 2>/dev/null || fail "mkmodel --no-tokenizer"
expect_fail 1 "tokenizer.json" $BIN run --model $T/notok --prompt x
echo ok
