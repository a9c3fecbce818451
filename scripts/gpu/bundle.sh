#!/usr/bin/env bash
# bundle.sh - prepares what a GPU-machine run needs, on this machine (no GPU
# needed): a Release CUDA build, the shared libraries the binaries use that a
# bare CUDA image lacks (LMDB, xxHash, cJSON, PCRE2, utf8proc, OpenBLAS, cmocka,
# ...), the golden cases the parity checks read, and the question sets of the
# composition-quality grid for the trained models (models/*; made here because the GPU
# machine has PyTorch but may lack `tokenizers`; PYTHON names a python that has it), packed into
# .device/bundle.tar.xz (git-ignored). The device call then names .device in
# `carry` and runs scripts/gpu/parity.sh or scripts/gpu/run-all.sh.
#
#   scripts/gpu/bundle.sh [--shared DIR] [--no-golden] [--no-questions]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
shared=${COLLAGE_SHARED:-$root/../shared}
golden=1
questions=1
while [ $# -gt 0 ]; do
  case $1 in
    --shared) shared=$2; shift 2 ;;
    --no-golden) golden=0; shift ;;
    --no-questions) questions=0; shift ;;
    *) echo "usage: $0 [--shared DIR] [--no-golden] [--no-questions]" >&2; exit 2 ;;
  esac
done
build=$root/build-gpu
stage=$root/.device/stage
mkdir -p "$root/.device"
# .device must stay out of git (it is carried, never committed)
if ! git -C "$root" check-ignore -q .device/x 2>/dev/null; then
  ex=$(git -C "$root" rev-parse --git-path info/exclude)
  mkdir -p "$(dirname "$root/$ex")" 2>/dev/null || mkdir -p "$(dirname "$ex")"
  echo '/.device/' >> "$ex"
fi

cmake -S "$root" -B "$build" -DCOLLAGE_CUDA=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
tests="cuda_test_parity cuda_test_random_model cuda_test_kernels cuda_test_attention cuda_test_reuse cuda_test_tp cuda_test_tp_abort
  cuda_test_op_attention cuda_test_op_conv1d cuda_test_op_gdn cuda_test_op_gka cuda_test_op_mamba2
  cuda_test_op_swa"
# shellcheck disable=SC2086
cmake --build "$build" -j"$(nproc)" --target collage $tests

rm -rf "$stage"
mkdir -p "$stage/bin" "$stage/lib" "$stage/shared/golden"
cp "$build/collage" "$stage/bin/"
for t in $tests; do cp "$build/tests/$t" "$stage/bin/"; done
strip "$stage/bin/"*
# shared libraries outside glibc and the CUDA toolkit (the GPU image has those)
for bin in "$stage/bin/"*; do
  ldd "$bin" | awk '/=>/ {print $3}'
done | sort -u | while read -r lib; do
  case $(basename "$lib") in
    libc.so*|libm.so*|libdl.so*|librt.so*|libpthread.so*|ld-linux*|libcuda*|libcublas*|libnccl*) ;;
    *) cp -L "$lib" "$stage/lib/" ;;
  esac
done
if [ "$golden" = 1 ] && [ -d "$shared/golden" ]; then
  for c in m2 gdn swa gka; do
    mkdir -p "$stage/shared/golden/$c"
    cp "$shared/golden/$c/"{config.json,generation_config.json,model.safetensors,inputs_and_outputs.safetensors} \
       "$stage/shared/golden/$c/" 2>/dev/null || true
  done
  for c in gka_iter10 gka_iter0; do
    mkdir -p "$stage/shared/golden/$c"
    cp "$shared/golden/$c/"{config.json,generation_config.json,inputs_and_outputs.safetensors} \
       "$stage/shared/golden/$c/" 2>/dev/null || true
    ln -sf ../gka/model.safetensors "$stage/shared/golden/$c/model.safetensors"
  done
fi
# the Qwen3 tokenizer for the 8B presets in server benchmarks (scripts/gpu/bench-serve.sh)
if [ -d "$shared/assets/qwen3-tokenizer" ]; then
  mkdir -p "$stage/shared/assets"
  cp -r "$shared/assets/qwen3-tokenizer" "$stage/shared/assets/"
fi
# question sets of the quality grid (scripts/gpu/quality.sh reads them by name)
if [ "$questions" = 1 ]; then
  py=${PYTHON:-python3}
  count=${QUALITY_COUNT:-200}
  if "$py" -c "import tokenizers" 2>/dev/null; then
    mkdir -p "$stage/questions"
    for m in "$root"/models/*/; do
      [ -f "$m/training.json" ] || continue
      T=$("$py" -c "import json,sys; print(json.load(open(sys.argv[1]))['eval']['context_T'])" \
          "$m/training.json")
      for k in 1 2 4 8 16; do
        q=$stage/questions/$("$root/scripts/gpu/quality-name.sh" "$m" "$T" "$k" "$count")
        [ -f "$q" ] || (cd "$root/tools/train" && "$py" -m collage_train.questions \
          --context-tokens $((k * T)) --docs $k --count "$count" \
          --seed $((9000 + k)) --ids --tokenizer "$m/tokenizer.json" --out "$q") >/dev/null
      done
    done
    echo "bundle: $(ls "$stage/questions" | wc -l) question sets for the quality grid"
  else
    echo "bundle: no question sets ($py has no tokenizers; set PYTHON): scripts/gpu/quality.sh" \
         "will need tokenizers on the GPU machine" >&2
  fi
fi
git -C "$root" rev-parse --short HEAD > "$stage/COMMIT" 2>/dev/null || true
# One xz stream with a dictionary larger than a binary: the executables each embed the
# same kernels (about 16 MB of device code), and a window that spans two of them stores
# that once (123 MB with xz's default window, 45 MB with this one; carry allows 64 MiB).
tar -cf - -C "$stage" . | xz -T1 --lzma2=preset=6,dict=256MiB > "$root/.device/bundle.tar.xz"
rm -rf "$stage"
ls -la "$root/.device/bundle.tar.xz"
size=$(stat -c %s "$root/.device/bundle.tar.xz")
if [ "$size" -gt $((60 * 1024 * 1024)) ]; then
  echo "bundle: $size bytes, over the 60 MiB this script allows itself (carry takes 64 MiB in all)" >&2
  exit 1
fi
