"""Makes Tests/References/smollm3: a tiny random SmolLM3 checkpoint and transformers' float32 forward pass over it.

The shared fixture set has no SmolLM3 model, so Crucible's developers make this one the way that set makes its
goldens: transformers 5.24.0 and torch 2.13.0+cpu, one thread, eager attention, float32, one forward pass per
sequence from position 0, no cache. The token ids are the `random` and `text` sequences of the archs set's
qwen3-base golden (same 512-token vocabulary).

    python scripts/make-smollm3-reference.py Tests/Fixtures/archs/forward/qwen3-base.safetensors Tests/References/smollm3
"""
import json
import os
import sys

import torch
from safetensors.torch import load_file, save_file
from transformers import SmolLM3Config, SmolLM3ForCausalLM

torch.set_num_threads(1)
ids_file, out_dir = sys.argv[1], sys.argv[2]
ids = load_file(ids_file)

config = SmolLM3Config(
    vocab_size=512, hidden_size=32, intermediate_size=24, num_hidden_layers=4, num_attention_heads=2,
    num_key_value_heads=1, head_dim=16, max_position_embeddings=256, rope_theta=10000.0, rms_norm_eps=1e-6,
    tie_word_embeddings=True, no_rope_layer_interval=2, use_sliding_window=False, bos_token_id=1, eos_token_id=2,
    pad_token_id=0, attn_implementation="eager",
)
torch.manual_seed(1234)
model = SmolLM3ForCausalLM(config).eval()
with torch.no_grad():
    # Weights of a useful scale (the default init makes near-uniform logits): N(0, 1/sqrt(fan_in)), norms 1 + N(0, 0.1).
    for name, p in model.named_parameters():
        if name.endswith("norm.weight"):
            p.copy_(1 + 0.1 * torch.randn_like(p))
        elif name.endswith("embed_tokens.weight"):
            p.copy_(0.5 * torch.randn_like(p))
        else:
            p.copy_(torch.randn_like(p) / p.shape[-1] ** 0.5)

model_dir = os.path.join(out_dir, "model")
model.save_pretrained(model_dir, safe_serialization=True)
with open(os.path.join(model_dir, "config.json")) as f:
    saved = json.load(f)
assert saved["no_rope_layers"] == [1, 0, 1, 0], saved["no_rope_layers"]

golden = {}
with torch.no_grad():
    for part in ["random", "text"]:
        tokens = ids[f"{part}.input_ids"]
        out = model(input_ids=tokens, output_hidden_states=True, use_cache=False)
        golden[f"{part}.input_ids"] = tokens.contiguous()
        golden[f"{part}.logits"] = out.logits.float().contiguous()
        if part == "text":
            golden["text.hidden_states"] = torch.cat(out.hidden_states, dim=0).float().contiguous()
    # The same model with RoPE on every layer: the golden must tell the two apart.
    model.config.no_rope_layers = [1, 1, 1, 1]
    for layer in model.model.layers:
        layer.self_attn.use_rope = True
    golden["text.logits_all_rope"] = model(input_ids=ids["text.input_ids"], use_cache=False).logits.float().contiguous()
save_file(golden, os.path.join(out_dir, "forward.safetensors"), metadata={"format": "pt"})
print("max |logits(no-rope layers) - logits(all rope)|:",
      (golden["text.logits"] - golden["text.logits_all_rope"]).abs().max().item())
