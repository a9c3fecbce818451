# lib.sh - helpers for the CLI shell tests (sourced).
set -u
BIN=${COLLAGE_BIN:-collage}
SHARED=${COLLAGE_SHARED:-}
TMPROOT=${COLLAGE_TMP:-/tmp}

fail() { echo "FAIL: $*" >&2; exit 1; }

# Skips the test (exit 77) when ../shared is absent, fails under COLLAGE_REQUIRE_SHARED=1.
require_shared() {
  if [ -z "$SHARED" ] || [ ! -d "$SHARED/golden" ]; then
    if [ "${COLLAGE_REQUIRE_SHARED:-0}" = 1 ]; then
      fail "../shared is missing (COLLAGE_SHARED=$SHARED) and COLLAGE_REQUIRE_SHARED=1"
    fi
    echo "SKIP: ../shared not found (set COLLAGE_SHARED)"; exit 77
  fi
}

# A fresh scratch directory.
scratch() { local d="$TMPROOT/$1.$$"; rm -rf "$d"; mkdir -p "$d"; echo "$d"; }

# expect_fail CODE REGEX cmd...: the command must exit with CODE and print REGEX on stderr.
expect_fail() {
  local code=$1 re=$2; shift 2
  local err; err=$("$@" 2>&1 >/dev/null); local rc=$?
  [ "$rc" = "$code" ] || fail "expected exit $code, got $rc: $* -> $err"
  echo "$err" | grep -Eq -- "$re" || fail "expected /$re/ in: $err"
  [ "$(echo "$err" | wc -l)" -le 1 ] || fail "expected a one-line error, got: $err"
}
