# test_shared_skip - a test whose ../shared checks skip says so: it exits 77, which
# ctest (SKIP_RETURN_CODE) reports as "Skipped" rather than "Passed"; it fails under
# COLLAGE_REQUIRE_SHARED=1; and COLLAGE_SHARED is read when the tests run, not only
# when cmake configures (an empty value makes them skip).
. "$(dirname "$0")/../cli/lib.sh"
# CI runs everything with COLLAGE_REQUIRE_SHARED=1; this test sets it itself per case.
unset COLLAGE_REQUIRE_SHARED

BUILD=$(cd "$(dirname "$BIN")" && pwd)
T=$BUILD/tests/model_test_golden_load
[ -x "$T" ] || fail "no test executable $T"

COLLAGE_SHARED=/nonexistent "$T" > /dev/null 2>&1
rc=$?; [ "$rc" = 77 ] || fail "without ../shared: expected exit 77, got $rc"
COLLAGE_SHARED=/nonexistent COLLAGE_REQUIRE_SHARED=1 "$T" > /dev/null 2>&1
rc=$?; [ "$rc" != 0 ] && [ "$rc" != 77 ] || fail "COLLAGE_REQUIRE_SHARED=1: expected a failure, got $rc"

# ctest itself, in a scratch directory of its own (its logs stay out of the build's)
D=$(scratch shared_skip)
printf 'include("%s/tests/CTestTestfile.cmake")\n' "$BUILD" > "$D/CTestTestfile.cmake"
run_ctest() { ctest --test-dir "$D" -R '^model\.test_golden_load$' 2>&1; }
out=$(COLLAGE_SHARED='' run_ctest)
echo "$out" | grep -q 'model.test_golden_load .*Skipped' || fail "COLLAGE_SHARED='': not Skipped: $out"
out=$(COLLAGE_SHARED=/nonexistent run_ctest)
echo "$out" | grep -q 'model.test_golden_load .*Skipped' || fail "COLLAGE_SHARED=/nonexistent: not Skipped: $out"
out=$(COLLAGE_SHARED=/nonexistent COLLAGE_REQUIRE_SHARED=1 run_ctest)
echo "$out" | grep -q 'model.test_golden_load .*Failed' || fail "COLLAGE_REQUIRE_SHARED=1: not Failed: $out"
if [ -d "$SHARED/golden" ]; then
  out=$(run_ctest)
  echo "$out" | grep -q 'model.test_golden_load .*Passed' || fail "with ../shared: not Passed: $out"
fi
echo "ok"
