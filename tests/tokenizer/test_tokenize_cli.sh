# test_tokenize_cli - `collage tokenize` from the command line: ids on one line,
# stdin taken byte for byte, --no-special, --decode writing exact bytes, and
# one-line errors with exit 1 (bad input) or 2 (usage). The expected Qwen3 ids
# were produced by Hugging Face tokenizers 0.23.
. "$(dirname "$0")/../cli/lib.sh"

D=$(scratch tokenize_cli)

# tok INPUT_FILE ARGS...: runs the verb with the file on stdin.
tok() { local in=$1; shift; "$BIN" tokenize "$@" < "$in"; }

# expect_ids INPUT ARGS... -- WANT: the printed line must be exactly WANT + "\n".
expect_ids() {
  local text=$1 want=$2; shift 2
  printf '%s' "$text" > "$D/in"
  tok "$D/in" "$@" > "$D/out" || fail "tokenize $* failed on '$text'"
  printf '%s\n' "$want" > "$D/want"
  cmp -s "$D/out" "$D/want" || fail "tokenize $* on '$text': got '$(cat "$D/out")', want '$want'"
}

# expect_roundtrip TOKENIZER INPUT_FILE: decode(encode(x)) == x byte for byte.
expect_roundtrip() {
  tok "$2" --tokenizer "$1" > "$D/ids" || fail "encode $2"
  tok "$D/ids" --tokenizer "$1" --decode > "$D/back" || fail "decode $2"
  cmp -s "$2" "$D/back" || fail "round trip of $2 through $1 differs"
}

# ---- the tiny tokenizer that mkmodel writes (no ../shared needed) ----
"$BIN" mkmodel --preset tiny-gka --out "$D/tiny" > /dev/null 2>&1 || fail "mkmodel tiny-gka"
TT=$D/tiny/tokenizer.json
printf 'The keeper wrote:\n\t<|im_start|>user\nhello, world! 123<|im_end|>\n' > "$D/t1"
expect_roundtrip "$TT" "$D/t1"
printf 'no newline at the end' > "$D/t2"
expect_roundtrip "$TT" "$D/t2"
printf '' | "$BIN" tokenize --tokenizer "$TT" > "$D/out" || fail "empty input"
[ "$(od -An -c "$D/out" | tr -d ' ')" = '\n' ] || fail "empty input must print just a newline"
printf '' | "$BIN" tokenize --tokenizer "$TT" --decode > "$D/out" || fail "empty decode"
[ ! -s "$D/out" ] || fail "empty decode must print nothing"

# ---- usage errors: exit 2 ----
expect_fail 2 "--tokenizer is required" "$BIN" tokenize
expect_fail 2 "unknown option '--bogus'" "$BIN" tokenize --tokenizer "$TT" --bogus
expect_fail 2 "unexpected argument" "$BIN" tokenize --tokenizer "$TT" extra
"$BIN" tokenize --help | grep -q -- "--no-special" || fail "--help"

# ---- runtime errors: exit 1, one line naming the culprit ----
printf 'x' > "$D/x"
expect_fail 1 "^collage: /nonexistent/tokenizer.json: " tok "$D/x" --tokenizer /nonexistent/tokenizer.json
printf '{"model": {"type": "BPE", "vocab": {' > "$D/broken.json"
expect_fail 1 "^collage: .*broken.json: malformed JSON at line 1, column" tok "$D/x" --tokenizer "$D/broken.json"
printf '{"model": {"type": "Unigram", "vocab": []}}' > "$D/unigram.json"
expect_fail 1 "model type 'Unigram' is not yet supported" tok "$D/x" --tokenizer "$D/unigram.json"
# merges but no model.vocab (the audit's repro: deleting the vocab crashed, exit 139)
printf '{"model": {"type": "BPE", "merges": [["a", "b"]]}, "decoder": {"type": "ByteLevel"}}' > "$D/novocab.json"
expect_fail 1 "^collage: .*novocab.json: model.vocab is missing" tok "$D/x" --tokenizer "$D/novocab.json"
printf '1 2 99999' > "$D/bad_id"
expect_fail 1 "^collage: token id 99999 is not in the vocabulary" tok "$D/bad_id" --tokenizer "$TT" --decode
printf '12 abc' > "$D/bad_int"
expect_fail 1 "^collage: stdin: item 2 .'abc'. is not a token id" tok "$D/bad_int" --tokenizer "$TT" --decode
printf '@/etc/hostname' > "$D/at"
expect_fail 1 "^collage: stdin: item 0 is not an integer" tok "$D/at" --tokenizer "$TT" --decode
printf '5 -3' > "$D/neg"
expect_fail 1 "item 2 .'-3'. is not a token id" tok "$D/neg" --tokenizer "$TT" --decode
printf 'ok \377 no' > "$D/bad_utf8"
expect_fail 1 "^collage: stdin: invalid UTF-8 at byte 3 of the text" tok "$D/bad_utf8" --tokenizer "$TT"

# ---- the Qwen3 tokenizer ----
require_shared
Q=$SHARED/assets/qwen3-tokenizer/tokenizer.json
expect_ids 'Hello world' '9707 1879' --tokenizer "$Q"
CHAT=$(printf '<|im_start|>user\nHi<|im_end|>\n<think>\n\n</think>\n\n_')
CHAT=${CHAT%_}
expect_ids "$CHAT" '151644 872 198 13048 151645 198 151667 271 151668 271' --tokenizer "$Q"
expect_ids "$CHAT" '27 91 318 4906 91 29 872 198 13048 27 91 318 6213 91 397 13708 766 1339 522 26865 1339' --tokenizer "$Q" --no-special
MIXED=$(printf "  x\t\n\n123 can't WE'LL\r\n_")
MIXED=${MIXED%_}
expect_ids "$MIXED" '220 856 15799 16 17 18 646 944 19677 6 4086 319' --tokenizer "$Q"
expect_ids "$(printf '\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x98\x80 na\xc3\xafve e\xcc\x81')" \
  '101059 102819 90316 94880 586 3958' --tokenizer "$Q"
expect_ids '' '' --tokenizer "$Q"

# --decode writes the exact bytes, no newline added; commas and newlines separate too.
printf '151644 872 198\n13048,151645 198' > "$D/ids"
tok "$D/ids" --tokenizer "$Q" --decode > "$D/out" || fail "decode"
printf '<|im_start|>user\nHi<|im_end|>\n' > "$D/want"
cmp -s "$D/out" "$D/want" || fail "decode gave '$(cat "$D/out")'"
printf '%s' "$CHAT" > "$D/chat"
expect_roundtrip "$Q" "$D/chat"
expect_roundtrip "$Q" "$D/t1"
printf '151669' > "$D/gap_id"
expect_fail 1 "token id 151669 is not in the vocabulary" tok "$D/gap_id" --tokenizer "$Q" --decode
echo "PASS"
