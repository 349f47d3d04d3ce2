#!/usr/bin/env bash
# The main job: builds Hearth and generates text.
#   MODEL=path/to/model.gguf scripts/run.sh ["prompt"]   runs a real model
#   scripts/run.sh                                       writes and runs a small
#                                                         model with RANDOM weights
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc)"
hearth=build/release/hearth
prompt=${1:-"Once upon a time"}
model=${MODEL:-}
if [ -z "$model" ]; then
  model=build/release/demo-random.gguf
  echo "MODEL is not set: writing a demo model with RANDOM weights (its text is noise)"
  "$hearth" synth -o "$model" --arch llama --type q8_0 --layers 4 --embd 256 --seed 1
fi
"$hearth" info --no-tensors "$model" | head -n 12
echo
"$hearth" run -m "$model" -p "$prompt" -n "${N:-64}"
