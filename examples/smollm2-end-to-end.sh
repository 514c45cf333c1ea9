#!/usr/bin/env bash
# Crucible's main job on a real model: fetch SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0), build three models from it
# and score each against its parents, with a report per model.
#   (a) a SLERP merge of the GGUF with a seeded "fine-tune" of it,
#   (b) a 40-layer frankenmerge (layers 0-19 then 10-29 of the 30-layer model: depth up-scaling),
#   (c) a 4-expert FrankenMoE: the GGUF as base and chat expert, three fine-tunes as code, maths and story experts,
#       router rows from prompts computed by Crucible's engine.
# The text scored is WikiText-2 when ../shared has it, else the GNU GPL v3 text Debian keeps in
# /usr/share/common-licenses (present on every Debian machine). Nothing else is needed: no Python at run time.
# Usage: bash examples/smollm2-end-to-end.sh [WORK_DIR] [CHUNKS]    (defaults: /tmp/crucible-smollm2, 8 windows)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-/tmp/crucible-smollm2}"
chunks="${2:-8}"

echo "== building crucible (release)"
swift build -c release --product crucible --package-path "$root" >&2
crucible="$(swift build -c release --product crucible --package-path "$root" --show-bin-path)/crucible"
echo "== fetching SmolLM2-135M-Instruct (cached in ~/.cache/crucible)"
gguf="$("$root/scripts/fetch-smollm2.sh")"

text="$root/../shared/data/wikitext-2-raw/wiki.test.raw"
[ -f "$text" ] || text=/usr/share/common-licenses/GPL-3
[ -f "$text" ] || { echo "no text to score: neither WikiText-2 (../shared) nor $text is present" >&2; exit 1; }
echo "== scoring on $text, $chunks windows of 512 tokens"

mkdir -p "$work"
cd "$work"
for i in 1 2 3; do
  if [ ! -f "ft$i/model.safetensors" ]; then
    echo "== fine-tune $i of the GGUF model (every tensor moved by 2% of its RMS, seed $((20 + i))), stored as BF16"
    "$crucible" synth --finetune-of "$gguf" --delta 0.02 --seed $((20 + i)) --dtype bf16 --out "ft$i"
  fi
done

cat > slerp.yml <<YAML
# (a) Spherical interpolation halfway between the GGUF model and a fine-tune of it.
merge_method: slerp
base_model: $gguf
models:
  - model: $gguf
  - model: ft1
parameters:
  t: 0.5
dtype: bfloat16
YAML

cat > frankenmerge.yml <<YAML
# (b) Depth up-scaling: layers 0-19, then layers 10-29 again: 40 layers from a 30-layer model.
merge_method: passthrough
slices:
  - sources:
      - model: $gguf
        layer_range: [0, 20]
  - sources:
      - model: $gguf
        layer_range: [10, 30]
dtype: bfloat16
YAML

cat > moe.yml <<YAML
# (c) A 4-expert FrankenMoE, 2 experts per token; router rows from what each layer's router reads.
base_model: $gguf
gate_mode: router_input
dtype: bfloat16
experts_per_token: 2
experts:
  - source_model: ft1
    positive_prompts: ["def parse(line):", "import numpy as np", "for i in range(10):", "return x + y", "class Stack:", "SELECT * FROM users"]
  - source_model: ft2
    positive_prompts: ["Solve 3x + 7 = 22", "The integral of x^2", "What is 17 times 23?", "Prove that 2 is prime", "The derivative of sin(x)"]
  - source_model: ft3
    positive_prompts: ["Once upon a time", "The dragon woke up", "She opened the door", "In a village by the sea", "They sailed at dawn"]
  - source_model: $gguf
    positive_prompts: ["Hi! How are you?", "Thanks for the help", "Can you recommend a book?", "Good morning!", "See you tomorrow"]
YAML

for name in slerp frankenmerge moe; do
  echo
  echo "== ($name) build it, then score it against its parents"
  "$crucible" run "$name.yml" --out "$name" --overwrite --eval "$text" --chunks "$chunks" --report "reports/$name"
done

echo
echo "== how the MoE routes the text (per layer: each expert's share, router entropy, how often the choice changes)"
"$crucible" ppl moe --data "$text" --chunks 2 --routing 2>/dev/null | sed -n '1,/^(H in bits/p'
echo
echo "done: models in $work/{slerp,frankenmerge,moe}; reports in $work/reports/*/report.html"
