# test_cli_args - `collage compose` refuses bad arguments with a one-line error
# and the CLI exit codes (2 usage, 1 runtime), and runs every compose type on a
# tiny mkmodel model (no ../shared needed).
. "$(dirname "$0")/../cli/lib.sh"

D=$(scratch compose-args)
"$BIN" mkmodel --preset tiny-gdn --out "$D/m" --seed 3 >/dev/null 2>&1 || fail "mkmodel"
M="$D/m"
IDS=5,6,7,8,9,10,11,12,13,14,15,16
base() { "$BIN" compose --model "$M" --input-ids $IDS --suffix-ids 15,16 --max-new-tokens 2 --greedy "$@"; }

expect_fail 2 "num-chunks: .0. is not an integer in \[1, 65536\]" base --compose-type concat_kv_soup_ssm --num-chunks 0
expect_fail 2 "unknown compose type 'concat_soup'" base --compose-type concat_soup --num-chunks 2
expect_fail 2 "compose-type is required" base --num-chunks 2
expect_fail 2 "longer than --input-ids" "$BIN" compose --model "$M" --input-ids 1,2 --suffix-ids 3,1,2 \
  --compose-type concat_kv_only
expect_fail 2 "must be the last 2 ids" "$BIN" compose --model "$M" --input-ids 1,2,3 --suffix-ids 1,2 \
  --compose-type concat_kv_only
expect_fail 1 "out of range" "$BIN" compose --model "$M" --input-ids 1,2,99999,4 \
  --compose-type concat_kv_only
expect_fail 1 "out of range" base --compose-type concat_kv_only --prefix-ids 1,99999
expect_fail 1 "out of range" base --compose-type concat_kv_only --newline-id 99999
expect_fail 2 "min-prepend" base --compose-type concat_kv_only --min-prepend -1
expect_fail 2 "input-ids is required" "$BIN" compose --model "$M" --compose-type concat_kv_only

for t in full_kv_only full_kv_soup_ssm full_kv_fuse_ssm full_kv_caso_ssm concat_kv_only \
         concat_kv_soup_ssm concat_kv_fuse_ssm concat_kv_caso_ssm sw_kv_only sw_soup_ssm \
         sw_fuse_ssm sw_caso_ssm; do
  out=$(base --compose-type $t --num-chunks 3 --sequential-positions --sw-mask-query) || fail "$t failed"
  [ "$(echo "$out" | wc -w)" = 2 ] || fail "$t: expected 2 ids, got '$out'"
done
json=$(base --compose-type sw_soup_ssm --num-chunks 3 --json) || fail "json run"
[ "$(echo "$json" | wc -l)" = 1 ] || fail "--json must print one line"
echo "$json" | grep -q '"hide":\[1,9\]' || fail "sw hide range in --json: $json"
echo "$json" | grep -q '"newline_id":' || fail "newline id in --json: $json"
echo "ok"
