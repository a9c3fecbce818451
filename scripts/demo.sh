#!/usr/bin/env bash
# The main job on an embedded default: build collage, make a tiny random hybrid
# model (GKA + attention) with its own tokenizer and chat template, describe it,
# chat with it, and show the state store at work (the second run of the same
# prompt resumes from the stored state instead of recomputing it).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)"
bin=build/collage
model=build/demo/tiny-gka
store=build/demo/store
[ -f "$model/model.safetensors" ] || $bin mkmodel --preset tiny-gka --out "$model" --seed 1
echo "== collage info"
$bin info --model "$model"
echo "== collage run --chat (random weights: the text is noise, the machinery is real)"
$bin run --model "$model" --store "$store" --chat "Tell me about the sea." --no-think \
  --max-new-tokens 40 --seed 7 --temperature 0.8
echo "== the same prompt again, from another process: resumed from the store"
$bin run --model "$model" --store "$store" --chat "Tell me about the sea." --no-think \
  --max-new-tokens 40 --seed 7 --temperature 0.8 --json
echo "== collage generate (token ids)"
$bin generate --model "$model" --input-ids 1,2,3,4,5 --max-new-tokens 8 --greedy --print-ids
