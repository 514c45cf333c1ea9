"""Makes Tests/References/grow: transformers' logits for Crucible's depth-growing frankenmerges.

mergekit 0.1.5 cannot write these merges (it leaves `layer_types` at the parents' length and transformers refuses the
config), so the reference is the other half of the check: Crucible writes each output, transformers 5.24.0 (torch
2.13.0+cpu, one thread, eager attention, float32) loads it, reporting any missing, unexpected or mismatched weight,
and runs the archs set's `text` ids through it. Run from Tests/Fixtures/archs after

    crucible merge merges/qwen3-passthrough-grow/recipe.yaml --out GROWN/qwen3-passthrough-grow    (and gemma2, gemma3)
    crucible merge ../../References/grow/smollm3-grow.yml --out GROWN/smollm3-grow

as: python ../../../scripts/make-grow-reference.py GROWN ../../References/grow/logits.safetensors
"""
import sys

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM

torch.set_num_threads(1)
grown, out_file = sys.argv[1], sys.argv[2]
ids = load_file("forward/qwen3-base.safetensors")["text.input_ids"]
out = {}
for name in ["qwen3-passthrough-grow", "gemma2-passthrough-grow", "gemma3-passthrough-grow", "smollm3-grow"]:
    model, info = AutoModelForCausalLM.from_pretrained(f"{grown}/{name}", attn_implementation="eager", output_loading_info=True)
    assert not any(info.values()), (name, info)
    with torch.no_grad():
        out[name] = model.eval()(input_ids=ids, use_cache=False).logits[0].float().contiguous()
    print(name, model.config.layer_types, getattr(model.config, "no_rope_layers", None))
save_file(out, out_file, metadata={"format": "pt"})
