#!/usr/bin/env bash
# Crucible end to end on parents it makes itself: build, make a base model and three seeded fine-tunes,
# plan a merge (dry run), then run every recipe in recipes/ and recipes/families/ (merges) and recipes/moe/
# (FrankenMoEs); the newer families (Qwen3, Gemma 2 and 3, Phi-3, SmolLM3) get their own synthetic parents.
# Usage: bash examples/quickstart.sh [WORK_DIR]   (default /tmp/crucible-quickstart)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-/tmp/crucible-quickstart}"
preset="${CRUCIBLE_PRESET:-tiny}"

echo "== building crucible (release)"
swift build -c release --product crucible --package-path "$root" >&2
crucible="$(swift build -c release --product crucible --package-path "$root" --show-bin-path)/crucible"

mkdir -p "$work"
cd "$work"
if [ ! -f parents/ft3/model.safetensors ] || [ ! -f parents/base/tokenizer.json ]; then
  echo "== making parents ($preset preset, bf16) with crucible synth"
  "$crucible" synth --arch llama --preset "$preset" --seed 1 --dtype bf16 --out parents/base   # with a byte-level tokenizer
  for i in 1 2 3; do
    "$crucible" synth --finetune-of parents/base --delta 0.02 --seed $((10 + i)) --out "parents/ft$i"
  done
fi

# One base and two fine-tunes per newer family, for recipes/families/ and the Qwen3-MoE recipe.
for family in qwen3:qwen3 gemma2:gemma2 gemma3:gemma3_text phi3:phi3 smollm3:smollm3; do
  prefix="${family%%:*}"; arch="${family##*:}"
  if [ ! -f "parents/$prefix-ft2/model.safetensors" ]; then
    echo "== making $prefix parents (tiny preset, bf16)"
    "$crucible" synth --arch "$arch" --preset tiny --seed 4 --dtype bf16 --out "parents/$prefix-base" >/dev/null
    for i in 1 2; do
      "$crucible" synth --finetune-of "parents/$prefix-base" --delta 0.02 --seed $((30 + i)) --out "parents/$prefix-ft$i" >/dev/null
    done
  fi
done

echo "== the plan for a TIES merge (dry run: nothing is read or written)"
"$crucible" merge "$root/recipes/ties.yml" --out merged/ties --dry-run | tail -n 3

for recipe in "$root"/recipes/*.yml; do
  name="$(basename "$recipe" .yml)"
  echo "== merge: $name"
  "$crucible" merge "$recipe" --out "merged/$name" --overwrite
done

for recipe in "$root"/recipes/families/*.yml; do
  name="$(basename "$recipe" .yml)"
  echo "== merge (family): $name"
  "$crucible" merge "$recipe" --out "merged/$name" --overwrite
done

echo "== the plan for a FrankenMoE (dry run)"
"$crucible" moe "$root/recipes/moe/hidden.yml" --out moe/hidden --dry-run | tail -n 3

for recipe in "$root"/recipes/moe/*.yml; do
  name="$(basename "$recipe" .yml)"
  echo "== moe: $name"
  "$crucible" moe "$recipe" --out "moe/$name" --overwrite
done

echo
echo "== outputs"
for d in merged/*/ moe/*/; do
  printf '%-28s %s\n' "$(basename "$d")" "$(ls "$d" | tr '\n' ' ')"
done
echo "done: merged checkpoints are in $work/merged, FrankenMoEs in $work/moe"
