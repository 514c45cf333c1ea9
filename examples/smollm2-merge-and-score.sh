#!/usr/bin/env bash
# A real model end to end: SmolLM2-135M-Instruct (GGUF, Q4_1) as a merge parent, a seeded "fine-tune" of it,
# their SLERP merge, and the perplexity of all three on WikiText-2 with llama.cpp's protocol. The fine-tune and
# the merge get the GGUF's vocabulary as Hugging Face tokenizer files.
# Usage: bash examples/smollm2-merge-and-score.sh [WORK_DIR] [CHUNKS]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-/tmp/crucible-smollm2}"
chunks="${2:-4}"
data="$root/../shared/data/wikitext-2-raw/wiki.test.raw"

swift build -c release --product crucible --package-path "$root" >&2
crucible="$(swift build -c release --product crucible --package-path "$root" --show-bin-path)/crucible"
gguf="$("$root/scripts/fetch-smollm2.sh")"

mkdir -p "$work"
cd "$work"
if [ ! -f ft/model.safetensors ]; then
  echo "== a seeded fine-tune of the GGUF model (every tensor moved by 1% of its RMS), stored as BF16"
  "$crucible" synth --finetune-of "$gguf" --delta 0.01 --seed 7 --dtype bf16 --out ft
fi
cat > slerp.yml <<YAML
merge_method: slerp
base_model: $gguf
models:
  - model: $gguf
  - model: ft
parameters:
  t: 0.5
dtype: bfloat16
YAML
echo "== merge (the GGUF parent is dequantized on the fly)"
"$crucible" merge slerp.yml --out merged --overwrite

for m in "$gguf" ft merged; do
  echo "== perplexity of $(basename "$m"), $chunks windows of 512"
  "$crucible" ppl "$m" --data "$data" --ctx 512 --chunks "$chunks" 2>/dev/null | grep -E "Final|tokens/s"
done
