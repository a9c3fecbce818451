#!/usr/bin/env bash
# run-all.sh - the one GPU-machine script: parity (scripts/gpu/parity.sh), then
# the decode, prefill and reuse benchmarks (--quick unless FULL=1; SKIP_PARITY=1,
# SKIP_DECODE=1, SKIP_PREFILL=1, SKIP_REUSE=1, SKIP_SERVE=1 leave parts out), tensor
# parallelism on a machine with more than one GPU (scripts/gpu/tp.sh, QUICK unless FULL=1
# or TP_QUICK=0; SKIP_TP=1 leaves it out; its files in tp.tgz), `collage serve` over HTTP
# (scripts/gpu/bench-serve.sh), the composition-quality grid when QUALITY_MODELS=DIR
# names trained models (scripts/gpu/quality.sh), the host's store I/O (bench store) when
# STORE=1, optionally the
# decode GEMM kernel table (KERNEL_BENCH=1) and a per-op profile (PROFILE=1), and
# a short table last. Everything is logged under /tmp/collage-gpu-out; $OUT (when
# set) gets summary.txt, parity.txt, parity.log, decode.json, prefill.json,
# kernels-bench.txt and profile.txt (the device tool returns 8 files).
#
#   scripts/gpu/bundle.sh                 # here (no GPU needed)
#   device run: carry [".device"], command "scripts/gpu/run-all.sh"
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/gpu/env.sh || exit 1
out=/tmp/collage-gpu-out
mkdir -p "$out"
quick=--quick; [ "${FULL:-0}" = 1 ] && quick=
status=0
if ldd "$CL_BIN" | grep -q "not found"; then
  echo "collage: missing shared libraries:"; ldd "$CL_BIN" | grep "not found"; exit 1
fi
if [ "${SKIP_PARITY:-0}" != 1 ]; then
  PARITY_TIMEOUT=${PARITY_TIMEOUT:-300} timeout ${PARITY_TIMEOUT:-300} scripts/gpu/parity.sh \
    > "$out/parity.txt" 2>&1 || status=1
fi
date -u +"%Y-%m-%dT%H:%M:%SZ" > "$out/date.txt"
export COLLAGE_LOG=${COLLAGE_LOG:-warn}
if [ "${SKIP_DECODE:-0}" != 1 ]; then
  timeout ${DECODE_TIMEOUT:-400} "$CL_BIN" bench decode $quick ${DECODE_ARGS:-} \
    --json-out "$out/decode.json" > "$out/decode.txt" 2>"$out/decode.err" || status=1
fi
if [ "${SKIP_PREFILL:-0}" != 1 ]; then
  timeout ${PREFILL_TIMEOUT:-400} "$CL_BIN" bench prefill $quick ${PREFILL_ARGS:-} \
    --json-out "$out/prefill.json" > "$out/prefill.txt" 2>"$out/prefill.err" || status=1
fi
if [ "${SKIP_REUSE:-0}" != 1 ]; then # composed queries, prefix hits, ingest vs prefill (8B)
  timeout ${REUSE_TIMEOUT:-400} "$CL_BIN" bench reuse $quick ${REUSE_ARGS:-} --dir "$COLLAGE_TMP" \
    --json-out "$out/reuse.json" > "$out/reuse.txt" 2>"$out/reuse.err" || status=1
fi
if [ "${STORE:-0}" = 1 ]; then # the host's store I/O: writer with / without early writeback,
  # streamed verified reads at 1-16 threads, each next to write+fsync / memcpy (no GPU)
  TMPDIR=$COLLAGE_TMP timeout ${STORE_TIMEOUT:-240} "$CL_BIN" bench store --snap-mib 1024 \
    --snap-count 2 --kv-count 64 --stream-mib 1280 --stream-threads 1,4,16 \
    > "$out/store.txt" 2>&1 || status=1
fi
if [ "${SKIP_SERVE:-0}" != 1 ]; then # collage serve over HTTP vs bench decode, TTFTs
  OUT_DIR=$out/serve timeout ${SERVE_TIMEOUT:-400} scripts/gpu/bench-serve.sh \
    > "$out/serve.txt" 2>&1 || status=1
fi
ngpu=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
if [ "${SKIP_TP:-0}" != 1 ] && [ "$ngpu" -gt 1 ]; then # tensor parallelism (scripts/gpu/tp.sh)
  TP_OUT_DIR=$out/tp QUICK=${TP_QUICK:-$([ "${FULL:-0}" = 1 ] && echo 0 || echo 1)} OUT= \
    timeout ${TP_TIMEOUT:-900} scripts/gpu/tp.sh > "$out/tp.txt" 2>&1 || status=1
fi
if [ -n "${QUALITY_MODELS:-}" ]; then # composition quality of trained models (issue 14)
  timeout ${QUALITY_ALL_TIMEOUT:-500} scripts/gpu/quality.sh "$QUALITY_MODELS" "$out/quality" \
    ${QUALITY_COUNT:-200} > "$out/quality.txt" 2>&1 || status=1
fi
if [ "${KERNEL_BENCH:-0}" = 1 ]; then # decode GEMM paths, us and TB/s per shape and row count
  timeout 200 "$CL_TESTS/cuda_test_kernels" --bench > "$out/kernels-bench.txt" 2>&1 || status=1
fi
if [ "${PROFILE:-0}" = 1 ]; then # per-op device time of one decode and one prefill point
  for b in 64 1; do
    COLLAGE_CUDA_PROFILE=1 timeout 100 "$CL_BIN" bench decode --preset ${PROFILE_PRESETS:-gka-8b,m2-8b} \
      --contexts 16384 --batch $b --steps 3 --num-iter 30 >> "$out/profile.txt" 2>&1
  done
  COLLAGE_CUDA_PROFILE=1 timeout 150 "$CL_BIN" bench prefill --preset ${PROFILE_PRESETS:-gka-8b,m2-8b} \
    --lengths 16384 --num-iter 30 >> "$out/profile.txt" 2>&1
fi
echo "== $(cat "$out/date.txt") $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null)"
if [ -f "$out/parity.txt" ]; then
  echo "== parity"; sed -n '/== parity summary/,$p' "$out/parity.txt" | grep -vE " ok$" | head -40
  echo "($(grep -c ' ok$' "$out/parity.txt") checks ok)"
fi
{
[ -f "$out/decode.txt" ] && { echo "== decode";  cat "$out/decode.txt";  tail -3 "$out/decode.err"; }
[ -f "$out/prefill.txt" ] && { echo "== prefill"; cat "$out/prefill.txt"; tail -3 "$out/prefill.err"; }
[ -f "$out/reuse.txt" ] && { echo "== reuse"; cat "$out/reuse.txt"; tail -3 "$out/reuse.err"; }
[ -f "$out/serve.txt" ] && { echo "== serve"; tail -15 "$out/serve.txt"; }
[ -f "$out/store.txt" ] && { echo "== store"; cat "$out/store.txt"; }
[ -f "$out/quality.txt" ] && { echo "== quality"; cat "$out/quality.txt"; }
[ -f "$out/tp/summary.txt" ] && cat "$out/tp/summary.txt"
} | tee "$out/summary.txt"
if [ -n "${OUT:-}" ]; then
  cp "$out/parity.txt" "$out/summary.txt" "$out/decode.json" "$out/prefill.json" "$OUT/" 2>/dev/null
  cp "$out/reuse.json" "$OUT/" 2>/dev/null
  [ -d "$out/serve" ] && tar -czf "$OUT/serve.tgz" -C "$out" serve serve.txt 2>/dev/null
  [ -d "$out/quality" ] && tar -czf "$OUT/quality.tgz" -C "$out" --exclude 'q-*.json' quality quality.txt
  [ -d "$out/tp" ] && tar -czf "$OUT/tp.tgz" -C "$out" tp tp.txt
  cp "$out/parity.log" "$OUT/" 2>/dev/null; cp "$out/profile.txt" "$OUT/" 2>/dev/null
  cp "$out/kernels-bench.txt" "$OUT/" 2>/dev/null
fi
exit $status
