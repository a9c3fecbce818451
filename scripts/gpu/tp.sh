#!/usr/bin/env bash
# tp.sh - tensor parallelism on a multi-GPU machine, in one call (issue 15):
#   abort   NCCL abort and recovery (cuda_test_tp_abort) and the tiny-preset TP tests
#           through NCCL at TP 1/2/4 (cuda_test_tp);
#   parity  `collage bench tp-parity`: TP 2/4/8 logits against the unsharded model for
#           gdn-32b and gka-32b with random bf16 weights (prefill and batched decode;
#           tolerance 3e-2 of the largest logit, see bench/bench_tp_parity.c);
#   decode  `collage bench decode --tp N` for N in 1 2 4 8 (up to the GPU count), the
#           presets at num_iter 30, contexts 16K/32K/64K/128K, memory-full batch and
#           batch 1: tok/s next to the bandwidth limit of N GPUs, the all-reduce time
#           per step, and the reference's TP8 figures (16K: GKA 6,810, GDN 8,133 tok/s).
# Prints progress, then a table and the issue's targets last. Files under
# /tmp/collage-gpu-out/tp; with $OUT set: $OUT/tp-summary.txt and $OUT/tp.tgz (all).
#
# Environment (subsets, so that each device call stays within its 10 minutes):
#   QUICK=1           16K context only, 8 decode steps; TP sizes 1 and the GPU count
#   TP_PARTS=LIST     any of abort,parity,decode (default all three), and prefill
#                     (`bench prefill --tp N`, TP_LENGTHS, default 8192,32768)
#   TP_SIZES="1 8"    decode TP sizes (default 1 2 4 8, those <= the GPU count)
#   TP_PARITY_SIZES   parity TP sizes (default 2 4 8, <= the GPU count)
#   TP_PRESETS="gdn-32b gka-32b"   TP_CONTEXTS=16384,32768   TP_STEPS=N
#   TP_DECODE_TIMEOUT (s per `bench decode` run, default 500), TP_PARITY_TIMEOUT (500)
#   TP_DECODE_ARGS, TP_PARITY_ARGS: more arguments (last, so they win), e.g. --settle-ms 0
# A run that only summarises what earlier runs left: TP_PARTS=none.
#
#   scripts/gpu/bundle.sh                           # here (no GPU needed)
#   device run (nvidia-h200-x8): carry [".device"], command "QUICK=1 scripts/gpu/tp.sh"
#   then: TP_PARTS=decode TP_SIZES=8 scripts/gpu/tp.sh, TP_PARTS=decode TP_SIZES="2 4" ...
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
source scripts/gpu/env.sh || exit 1
export NCCL_NVLS_ENABLE=0 # never NVLink multicast on these machines (device KINDS.md)
export COLLAGE_LOG=${COLLAGE_LOG:-warn}
out=${TP_OUT_DIR:-/tmp/collage-gpu-out/tp}
mkdir -p "$out"
t_start=$(date +%s)
log() { echo "[tp +$(( $(date +%s) - t_start ))s] $*"; }
ngpu=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
quick=${QUICK:-0}
parts=${TP_PARTS:-abort,parity,decode}
has_part() { case ",$parts," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
upto() { # the sizes of $1 that are <= the GPU count (and > $2), each once
  local s r=" "
  for s in $1; do
    [ "$s" -le "$ngpu" ] && [ "$s" -gt "$2" ] && [[ "$r" != *" $s "* ]] && r="$r$s "
  done
  echo $r
}
if [ "$quick" = 1 ]; then
  def_sizes="1 $ngpu"; contexts=${TP_CONTEXTS:-16384}; steps=${TP_STEPS:-8}
else
  def_sizes="1 2 4 8"; contexts=${TP_CONTEXTS:-16384,32768,65536,131072}; steps=${TP_STEPS:-}
fi
sizes=$(upto "${TP_SIZES:-$def_sizes}" 0)
psizes=$(upto "${TP_PARITY_SIZES:-2 4 8}" 1)
presets=${TP_PRESETS:-gdn-32b gka-32b}
status=0
log "$ngpu GPU(s): $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | sort | uniq -c | xargs)"
log "parts $parts; decode sizes: ${sizes:-none}; parity sizes: ${psizes:-none}; presets $presets; contexts $contexts${steps:+; steps $steps}"
[ "$ngpu" -ge 1 ] || { echo "tp: no GPU visible"; exit 1; }

if has_part abort; then
  log "NCCL abort and recovery (cuda_test_tp_abort)"
  if timeout 300 "$CL_TESTS/cuda_test_tp_abort" > "$out/abort.log" 2>&1; then
    echo "ok   cuda_test_tp_abort: $(grep -c 'returned' "$out/abort.log") abort(s) returned" | tee "$out/abort.txt"
  else
    echo "FAIL cuda_test_tp_abort (rc $?): $(grep -m1 -iE 'fail|error' "$out/abort.log")" | tee "$out/abort.txt"
    status=1
  fi
  log "tiny presets through NCCL at TP 1/2/4 vs unsharded (cuda_test_tp)"
  if timeout 300 "$CL_TESTS/cuda_test_tp" > "$out/tp-test.log" 2>&1; then
    echo "ok   cuda_test_tp: $(grep -c 'tp [0-9] (nccl)' "$out/tp-test.log") checks" | tee -a "$out/abort.txt"
  else
    echo "FAIL cuda_test_tp: $(grep -m1 -iE 'fail|error' "$out/tp-test.log")" | tee -a "$out/abort.txt"
    status=1
  fi
fi

if has_part parity && [ -n "$psizes" ]; then
  pargs=(); [ "$quick" = 1 ] && pargs=(--prompt 32 --decode 4)
  log "tp-parity: TP $psizes vs TP 1, $presets (random weights; the host checkpoint takes the model's size in RAM)"
  timeout "${TP_PARITY_TIMEOUT:-500}" "$CL_BIN" bench tp-parity --backend cuda \
    --preset "$(echo $presets | tr ' ' ,)" --tp "$(echo $psizes | tr ' ' ,)" "${pargs[@]}" \
    --json-out "$out/tp-parity.json" ${TP_PARITY_ARGS:-} > "$out/tp-parity.txt" 2> "$out/tp-parity.err"
  rc=$?
  cat "$out/tp-parity.txt"
  [ $rc -ne 0 ] && { status=1; echo "tp-parity: rc $rc: $(grep -m1 collage: "$out/tp-parity.err")"; }
elif has_part parity; then
  log "tp-parity: skipped (needs 2 GPUs or more)"
fi

if has_part decode; then
  for n in $sizes; do
    for p in $presets; do
      f=$out/decode-$p-tp$n
      log "bench decode --tp $n --preset $p (contexts $contexts)"
      timeout "${TP_DECODE_TIMEOUT:-500}" "$CL_BIN" bench decode --preset "$p" --num-iter 30 \
        --tp "$n" --contexts "$contexts" ${steps:+--steps $steps} --json-out "$f.json" \
        ${TP_DECODE_ARGS:-} > "$f.txt" 2> "$f.err"
      rc=$?
      cat "$f.txt"
      [ $rc -ne 0 ] && { status=1; echo "bench decode --tp $n $p: rc $rc: $(grep -m1 collage: "$f.err")"; }
    done
  done
fi

if has_part prefill; then
  for n in $sizes; do
    f=$out/prefill-tp$n
    log "bench prefill --tp $n --preset $(echo $presets | tr ' ' ,) (lengths ${TP_LENGTHS:-8192,32768})"
    timeout "${TP_DECODE_TIMEOUT:-500}" "$CL_BIN" bench prefill --preset "$(echo $presets | tr ' ' ,)" \
      --num-iter 30 --tp "$n" --lengths "${TP_LENGTHS:-8192,32768}" --json-out "$f.json" \
      > "$f.txt" 2> "$f.err"
    rc=$?
    cat "$f.txt"
    [ $rc -ne 0 ] && { status=1; echo "bench prefill --tp $n: rc $rc: $(grep -m1 collage: "$f.err")"; }
  done
fi

# ---- summary: parity rows, the decode table, the issue's targets ----
summary() {
  echo "== tensor parallelism ($ngpu GPUs; $(date -u +%Y-%m-%dT%H:%M:%SZ))"
  [ -f "$out/abort.txt" ] && cat "$out/abort.txt"
  local f
  for f in "$out"/prefill-tp*.txt; do
    [ -f "$f" ] || continue
    echo "-- $(basename "$f" .txt) (limit: FLOPs of all ranks / (N x the GEMM rate of GPU 0))"
    grep -vE "^(device|tensor parallel)" "$f"
  done
  if [ -f "$out/tp-parity.txt" ]; then
    echo "-- parity (TP N vs TP 1; rel = largest |logit difference| / largest |logit|)"
    grep -E "^(preset|[a-z0-9-]+ +(bf16|fp32|f16) )" "$out/tp-parity.txt"
  fi
  local files
  files=$(ls "$out"/decode-*-tp*.json 2>/dev/null)
  [ -n "$files" ] || return 0
  echo "-- decode (limit: bytes per step of all ranks / (N x copy bandwidth of one GPU);"
  echo "   comm: the step's all-reduces + logits all-gather run alone; x ref: vs the reference's TP8 at 16K)"
  printf '%-8s %4s %3s %7s %5s %6s %10s %10s %7s %7s %8s %6s\n' preset iter tp context batch n \
    tok/s limit % "x ref" "comm ms" comm%
  # shellcheck disable=SC2086
  awk '
    function get(f,   m) { if (match($0, "\"" f "\": \"?[^,}\"]*")) { m = substr($0, RSTART, RLENGTH); sub(/^[^:]*: "?/, "", m); return m } return "" }
    FNR == 1 { tp = 1 }
    /"tp": [0-9]+, "copy_GBps_per_device"/ { tp = get("tp") }
    /"preset": / {
      p = get("preset"); ctx = get("context"); b = get("batch"); t = get("tokens_per_s")
      pct = get("pct_of_limit"); lim = get("limit_tokens_per_s"); cm = get("comm_ms"); cp = get("comm_pct_of_step")
      ref = (p ~ /^gdn-32b/ ? 8133 : p ~ /^gka-32b/ && get("num_iter") == 30 ? 6810 : 0)
      xr = (ref > 0 && ctx == 16384) ? sprintf("%.2fx", t / ref) : "-"
      kind = (b == 1) ? "1" : "full"
      printf "%-8s %4d %3d %7d %5s %6d %10.1f %10.1f %6.1f%% %7s %8s %6s\n", p, get("num_iter"), tp, ctx, kind, b, t, lim, pct, xr,
             cm == "" ? "-" : sprintf("%.3f", cm), cp == "" ? "-" : sprintf("%.1f%%", cp)
      if (tp == 8 && ctx == 16384 && p ~ /^gdn-32b/ && kind == "full")
        tgt[++nt] = sprintf("gdn-32b TP8 16K memory-full: %.0f tok/s = %.2fx 8,133 (target >= 1.2x) and %.1f%% of the limit (target >= 80%%): %s",
                            t, t / 8133, pct, (t >= 1.2 * 8133 && pct >= 80) ? "MET" : "MISSED")
      if (tp == 8 && kind == "1")
        tgt[++nt] = sprintf("%s TP8 batch 1 at %d: %.1f%% of the limit, all-reduce included (target >= 60%%): %s",
                            p, ctx, pct, pct >= 60 ? "MET" : "MISSED")
    }
    END {
      if (nt) { print "-- targets"; for (i = 1; i <= nt; i++) print tgt[i] }
      else print "-- targets: no TP8 figures in this run"
    }' $files
}
summary | tee "$out/summary.txt"
if [ -n "${OUT:-}" ]; then
  cp "$out/summary.txt" "$OUT/tp-summary.txt"
  tar -czf "$OUT/tp.tgz" -C "$(dirname "$out")" "$(basename "$out")"
fi
exit $status
