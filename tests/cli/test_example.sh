#!/usr/bin/env bash
# test_example - the embedding example (examples/embed_generate.c) works through
# the public API: the second run restores its prompt from the store.
. "$(dirname "$0")/lib.sh"
T=$(scratch example)
EX="$(dirname "$BIN")/examples/example_embed_generate"
[ -x "$EX" ] || fail "example not built: $EX"
$BIN mkmodel --preset tiny-m2 --out $T/m --seed 2 2>/dev/null || fail mkmodel
"$EX" $T/m $T/store "An example prompt" >$T/1.txt || fail "first run"
"$EX" $T/m $T/store "An example prompt" >$T/2.txt || fail "second run"
grep -q ", 0 from the store" $T/1.txt || fail "first run claims a cached prefix: $(head -1 $T/1.txt)"
grep -q ", 0 from the store" $T/2.txt && fail "second run did not reuse the store"
[ "$(tail -n +2 $T/1.txt)" = "$(tail -n +2 $T/2.txt)" ] || fail "text differs between runs"
echo ok
