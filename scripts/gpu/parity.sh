#!/usr/bin/env bash
# parity.sh - the CUDA backend against the CPU backend, on the GPU machine, in
# one call: fp32 models (golden checkpoints, mkmodel tiny presets) within 1e-4
# of the CPU and within the golden tolerances of the reference; bf16 models
# (tiny presets) within 2e-2, 2-layer 8B shapes within 3e-2; prefill in one and in many
# calls, token-by-token decode (CUDA graphs), batched decode, states, and
# decode after a snapshot/restore round trip; then the CLI (collage logits /
# generate --backend cuda vs cpu), and the decode GEMM kernels against cuBLAS
# (cuda_test_kernels), the prefill attention kernels against the plain one
# (cuda_test_attention; ATTN_BENCH=1 adds their timing). Prints a short table
# last; logs in /tmp/collage-gpu-out
# (parity.log, cli.log, kernels.log).
#
#   scripts/gpu/bundle.sh           # here, once per code change (no GPU needed)
#   device run: carry [".device"], command "scripts/gpu/parity.sh"
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/gpu/env.sh || exit 1
out=/tmp/collage-gpu-out
mkdir -p "$out"
nvidia-smi -L || true
export COLLAGE_LOG=${COLLAGE_LOG:-warn}
status=0

echo "== random model = mkmodel checkpoint (CPU)"
"$CL_TESTS/cuda_test_random_model" > "$out/random_model.log" 2>&1 || { status=1; tail -20 "$out/random_model.log"; }

echo "== CLI: collage logits / generate, cuda vs cpu"
cli_rows=()
cli_check() { # name tol file_a file_b
  if r=$("$CL_TESTS/cuda_test_parity" compare "$3" "$4" "$2"); then cli_rows+=("ok   $1: ${r#*: }")
  else cli_rows+=("FAIL $1: ${r#*: }"); status=1; fi
}
g=${COLLAGE_SHARED:-}/golden
if [ -d "$g/gka" ]; then
  "$CL_BIN" mkmodel --preset tiny-gdn --dtype bfloat16 --out "$COLLAGE_TMP/cli-gdn" >/dev/null 2>&1 || true
  for m in "$g/gka" "$g/m2" "$COLLAGE_TMP/cli-gdn"; do
    [ -d "$m" ] || continue
    name=$(basename "$m")
    tol=1e-4; [ "$name" = cli-gdn ] && tol=2e-2
    seq 3 7 400 | head -60 | tr '\n' ',' | sed 's/,$//' > "$COLLAGE_TMP/ids.txt"
    for mode in prefill decode; do
      for be in cpu cuda; do
        "$CL_BIN" logits --backend $be --model "$m" --input-ids @"$COLLAGE_TMP/ids.txt" \
          --mode $mode --out "$COLLAGE_TMP/$name-$mode-$be.safetensors" 2>>"$out/cli.log" || status=1
      done
      cli_check "logits --mode $mode $name" $tol "$COLLAGE_TMP/$name-$mode-cuda.safetensors" \
        "$COLLAGE_TMP/$name-$mode-cpu.safetensors"
    done
    for be in cpu cuda; do
      "$CL_BIN" generate --backend $be --model "$m" --input-ids @"$COLLAGE_TMP/ids.txt" \
        --max-new-tokens 12 --greedy --print-ids --force-ids 5,6,7,8,9,10,11,12,13,14,15,16 \
        --logits-out "$COLLAGE_TMP/$name-gen-$be.safetensors" >>"$out/cli.log" 2>&1 || status=1
    done
    cli_check "generate --force-ids $name" $tol "$COLLAGE_TMP/$name-gen-cuda.safetensors" \
      "$COLLAGE_TMP/$name-gen-cpu.safetensors"
  done
fi

echo "== trained models (models/*): logits cuda vs cpu, greedy ids, answers on cuda"
# bf16 weights: CUDA computes in bf16 where the CPU computes in fp32, hence 2e-2 (the CPU is
# held to the PyTorch reference at 1e-4 in CI: tests/models/test_trained_models.sh)
for m in models/*/; do
  m=${m%/}; [ -f "$m/reference.safetensors" ] || continue
  name=trained-$(basename "$m")
  "$CL_BIN" tensors ids "$m/reference.safetensors" input_ids > "$COLLAGE_TMP/$name.ids" || status=1
  for mode in prefill decode; do
    for be in cpu cuda; do
      "$CL_BIN" logits --no-store --backend $be --model "$m" --input-ids @"$COLLAGE_TMP/$name.ids" \
        --mode $mode --out "$COLLAGE_TMP/$name-$mode-$be.safetensors" 2>>"$out/cli.log" || status=1
    done
    cli_check "logits --mode $mode $name" 2e-2 "$COLLAGE_TMP/$name-$mode-cuda.safetensors" \
      "$COLLAGE_TMP/$name-$mode-cpu.safetensors"
  done
  want=$("$CL_BIN" tensors ids "$m/reference.safetensors" greedy_ids)
  got=$("$CL_BIN" generate --no-store --backend cuda --model "$m" --input-ids @"$COLLAGE_TMP/$name.ids" \
    --max-new-tokens 5 --greedy --ignore-eos --print-ids 2>>"$out/cli.log" | tr ' ' ',')
  if [ "$got" = "$want" ]; then cli_rows+=("ok   greedy ids $name on cuda = reference ($want)")
  else cli_rows+=("FAIL greedy ids $name on cuda: $got, reference $want"); status=1; fi
done
# run, ingest + query and the server on the trained models (the CLI's default backend is
# cuda here): the CI test's questions must get the same answers as on the CPU
if command -v python3 >/dev/null 2>&1 && [ -f models/m2/config.json ]; then
  if COLLAGE_BIN=$CL_BIN COLLAGE_TMP=$COLLAGE_TMP PYTHONPATH=tests/server \
      timeout 300 python3 tests/models/trained_paths.py > "$out/trained_paths.log" 2>&1; then
    cli_rows+=("ok   trained models answer through run, query, serve on cuda")
  else
    cli_rows+=("FAIL trained models on cuda: $(grep FAIL "$out/trained_paths.log" | head -1)"); status=1
  fi
fi

echo "== decode GEMM kernels vs cuBLAS (cuda_test_kernels)"
kernel_rows=()
if timeout 120 "$CL_TESTS/cuda_test_kernels" > "$out/kernels.log" 2>&1; then
  kernel_rows+=("ok   $(grep 'gemm checks' "$out/kernels.log")")
else
  kernel_rows+=("FAIL $(grep 'gemm checks' "$out/kernels.log" || echo 'cuda_test_kernels failed')")
  status=1
  grep FAIL "$out/kernels.log" | head -10
fi

echo "== prefill attention kernels vs the plain kernel (cuda_test_attention)"
if timeout 120 "$CL_TESTS/cuda_test_attention" ${ATTN_BENCH:+--bench} > "$out/attention.log" 2>&1; then
  kernel_rows+=("ok   $(grep 'attention checks' "$out/attention.log")")
else
  kernel_rows+=("FAIL $(grep 'attention checks' "$out/attention.log" || echo 'cuda_test_attention failed')")
  status=1
  grep FAIL "$out/attention.log" | head -10
fi
[ -n "${ATTN_BENCH:-}" ] && sed -n '/^prefill attention/,$p' "$out/attention.log"

echo "== backend ops, CUDA vs CPU, chunked vs recurrent (cuda_test_op_*)"
for t in "$CL_TESTS"/cuda_test_op_*; do
  n=$(basename "$t")
  if timeout 120 "$t" > "$out/$n.log" 2>&1; then kernel_rows+=("ok   $n ($(grep -c '' "$out/$n.log") lines)")
  else kernel_rows+=("FAIL $n: $(grep -m1 -iE 'fail|error' "$out/$n.log")"); status=1; fi
done

echo "== reuse: store, device and host tiers, CPU vs CUDA (cuda_test_reuse)"
if timeout 180 "$CL_TESTS/cuda_test_reuse" > "$out/reuse.log" 2>&1; then
  kernel_rows+=("ok   cuda_test_reuse: $(tail -1 "$out/reuse.log")")
else
  kernel_rows+=("FAIL cuda_test_reuse: $(grep -m1 -iE 'fail|error' "$out/reuse.log")"); status=1
fi

echo "== tensor parallelism through NCCL, TP 1 (and 2/4 when visible) vs unsharded (cuda_test_tp)"
if timeout 180 "$CL_TESTS/cuda_test_tp" > "$out/tp.log" 2>&1; then
  kernel_rows+=("ok   cuda_test_tp: $(tail -1 "$out/tp.log")")
else
  kernel_rows+=("FAIL cuda_test_tp: $(grep -m1 -iE 'fail|error' "$out/tp.log")"); status=1
fi

echo "== NCCL abort and recovery, TP 1 (and 2-4 when visible) (cuda_test_tp_abort)"
if timeout 180 "$CL_TESTS/cuda_test_tp_abort" > "$out/tp_abort.log" 2>&1; then
  kernel_rows+=("ok   cuda_test_tp_abort: $(tail -1 "$out/tp_abort.log")")
else
  kernel_rows+=("FAIL cuda_test_tp_abort: $(grep -m1 -iE 'fail|error' "$out/tp_abort.log")"); status=1
fi

echo "== in-process parity (cuda_test_parity)"
COLLAGE_REQUIRE_SHARED=${COLLAGE_REQUIRE_SHARED:-0} timeout ${PARITY_TEST_TIMEOUT:-240} "$CL_TESTS/cuda_test_parity" > "$out/parity.log" 2>&1
rc=$?
[ $rc -ne 0 ] && status=1
grep -E "SKIP|FAIL|error|Error" "$out/parity.log" | grep -v "^.*ok$" | head -20

echo
echo "== parity summary (rc $rc; full log $out/parity.log)"
for r in "${cli_rows[@]}" "${kernel_rows[@]}"; do echo "$r"; done
sed -n '/^model .*check/,$p' "$out/parity.log"
exit $status
