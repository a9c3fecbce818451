#!/usr/bin/env bash
# test_tp_bench - the TP benchmarks on the CPU: `bench tp-parity` matches TP 2 and 4 with
# the unsharded model for every layer type (tiny presets through the host-memory
# checkpoint and the sharded loader: 1e-5 fp32, and bf16 weights), `bench decode --tp 2
# --backend cpu` reports the per-rank bytes and the collectives' time; without GPUs
# `bench decode|prefill|tp-parity --tp 2` fail with one line; bad --tp values are refused.
. "$(dirname "$0")/../cli/lib.sh"
T=$(scratch tp_bench)
export COLLAGE_PROGRESS=0

# parity, fp32 (default tolerance 1e-5) and bf16 weights
$BIN bench tp-parity --backend cpu --preset tiny-gdn,tiny-gka,tiny-m2,tiny-swa --tp 1,2,4 \
  --threads 2 --prompt 24 --decode 3 --json-out $T/parity.json >$T/parity.txt 2>$T/parity.err \
  || fail "tp-parity fp32: $(cat $T/parity.err $T/parity.txt)"
[ "$(grep -c ' ok$' $T/parity.txt)" = 12 ] || fail "tp-parity fp32: expected 12 ok rows: $(cat $T/parity.txt)"
grep -q '"tp": 4, "prefill_rel": [0-9.e+-]*, "decode_rel"' $T/parity.json || fail "parity json: $(cat $T/parity.json)"
grep -q '"ok": true' $T/parity.json || fail "parity json not ok"
$BIN bench tp-parity --backend cpu --preset tiny-gka --dtype bfloat16 --tp 2 --threads 2 \
  --prompt 16 --decode 2 >$T/bf16.txt 2>&1 || fail "tp-parity bf16: $(cat $T/bf16.txt)"
grep -Eq '^tiny-gka +bf16 .* 3\.0e-02  ok$' $T/bf16.txt || fail "tp-parity bf16: $(cat $T/bf16.txt)"
# a tolerance that cannot hold fails the run (exit 1), the row says FAIL
$BIN bench tp-parity --backend cpu --preset tiny-gdn --tp 2 --threads 2 --prompt 8 --decode 1 \
  --tol 1e-30 >$T/tight.txt 2>$T/tight.err && fail "tp-parity: a 1e-30 tolerance passed"
grep -q 'FAIL$' $T/tight.txt || fail "tp-parity --tol 1e-30: $(cat $T/tight.txt)"

# decode --tp 2 on the CPU: per-rank figures and the collectives of a step
$BIN bench decode --backend cpu --preset tiny-gdn --tp 2 --contexts 64 --batch 2 --steps 2 \
  --settle-ms 0 --threads 2 --comm-reps 2 --json-out $T/d2.json >$T/d2.txt 2>&1 \
  || fail "bench decode --tp 2: $(cat $T/d2.txt)"
for k in '"tp": 2' '"allreduce_count": 9' '"allreduce_floats": 256' '"allgather_floats": 512' \
         '"comm_ms": ' '"rank_bytes_per_step_max": ' '"copy_GBps_per_device": \['; do
  grep -q "$k" $T/d2.json || fail "decode json lacks $k: $(cat $T/d2.json)"
done
$BIN bench decode --backend cpu --preset tiny-attn --tp 1 --contexts 64 --batch 2 --steps 2 \
  --settle-ms 0 --threads 2 --json >$T/d1.json || fail "bench decode --tp 1 --backend cpu"
grep -q '"allreduce_ms"' $T/d1.json && fail "tp 1 reports collectives"
# KV heads fewer than the ranks (tiny presets: 2) are replicated: TP 4 moves twice the KV
$BIN bench decode --backend cpu --preset tiny-attn --tp 4 --contexts 64 --batch 2 --steps 2 \
  --settle-ms 0 --threads 2 --comm-reps 1 --json >$T/d4.json || fail "bench decode --tp 4 --backend cpu"
kv1=$(grep -o '"kv_bytes": [0-9.e+]*' $T/d1.json | cut -d' ' -f2)
kv4=$(grep -o '"kv_bytes": [0-9.e+]*' $T/d4.json | cut -d' ' -f2)
awk -v a="$kv1" -v b="$kv4" 'BEGIN { exit !(b > 1.99 * a && b < 2.01 * a) }' \
  || fail "KV bytes at tp 4 ($kv4) are not twice those at tp 1 ($kv1)"

# no GPUs (or no CUDA backend): one line, exit 1 (on a GPU machine these would run)
if ! nvidia-smi -L >/dev/null 2>&1; then
  expect_fail 1 "^collage: bench decode" $BIN bench decode --tp 2
  expect_fail 1 "^collage: bench prefill" $BIN bench prefill --tp 2
  expect_fail 1 "^collage: bench tp-parity" $BIN bench tp-parity --tp 2
fi
# bad values
expect_fail 2 "--tp" $BIN bench decode --tp 0
expect_fail 2 "--tp" $BIN bench decode --tp 65
expect_fail 2 "--batch" $BIN bench decode --backend cpu --tp 2
expect_fail 2 "--tp" $BIN bench tp-parity --backend cpu --tp 2,0
expect_fail 2 "--backend" $BIN bench tp-parity --backend tpu
expect_fail 1 "does not split across 3" $BIN bench tp-parity --backend cpu --preset tiny-gdn \
  --tp 3 --threads 2
echo ok
