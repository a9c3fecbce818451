#!/usr/bin/env bash
# The main job on an embedded default: build, make a tiny random model with its own
# tokenizer, describe it and generate from it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)"
model=build/demo-tiny-gka
[ -f "$model/model.safetensors" ] || build/collage mkmodel --preset tiny-gka --out "$model" --seed 1
build/collage info --model "$model"
