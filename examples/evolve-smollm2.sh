#!/usr/bin/env bash
# `crucible evolve` on a real model: SmolLM2-135M-Instruct (Q4_1 GGUF) and a noisy copy of it (every tensor moved by
# DELTA of its RMS, seeded), merged linearly with one weight per model per group of 15 layers. The search should find
# that the clean parent must dominate: the best merge's held-out perplexity close to the clean parent's, the default
# 50/50 merge clearly worse. Text: WikiText-2 when ../shared has it, else the GNU GPL v3 text Debian keeps in
# /usr/share/common-licenses. Prints the search's progress, the final table, wall time and peak RSS.
# Usage: bash examples/evolve-smollm2.sh [WORK_DIR] [BUDGET] [DELTA]   (defaults: /tmp/crucible-evolve, 32, 0.1)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-/tmp/crucible-evolve}"
budget="${2:-32}"
delta="${3:-0.1}"

swift build -c release --product crucible --package-path "$root" >&2
crucible="$(swift build -c release --product crucible --package-path "$root" --show-bin-path)/crucible"
gguf="$("$root/scripts/fetch-smollm2.sh")"
text="$root/../shared/data/wikitext-2-raw/wiki.test.raw"
[ -f "$text" ] || text=/usr/share/common-licenses/GPL-3
[ -f "$text" ] || { echo "no text: neither WikiText-2 (../shared) nor $text is present" >&2; exit 1; }

mkdir -p "$work"
cd "$work"
if [ ! -f "noisy-$delta/model.safetensors" ]; then
  echo "== the noisy copy: every tensor moved by $delta of its RMS (seed 7), BF16" >&2
  "$crucible" synth --finetune-of "$gguf" --delta "$delta" --seed 7 --dtype bf16 --out "noisy-$delta"
fi
cat > evolve.yml <<YAML
# Linear merge of SmolLM2 and its noisy copy: one weight per model per 15 layers (2 groups, 4 parameters).
merge_method: linear
models:
  - model: $gguf
  - model: noisy-$delta
search:
  layer_granularity: 15
  parameters:
    weight: {min: 0, max: 1}
objective:
  context: 512
  held_out: 0.5
  texts:
    - path: $text
      metric: perplexity
      windows: 2
      held_out_windows: 4
optimizer:
  method: cma_es
  sigma0: 0.3
  budget: $budget
  seed: 1
YAML
rm -rf out
/usr/bin/time -v "$crucible" evolve evolve.yml --out out 2> >(tee evolve.log >&2) | tee summary.txt
grep -E "Maximum resident|Elapsed" evolve.log || true
