#!/usr/bin/env bash
# The GPU server benchmark (scripts/gpu/bench-serve.sh) rehearsed on the CPU with a tiny
# model: it runs end to end; the load has no errors, the long prompt resumes from its
# stored prefix, the query composes the 4 documents.
set -euo pipefail
source "$(dirname "$0")/pyenv.sh"
root=$(cd "$DIR/../.." && pwd)
work=${COLLAGE_TMP:-/tmp}/bench-serve.$$
rm -rf "$work"
mkdir -p "$work"
CPU=1 CL_BIN=${COLLAGE_BIN:-$root/build/collage} OUT_DIR=$work/out COLLAGE_TMP=$work PY=$PY \
  BATCH=4 CONTEXT=256 GEN=16 TTFT_PREFIX=192 TTFT_TOTAL=224 DOC_TOKENS=64 \
  bash "$root/scripts/gpu/bench-serve.sh" > "$work/log" 2>&1 || { cat "$work/log"; exit 1; }
[ -f "$work/out/serve.json" ] || { cat "$work/log"; echo "FAIL: no serve.json"; exit 1; }
"$PY" - "$work/out/serve.json" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
def check(cond, msg):
    if not cond:
        print("FAIL: " + msg, file=sys.stderr); sys.exit(1)
check(r["load"]["errors"] == 0 and r["load"]["completion_tokens"] == 4 * 16, "load %r" % r["load"])
check(all(x["cached_tokens"] >= 192 for x in r["ttft"]["runs"]), "ttft %r" % r["ttft"])
check(all(x["cached_tokens"] == 4 * 64 for x in r["docs"]["runs"]), "docs %r" % r["docs"])
print("ok: bench-serve rehearsal: %s" % json.dumps({k: r[k]["ttft_s_min"] for k in ("ttft", "docs")}))
PYEOF
rm -rf "$work"
