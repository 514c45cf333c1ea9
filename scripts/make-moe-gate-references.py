# Reference router rows for gate modes the shared fixtures do not cover, computed by mergekit 0.1.5's own
# get_gate_params with the base model loaded in float32 (mergekit loads bfloat16), and for Crucible's
# router_input mode with transformers hooks (post_attention_layernorm output at the last prompt token).
import torch, transformers, yaml, json, sys
import mergekit.moe.router as router
from mergekit.moe.config import MoEMergeConfig
from safetensors.torch import save_file
orig = transformers.AutoModelForCausalLM.from_pretrained
def f32(*a, **k):
    k['torch_dtype'] = torch.float32
    k.pop('device_map', None)
    return orig(*a, **k)
router.AutoModelForCausalLM.from_pretrained = f32
root = '/work/shared/fixtures/'
recipe = yaml.safe_load(open(sys.argv[1]))
import os; os.chdir(root)
cfg = MoEMergeConfig.model_validate(recipe)
base = root + recipe['base_model']
tok = transformers.AutoTokenizer.from_pretrained(base)
tok.padding_side = 'left'; tok.pad_token_id = tok.bos_token_id
out = {}
for mode in ['hidden', 'hidden_avg', 'cheap_embed']:

    g = router.get_gate_params(cfg.base_model, tok, cfg.experts, mode=mode, device='cpu')
    for l in range(g.shape[0]):
        out[f'{mode}.layers.{l}'] = g[l].contiguous().float()
# router_input: what the router reads (post_attention_layernorm output), last token, mean over prompts, negatives subtracted.
m = orig(base, torch_dtype=torch.float32)
caught = {}
hooks = [layer.post_attention_layernorm.register_forward_hook(lambda mod, i, o, l=l: caught.__setitem__(l, o.detach()))
         for l, layer in enumerate(m.model.layers)]
def rows(prompts):
    acc = None
    for p in prompts:
        t = tok([tok.bos_token + p], return_tensors='pt', add_special_tokens=False)
        with torch.no_grad(): m(**t)
        v = torch.stack([caught[l][0, -1] for l in range(len(m.model.layers))])
        acc = v if acc is None else acc + v
    return acc / len(prompts)
vecs = []
for e in cfg.experts:
    v = rows(e.positive_prompts)
    if e.negative_prompts: v = v - rows(e.negative_prompts)
    vecs.append(v / v.norm(dim=-1, keepdim=True).clamp(min=1e-8))
g = torch.stack(vecs).permute(1, 0, 2)
for l in range(g.shape[0]):
    out[f'router_input.layers.{l}'] = g[l].contiguous()
save_file(out, sys.argv[2], metadata={'generator': 'mergekit 0.1.5 get_gate_params (float32 model) + transformers 5.24 hooks'})
print({k: tuple(v.shape) for k, v in out.items()})
