#!/usr/bin/env bash
# test_example_documents - the documents example (examples/documents.c) ingests two
# documents and answers from their stored, composed states through the public API
# only; a second run finds both documents stored and gives the same answer, which
# equals `collage query` over the same ids.
. "$(dirname "$0")/lib.sh"
T=$(scratch example-docs)
EX="$(dirname "$BIN")/examples/example_documents"
[ -x "$EX" ] || fail "example not built: $EX"
$BIN mkmodel --preset tiny-gdn --out $T/m --seed 5 2>/dev/null || fail mkmodel
printf 'The first document talks about rivers and the sea.' >$T/a.txt
printf 'The second document lists numbers: 4, 8, 15, 16, 23, 42.' >$T/b.txt
"$EX" $T/m $T/store $T/a.txt $T/b.txt "Which numbers?" >$T/1.txt || fail "first run: $(cat $T/1.txt)"
"$EX" $T/m $T/store $T/a.txt $T/b.txt "Which numbers?" >$T/2.txt || fail "second run"
[ "$(grep -ac '^document .*tokens$' $T/1.txt)" = 2 ] || fail "first run: documents not both new: $(cat $T/1.txt)"
[ "$(grep -ac 'already stored' $T/2.txt)" = 2 ] || fail "second run processed a document again"
a1=$(grep -a '^answer' $T/1.txt); a2=$(grep -a '^answer' $T/2.txt)
[ -n "$a1" ] && [ "$a1" = "$a2" ] || fail "answers differ: '$a1' vs '$a2'"
# the same composition through the CLI gives the same text
ids=$(grep -a '^document' $T/1.txt | awk '{print $2}' | tr -d ':' | paste -sd,)
want=$($BIN query --model $T/m --store $T/store --docs $ids --prompt "Which numbers?" \
       --max-new-tokens 16 --greedy --backend cpu) || fail "collage query"
[ "${a1#answer (concat_kv_soup_ssm): }" = "$want" ] || fail "example '$a1' vs query '$want'"
# a GDN fuse composition works from the same stored documents
"$EX" $T/m $T/store $T/a.txt $T/b.txt "Which numbers?" concat_kv_fuse_ssm >$T/3.txt \
    || fail "fuse: $(cat $T/3.txt)"
grep -aq '^answer (concat_kv_fuse_ssm)' $T/3.txt || fail "fuse: no answer"
echo ok
