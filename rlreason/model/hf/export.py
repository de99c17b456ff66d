"""Write a policy as a Hugging Face checkpoint: `save_merged` folds every LoRA update in.

`save_merged(model, directory, tokenizer=None, max_shard_size=...)` writes HF safetensors shards +
config.json (the live model is not modified), loadable by `transformers`; GPT-2's q/k/v are fused
back into `c_attn`. A model loaded with `load_pretrained` keeps its original config.json
(`model.hf_config`); a natively built one gets a config derived from its `GPTConfig`.

Not here: reading checkpoints (load.py), PEFT adapters (peft.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from rlreason.model.gpt import GPT
from rlreason.model.hf.arch import ARCHS, Link, arch_for_model, arch_of, hf_shape, join
from rlreason.model.hf.files import INDEX
from rlreason.model.lora import LoRALinear


def hf_config_of(model: GPT) -> dict:
    """The model's original config.json, or one derived from its GPTConfig."""
    hf = getattr(model, "hf_config", None)
    return dict(hf) if hf else ARCHS[arch_for_model(model.config)].from_config(model.config)


def our_tensor(model: GPT, name: str) -> torch.Tensor:
    """State tensor `name` (our naming, without LoRA's `.base`) with any LoRA update folded in."""
    module_name, _, attr = name.rpartition(".")
    module = model.get_submodule(module_name)
    if not isinstance(module, LoRALinear):
        return getattr(module, attr).detach()
    tensor = getattr(module.base, attr).detach()
    if attr != "weight" or module.merged:
        return tensor
    return (tensor.float() + module.delta_weight().detach().float()).to(tensor.dtype)


def _shard_plan(model: GPT, links: list[Link], max_shard_size: int) -> list[list[Link]]:
    params = dict(model.state_dict(keep_vars=True))
    shards: list[list[Link]] = [[]]
    size = 0
    for link in links:
        shapes = [_state_entry(params, n).shape for n in link.ours]
        dtype = _state_entry(params, link.ours[0]).dtype
        nbytes = torch.Size(hf_shape(link, shapes)).numel() * dtype.itemsize
        if shards[-1] and size + nbytes > max_shard_size:
            shards.append([])
            size = 0
        shards[-1].append(link)
        size += nbytes
    return shards


def _state_entry(state: dict, name: str) -> torch.Tensor:
    if name in state:
        return state[name]
    module_name, _, attr = name.rpartition(".")
    return state[f"{module_name}.base.{attr}"]  # wrapped by LoRALinear


@torch.no_grad()
def save_merged(model: GPT, directory, tokenizer=None, max_shard_size: int = 5 * 2**30) -> Path:
    """Merged weights + config.json (+ tokenizer files) in HF layout; one shard in memory at a time."""
    from safetensors.torch import save_file

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    hf = hf_config_of(model)
    _, arch = arch_of(hf)
    plan = _shard_plan(model, arch.links(model.config), max_shard_size)
    names = (
        ["model.safetensors"]
        if len(plan) == 1
        else [f"model-{i + 1:05d}-of-{len(plan):05d}.safetensors" for i in range(len(plan))]
    )
    weight_map, total = {}, 0
    for file, links in zip(names, plan):
        tensors = {
            link.hf: join(link, [our_tensor(model, n) for n in link.ours]).contiguous().cpu()
            for link in links
        }
        save_file(tensors, str(out / file), metadata={"format": "pt"})
        weight_map.update({k: file for k in tensors})
        total += sum(t.numel() * t.element_size() for t in tensors.values())
        del tensors
    if len(plan) > 1:
        (out / INDEX).write_text(
            json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2)
        )
    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    hf.update(dtype=dtype, torch_dtype=dtype)
    (out / "config.json").write_text(json.dumps(hf, indent=2))
    generation = getattr(model, "hf_generation_config", None)
    if generation:
        (out / "generation_config.json").write_text(json.dumps(generation, indent=2))
    if tokenizer is not None:
        tokenizer.save(out)
    return out
