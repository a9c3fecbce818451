# env.sh - sourced by the GPU scripts: makes the collage binaries runnable on
# the GPU machine and exports
#   CL_BIN    the collage executable
#   CL_TESTS  the directory of the CUDA test executables
#   COLLAGE_SHARED  the golden data (bundle copy, or ../shared when present)
#   CL_QUESTIONS  the quality grid's question sets, when the bundle has them
# From .device/bundle.tar.xz (scripts/gpu/bundle.sh, built elsewhere) when it
# exists, else by building here (needs the -dev packages and nvcc).
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [ -f "$root/.device/bundle.tar.xz" ]; then
  CL_DIR=${CL_DIR:-/tmp/collage-gpu}
  if [ ! -x "$CL_DIR/bin/collage" ] || [ "$root/.device/bundle.tar.xz" -nt "$CL_DIR/bin/collage" ]; then
    rm -rf "$CL_DIR" && mkdir -p "$CL_DIR" && tar -xJf "$root/.device/bundle.tar.xz" -C "$CL_DIR"
  fi
  CL_BIN=$CL_DIR/bin/collage
  CL_TESTS=$CL_DIR/bin
  export LD_LIBRARY_PATH="$CL_DIR/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  [ -d "$CL_DIR/shared/golden" ] && export COLLAGE_SHARED="$CL_DIR/shared"
  [ -d "$CL_DIR/questions" ] && export CL_QUESTIONS="$CL_DIR/questions"  # quality.sh
  echo "collage: prebuilt bundle (commit $(cat "$CL_DIR/COMMIT" 2>/dev/null || echo ?))"
else
  cmake -S "$root" -B "$root/build-gpu" -DCOLLAGE_CUDA=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$root/build-gpu" -j"$(nproc)" --target collage cuda_test_parity \
    cuda_test_random_model cuda_test_kernels cuda_test_attention cuda_test_reuse cuda_test_tp cuda_test_tp_abort \
    cuda_test_op_attention cuda_test_op_conv1d cuda_test_op_gdn cuda_test_op_gka \
    cuda_test_op_mamba2 cuda_test_op_swa
  CL_BIN=$root/build-gpu/collage
  CL_TESTS=$root/build-gpu/tests
  [ -d "$root/../shared/golden" ] && export COLLAGE_SHARED="${COLLAGE_SHARED:-$root/../shared}"
fi
# cuBLAS of the CUDA toolkit (or of the Python wheels) when the loader does not know it
if ! ldconfig -p 2>/dev/null | grep -q 'libcublasLt.so.13'; then
  for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda-13*/lib64 \
           /usr/local/cuda-13*/targets/x86_64-linux/lib \
           /opt/torch/.venv/lib/python3*/site-packages/nvidia/cu13/lib \
           /opt/torch/.venv/lib/python3*/site-packages/nvidia/cublas/lib; do
    if [ -e "$d/libcublasLt.so.13" ]; then
      export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$d"
      break
    fi
  done
fi
# NCCL (tensor parallelism; opened at run time) likewise
if ! ldconfig -p 2>/dev/null | grep -q 'libnccl.so.2'; then
  for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda-13*/lib \
           /opt/torch/.venv/lib/python3*/site-packages/nvidia/nccl/lib; do
    if [ -e "$d/libnccl.so.2" ]; then
      export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$d"
      break
    fi
  done
  case ":$LD_LIBRARY_PATH:" in
    *nccl*|*cuda*/lib:*) ;;
    *) f=$(find /usr /opt -name libnccl.so.2 -print -quit 2>/dev/null)
       [ -n "$f" ] && export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$(dirname "$f")" ;;
  esac
fi
export COLLAGE_TMP=${COLLAGE_TMP:-/tmp/collage-gpu-tmp}
mkdir -p "$COLLAGE_TMP"
export CL_BIN CL_TESTS
