"""LoRA adapters in the `peft` library's format: `save_peft_adapter` and `load_peft_adapter`.

`load_adapter_dir(model, directory)` accepts either layout: a PEFT directory (adapter_config.json
+ adapter_model.safetensors, as `rlreason-export --peft` and `PeftModel.save_pretrained` write)
or rlreason's own (adapter.json + adapter.safetensors, `lora.save_adapter`).

A PEFT LoRA directory holds `adapter_config.json` (`r`, `lora_alpha`, `target_modules`,
`rank_pattern`/`alpha_pattern`, `use_rslora`, `base_model_name_or_path`, ...) and
`adapter_model.safetensors` with `base_model.model.<HF module>.lora_A.weight` (r, in) and
`.lora_B.weight` (out, r); PeftModel applies y += alpha / r * B A x (alpha / sqrt(r) under
rsLoRA), the same update as our `LoRALinear`. Module names come from `arch.links`, so export and
import are exact. GPT-2's fused `c_attn` is exported as one block-structured adapter of rank
R = the sum of the q/k/v ranks, and imported as q/k/v adapters of rank R sharing A: a round trip
keeps the function but triples the q/k/v rank (see `save_peft_adapter`).

Not here: DoRA, LoRA biases, `modules_to_save`, trainable tokens (refused on import, with the
field named), and writing or reading the rlreason-native adapter files (lora.py).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import torch

from rlreason.model.hf.arch import arch_of
from rlreason.model.hf.export import hf_config_of
from rlreason.model.hf.files import CheckpointError, read_json
from rlreason.model.lora import LoRAConfig, LoRALinear, load_adapter, lora_modules

PREFIX = "base_model.model."
UNSUPPORTED = {
    "use_dora": False,
    "lora_bias": False,
    "bias": "none",
    "modules_to_save": None,
    "target_parameters": None,
    "trainable_token_indices": None,
    "layer_replication": None,
}


def module_map(model) -> dict[str, tuple[tuple[str, ...], bool]]:
    """HF module name → (our module names, whether HF stores it as a transposed Conv1D)."""
    _, arch = arch_of(hf_config_of(model))
    out = {}
    for link in arch.links(model.config):
        if link.hf.endswith(".weight") and all(n.endswith("_proj.weight") for n in link.ours):
            out[link.hf[: -len(".weight")]] = (
                tuple(n[: -len(".weight")] for n in link.ours),
                link.kind == "conv1d",
            )
    return out


def _target_modules(adapted: list[str], all_modules: list[str]) -> list[str]:
    def suffix(name):
        return ".".join(name.split(".")[-2:])

    adapted_set = set(adapted)
    uniform = {
        s
        for s in map(suffix, adapted)
        if all(m in adapted_set for m in all_modules if suffix(m) == s)
    }
    return sorted(uniform | {m for m in adapted if suffix(m) not in uniform})


def _export_pair(mods: list[LoRALinear | None], outs: list[int]):
    """(A (R, in), B (sum outs, R), scale) for one HF module made of our modules `mods`."""
    present = [m for m in mods if m is not None]
    scale = present[0].scale
    A = torch.cat([m.lora_A.weight.detach().float() for m in present], 0)  # (R, in)
    B = A.new_zeros(sum(outs), A.shape[0])  # (out, R)
    row, col = 0, 0
    for m, out in zip(mods, outs):
        if m is not None:
            r = m.lora_A.weight.shape[0]
            B[row : row + out, col : col + r] = m.lora_B.weight.detach().float() * (m.scale / scale)
            col += r
        row += out
    return A, B, scale


@torch.no_grad()
def save_peft_adapter(model, directory, base_model_name_or_path: str | None = None) -> Path:
    """Write `adapter_model.safetensors` + `adapter_config.json` loadable by `PeftModel`.

    Llama/Qwen: one HF module per LoRA module, tensors unchanged. GPT-2 fuses q/k/v into one
    `c_attn` (a transposed Conv1D; PEFT uses `fan_in_fan_out`): our q/k/v adapters export exactly
    as one c_attn adapter of rank R = sum of their ranks, A = [A_q; A_k; A_v] (R, C) and
    B = blockdiag(B_q, B_k, B_v) (3C, R), zero rows for projections without an adapter, with its
    rank/alpha in `rank_pattern`/`alpha_pattern`. `target_modules` uses two-component suffixes
    (`self_attn.q_proj`) when every matching module has an adapter, full names otherwise, so the
    set PEFT wraps is exactly ours."""
    from safetensors.torch import save_file

    ours = dict(lora_modules(model))
    if not ours:
        raise ValueError("save_peft_adapter: the model has no LoRA adapters (apply_lora first)")
    cfg: LoRAConfig = model.lora_config
    mapping = module_map(model)
    unmapped = set(ours) - {o for names, _ in mapping.values() for o in names}
    if unmapped:
        raise ValueError(f"save_peft_adapter: LoRA on {sorted(unmapped)[:3]} has no HF module")
    tensors, shapes = {}, {}
    dtype = next(iter(ours.values())).lora_A.weight.dtype
    for hf_mod, (names, _) in mapping.items():
        mods = [ours.get(n) for n in names]
        if all(m is None for m in mods):
            continue
        outs = [model.get_submodule(n).out_features for n in names]
        A, B, scale = _export_pair(mods, outs)
        tensors[f"{PREFIX}{hf_mod}.lora_A.weight"] = A.to(dtype).contiguous().cpu()
        tensors[f"{PREFIX}{hf_mod}.lora_B.weight"] = B.to(dtype).contiguous().cpu()
        r = A.shape[0]
        shapes[hf_mod] = (r, scale * (r**0.5 if cfg.rslora else r))
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out / "adapter_model.safetensors"), metadata={"format": "pt"})
    (out / "adapter_config.json").write_text(
        json.dumps(_adapter_config(model, cfg, shapes, mapping, base_model_name_or_path), indent=2)
    )
    return out


def _adapter_config(model, cfg: LoRAConfig, shapes: dict, mapping: dict, base) -> dict:
    r, alpha = Counter(shapes.values()).most_common(1)[0][0]
    return {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base or getattr(model, "hf_source", None),
        "r": r,
        "lora_alpha": alpha,
        "lora_dropout": cfg.dropout,
        "use_rslora": cfg.rslora,
        "target_modules": _target_modules(list(shapes), list(mapping)),
        "rank_pattern": {m: s[0] for m, s in shapes.items() if s[0] != r},
        "alpha_pattern": {m: s[1] for m, s in shapes.items() if s[1] != alpha},
        "fan_in_fan_out": any(mapping[m][1] for m in shapes),
        "bias": "none",
        "init_lora_weights": True,
        "inference_mode": True,
        "use_dora": False,
        "modules_to_save": None,
    }


def _pattern(patterns: dict, module: str, default):
    """PEFT's rule: a pattern key matches a module name ending in `.key` (or equal to it)."""
    for key, value in patterns.items():
        if re.match(rf"(.*\.)?({key})$", module):
            return value
    return default


@torch.no_grad()
def load_peft_adapter(model, directory) -> None:
    """Wrap the adapter's modules in `LoRALinear` with its weights; everything else frozen."""
    from safetensors.torch import load_file

    d = Path(directory)
    conf = read_json(d / "adapter_config.json", "PEFT adapter directory needs adapter_config.json")
    if conf.get("peft_type") != "LORA":
        raise CheckpointError(
            f"{d}/adapter_config.json: peft_type={conf.get('peft_type')!r}; only LORA"
        )
    for field, ok in UNSUPPORTED.items():
        if conf.get(field, ok) not in (ok, [], {}, False):
            raise CheckpointError(
                f"{d}/adapter_config.json: {field}={conf[field]!r} is not supported"
            )
    if lora_modules(model):
        raise ValueError("load_peft_adapter: the model already has LoRA adapters")
    path = d / "adapter_model.safetensors"
    if not path.is_file():
        raise CheckpointError(f"{path} is missing")
    state = load_file(str(path))
    mapping = module_map(model)
    for p in model.parameters():
        p.requires_grad_(False)
    targets = []
    for hf_mod in sorted({k[len(PREFIX) :].rsplit(".lora_", 1)[0] for k in state}):
        if hf_mod not in mapping:
            raise CheckpointError(
                f"{path}: module {hf_mod!r} is not a LoRA-able module of this model"
            )
        A, B = (state.get(f"{PREFIX}{hf_mod}.lora_{x}.weight") for x in "AB")
        if A is None or B is None:
            raise CheckpointError(f"{path}: {hf_mod} needs both lora_A and lora_B weights")
        r = _pattern(conf.get("rank_pattern") or {}, hf_mod, conf["r"])
        alpha = _pattern(conf.get("alpha_pattern") or {}, hf_mod, conf["lora_alpha"])
        targets += _wrap(model, mapping[hf_mod][0], A, B, r, alpha, conf, path, hf_mod)
    model.lora_config = LoRAConfig(
        conf["r"],
        conf["lora_alpha"],
        conf.get("lora_dropout", 0.0),
        bool(conf.get("use_rslora")),
        tuple(targets),
    )


def _wrap(model, names, A, B, r, alpha, conf, path, hf_mod) -> list[str]:
    bases = [model.get_submodule(n) for n in names]
    outs = [b.out_features for b in bases]
    if A.shape != (r, bases[0].in_features) or B.shape != (sum(outs), r):
        raise CheckpointError(
            f"{path}: {hf_mod} lora_A {tuple(A.shape)} / lora_B {tuple(B.shape)} "
            f"do not fit rank {r}, in {bases[0].in_features}, out {sum(outs)}"
        )
    for name, base, B_part in zip(names, bases, torch.split(B, outs, dim=0)):
        lora = LoRALinear(
            base, r, alpha, conf.get("lora_dropout", 0.0), bool(conf.get("use_rslora"))
        )
        lora.lora_A.weight.copy_(A)
        lora.lora_B.weight.copy_(B_part)
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, lora)
    return list(names)


def load_adapter_dir(model, directory) -> str:
    """Apply the adapter in `directory`, PEFT or rlreason layout; return "peft" or "rlreason"."""
    d = Path(directory)
    if (d / "adapter_config.json").is_file():
        load_peft_adapter(model, d)
        return "peft"
    if (d / "adapter.json").is_file():
        load_adapter(model, d)
        return "rlreason"
    raise CheckpointError(
        f"{d}: not an adapter directory (expected adapter_config.json + "
        "adapter_model.safetensors, the PEFT layout, or adapter.json + adapter.safetensors)"
    )
