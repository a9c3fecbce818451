#!/usr/bin/env bash
# Builds collage and passes the whole test suite:
#   1. CPU-only build (Release + debug info) -> ctest
#   2. AddressSanitizer + UBSan build       -> ctest (skip with COLLAGE_SKIP_ASAN=1)
#   3. CUDA build, compile + link only, when nvcc is present (skip with COLLAGE_SKIP_CUDA=1)
# Tests that need ../shared skip without it, and fail under COLLAGE_REQUIRE_SHARED=1.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)

scripts/install-deps.sh

step() { echo "==> $*" >&2; }

step "CPU build"
cmake -S . -B build -DCOLLAGE_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$jobs"
step "CPU tests"
ctest --test-dir build --output-on-failure -j "$jobs"

if [ "${COLLAGE_SKIP_ASAN:-0}" != 1 ]; then
  step "ASan + UBSan build"
  cmake -S . -B build-asan -DCOLLAGE_CUDA=OFF -DCOLLAGE_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
  cmake --build build-asan -j "$jobs"
  step "ASan + UBSan tests"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    COLLAGE_SANITIZED=1 ctest --test-dir build-asan --output-on-failure -j "$jobs"
fi

if [ "${COLLAGE_SKIP_CUDA:-0}" != 1 ] && command -v nvcc >/dev/null 2>&1; then
  step "CUDA build (compile + link only)"
  cmake -S . -B build-cuda -DCOLLAGE_CUDA=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build-cuda -j "$jobs"
fi
step "all tests passed"
