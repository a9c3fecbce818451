#!/usr/bin/env bash
# test_hardening - what a new user's audit broke in the CLI stays fixed:
#  --json gives one object on stdout, also when an item fails midway (ingest under a
#  file-size limit, chat whose second turn overflows the context); the context is
#  checked before any work (generate refuses, run shortens the answer and says so);
#  compose --help lists exactly the accepted compose types; ingest prints each
#  document's id as soon as it is stored; long prompts show progress and COLLAGE_LOG=info
#  says what each step did; --store-max-bytes takes units.
. "$(dirname "$0")/lib.sh"
T=$(scratch hardening)
M=$T/m
$BIN mkmodel --preset tiny-gdn --out $M --seed 4 2>/dev/null || fail mkmodel
command -v python3 >/dev/null || fail "python3 is needed to check JSON output"
one_object() { # stdin must be exactly one JSON object (one line)
  python3 -c 'import json,sys; t=sys.stdin.read(); assert t.count("\n")==1, t; o=json.loads(t); assert isinstance(o,dict); print(json.dumps(o))'
}

# ---- --json: one object, also on failure midway ----
for i in 1 2 3; do head -c 3000 /dev/urandom | base64 -w0 >$T/doc$i.txt; done
# the store grows past 1 MiB with the second document: the limit breaks it midway
out=$( (ulimit -f 2048; $BIN ingest --model $M --store $T/st1 --json $T/doc1.txt $T/doc2.txt $T/doc3.txt) 2>$T/err)
rc=$?
[ $rc = 1 ] || fail "ingest under a file-size limit: exit $rc (want 1): $(cat $T/err)"
j=$(echo "$out" | one_object) || fail "ingest --json under a failure is not one object: $out"
echo "$j" | grep -q '"error"' || fail "ingest --json failure lacks the error: $j"
# the documents it reported as stored are in the store, and the others are not
stored=$(echo "$j" | python3 -c 'import json,sys; print(" ".join(d["id"] for d in json.load(sys.stdin)["docs"]))')
have=$($BIN store ls --store $T/st1 --kind docs --json | python3 -c 'import json,sys; print(" ".join(sorted(e["key"] for e in json.load(sys.stdin)["entries"])))')
[ "$(echo $stored | tr ' ' '\n' | sort | paste -sd' ')" = "$have" ] || fail "reported ($stored) vs stored ($have)"

# chat: the second message overflows the context
long=$(printf 'word %.0s' $(seq 1 300))
out=$($BIN chat --model $M --store $T/st2 --json --max-context 400 --max-new-tokens 8 \
      --message "hello" --message "$long" 2>$T/err)
rc=$?
[ $rc = 1 ] || fail "chat overflowing its context: exit $rc: $(cat $T/err)"
j=$(echo "$out" | one_object) || fail "chat --json under a failure is not one object: $out"
echo "$j" | python3 -c 'import json,sys; o=json.load(sys.stdin); assert len(o["turns"])==1 and "context" in o["error"]["message"], o' \
  || fail "chat --json: want the first turn and the overflow error: $j"

# ---- the context is checked before any work ----
ids=$(seq -s, 1 300)
expect_fail 1 "context overflow: 300 prompt tokens \+ 200 new tokens exceed the context of 400" \
  $BIN generate --model $M --store $T/st3 --input-ids $ids --max-new-tokens 200 --max-context 400
[ -z "$($BIN store ls --store $T/st3 --json 2>/dev/null | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["entries"]) or "")' 2>/dev/null)" ] \
  || fail "generate stored states before refusing the context"
# run shortens the answer to fit, and says so
COLLAGE_LOG=warn $BIN run --model $M --no-store --prompt "$long" --max-context 950 --max-new-tokens 100 --greedy \
  --json >$T/run.json 2>$T/run.err || fail "run with a long prompt: $(cat $T/run.err)"
grep -q "limited to" $T/run.err || fail "run did not say that the answer was shortened: $(cat $T/run.err)"
python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); assert o["max_new_tokens"] < 100 and o["prompt_tokens"] + o["max_new_tokens"] - 1 <= 950, o' $T/run.json \
  || fail "run --json: budget not shortened: $(cat $T/run.json)"

# ---- compose --help lists exactly what is accepted ----
types=$($BIN compose --help | sed -n 's/.*--compose-type T *one of: //p' | tr -d ',')
[ -n "$types" ] || fail "compose --help lists no compose types"
for t in $types; do
  err=$($BIN compose --model $M --input-ids 5,6,7,8,9,10 --compose-type $t --num-chunks 2 \
        --max-new-tokens 1 --greedy 2>&1 >/dev/null) || fail "listed type $t is refused: $err"
done
echo "$types" | grep -qw sw_only && fail "compose --help lists sw_only"

# ---- ingest prints each id as soon as its document is stored ----
printf 'first document' >$T/a.txt; printf 'second document' >$T/b.txt
$BIN ingest --model $M --store $T/st4 $T/a.txt $T/b.txt >$T/ing.txt 2>/dev/null || fail ingest
[ "$(wc -l <$T/ing.txt)" = 2 ] || fail "ingest: want one line per document: $(cat $T/ing.txt)"
grep -Eq "^[0-9a-f]{32} [0-9]+ $T/a.txt$" $T/ing.txt || fail "ingest line format: $(cat $T/ing.txt)"
$BIN ingest --model $M --store $T/st4 $T/a.txt >$T/ing2.txt 2>/dev/null || fail "ingest again"
grep -q " (stored) " $T/ing2.txt || fail "a stored document is not marked: $(cat $T/ing2.txt)"

# ---- progress and info ----
COLLAGE_PROGRESS=1 $BIN generate --model $M --no-store --input-ids $ids --max-new-tokens 1 \
  --prefill-chunk 32 >/dev/null 2>$T/prog.err || fail "generate with progress"
grep -q "prefill (tokens)" $T/prog.err || fail "no prefill progress: $(cat $T/prog.err)"
COLLAGE_PROGRESS=0 COLLAGE_LOG=info $BIN generate --model $M --store $T/st5 --input-ids $ids \
  --max-new-tokens 2 >/dev/null 2>$T/info.err || fail "generate with COLLAGE_LOG=info"
grep -q "prompt of 300 tokens" $T/info.err || fail "COLLAGE_LOG=info says nothing: $(cat $T/info.err)"
grep -q "prefill (tokens)" $T/info.err && fail "COLLAGE_PROGRESS=0 still drew progress"

# ---- sizes with units, one parser ----
$BIN generate --model $M --store $T/st6 --store-max-bytes 4M --input-ids 1,2,3 \
  --max-new-tokens 1 >/dev/null 2>&1 || fail "--store-max-bytes 4M refused"
$BIN store gc --store $T/st6 --max-bytes 3M >/dev/null || fail "store gc --max-bytes 3M refused"
expect_fail 2 "store-max-bytes: '-5' is not a size" $BIN generate --model $M --store $T/st6 \
  --store-max-bytes -5 --input-ids 1
echo ok
