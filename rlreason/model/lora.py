"""LoRA adapters (Hu et al. 2021) for any `nn.Linear`, with rsLoRA scaling (Kalajdzievski 2023).

`LoRALinear` wraps a frozen `nn.Linear`: y = base(x) + scale * B(A(dropout(x))), A (r, in)
Kaiming-uniform, B (out, r) zeros, scale = alpha / r (or alpha / sqrt(r) with rsLoRA). The
parameter names (`lora_A.weight`, `lora_B.weight`, `base.weight`) follow the PEFT key layout so
adapters export without renaming tensors.

- `apply_lora(model, rank, alpha, targets=...)` swaps matching `nn.Linear`s (fnmatch patterns on
  the full module name, or plain suffixes such as "q_proj") and freezes everything else.
- `disable_adapters(model)`: a context manager under which the model computes the base policy
  (the KL reference) with no second copy of the weights; works on merged models too.
- `merge_lora` / `unmerge_lora`: fold the update into the base weight for fast inference and back
  (`w += d; w -= d`: NOT bitwise exact in low precision; for a lasting fold use `fold_lora`).
- `merged_adapters(model)`: a context manager that folds every adapter into its base weight for
  the block (the forward then skips the adapter matmuls) and restores the base weights bitwise
  from a saved copy on exit, exceptions included. Costs one copy of the adapted base weights
  (`backup_device="cpu"` keeps it off the accelerator).
- `adapter_state_dict`, `load_adapter_state_dict`, `save_adapter`, `load_adapter`: adapter-only
  safetensors + JSON.
- `count_parameters(model)`: trainable vs total parameters.

Not here: the PEFT-format export and merged HF export (hf/peft.py, hf/export.py).
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn

from rlreason.config import LORA_TARGETS, LoRAConfig


class LoRALinear(nn.Module):
    def __init__(
        self, base: nn.Linear, rank: int, alpha: float, dropout: float = 0.0, rslora: bool = False
    ):
        super().__init__()
        if rank < 1:
            raise ValueError(f"LoRALinear: rank must be >= 1, got {rank}")
        self.base = base
        self.rank, self.alpha = rank, alpha
        self.scale = alpha / math.sqrt(rank) if rslora else alpha / rank
        dev, dt = base.weight.device, base.weight.dtype
        self.lora_A = nn.Linear(base.in_features, rank, bias=False, device=dev, dtype=dt)
        self.lora_B = nn.Linear(rank, base.out_features, bias=False, device=dev, dtype=dt)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False
        self.disabled = False

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    @property
    def weight(self) -> torch.Tensor:
        return self.base.weight

    def delta_weight(self) -> torch.Tensor:
        return (self.lora_B.weight @ self.lora_A.weight) * self.scale  # (out, in)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        if self.merged == self.disabled:  # merged & disabled: undo the fold; neither: add it
            update = self.lora_B(self.lora_A(self.dropout(x))) * self.scale
            y = y - update if self.merged else y + update
        return y

    @torch.no_grad()
    def merge(self) -> None:
        if not self.merged:
            self.base.weight += self.delta_weight().to(self.base.weight.dtype)
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        if self.merged:
            self.base.weight -= self.delta_weight().to(self.base.weight.dtype)
            self.merged = False

    def extra_repr(self) -> str:
        return f"rank={self.rank}, alpha={self.alpha}, scale={self.scale:.4g}"


def _matches(name: str, targets) -> bool:
    return any(fnmatch.fnmatchcase(name, t) or name.split(".")[-1] == t for t in targets)


def apply_lora(
    model: nn.Module,
    rank: int = 8,
    alpha: float = 16.0,
    targets=LORA_TARGETS,
    dropout: float = 0.0,
    rslora: bool = False,
) -> nn.Module:
    """Wrap every `nn.Linear` whose name matches `targets`; freeze all other parameters."""
    for p in model.parameters():
        p.requires_grad_(False)
    names = [
        n for n, m in model.named_modules() if isinstance(m, nn.Linear) and _matches(n, targets)
    ]
    if not names:
        raise ValueError(f"apply_lora: no nn.Linear matches targets {list(targets)}")
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LoRALinear(getattr(parent, child), rank, alpha, dropout, rslora))
    model.lora_config = LoRAConfig(rank, alpha, dropout, rslora, tuple(targets), enabled=True)
    return model


def lora_modules(model: nn.Module):
    return [(n, m) for n, m in model.named_modules() if isinstance(m, LoRALinear)]


@contextlib.contextmanager
def disable_adapters(model: nn.Module):
    """Inside the block the model is the base policy (the KL reference); restored on exit."""
    mods = [m for _, m in lora_modules(model)]
    previous = [m.disabled for m in mods]
    try:
        for m in mods:
            m.disabled = True
        yield model
    finally:
        for m, was in zip(mods, previous):
            m.disabled = was


@contextlib.contextmanager
def merged_adapters(model: nn.Module, backup_device: torch.device | str | None = None):
    """Fold every (unmerged) adapter into its base weight for the block; restore exactly on exit.

    Inside, each `LoRALinear` has `merged=True`, so its forward is the base matmul alone. The
    fold is computed in fp32 and stored in the base dtype: w' = round(w + B A * scale). The
    original w is copied (to `backup_device`, default its own device) before the fold and copied
    back on exit, so the base weights afterwards are bitwise those before, also after an exception.
    Modules already merged are left as they are. A model without adapters: a no-op."""
    mods = [m for _, m in lora_modules(model) if not m.merged]
    saved: list[tuple[LoRALinear, torch.Tensor]] = []
    try:
        with torch.no_grad():
            for m in mods:
                w = m.base.weight  # (out, in)
                backup = w.detach().to(backup_device or w.device, copy=True)
                saved.append((m, backup))
                w.copy_((w.float() + m.delta_weight().float()).to(w.dtype))
                m.merged = True
        yield model
    finally:
        with torch.no_grad():
            for m, backup in saved:
                m.base.weight.copy_(backup)
                m.merged = False


def merge_lora(model: nn.Module) -> nn.Module:
    for _, m in lora_modules(model):
        m.merge()
    return model


@torch.no_grad()
def fold_lora(model: nn.Module) -> nn.Module:
    """Fold every adapter into its base weight (the sum computed in fp32, stored in the base's
    dtype) and put the plain `nn.Linear` back in the adapter's place: a model without LoRA that
    computes what the adapted one did (up to the base dtype's rounding)."""
    for name, m in list(lora_modules(model)):
        w = m.base.weight
        w.copy_((w.float() + m.delta_weight().float()).to(w.dtype))
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, m.base)
    return model


def unmerge_lora(model: nn.Module) -> nn.Module:
    for _, m in lora_modules(model):
        m.unmerge()
    return model


def adapter_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    return {
        k: v.detach().clone()
        for k, v in model.state_dict().items()
        if ".lora_A." in k or ".lora_B." in k
    }


def load_adapter_state_dict(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    own = adapter_state_dict(model)
    missing, unexpected = set(own) - set(state), set(state) - set(own)
    if missing or unexpected:
        raise ValueError(
            f"load_adapter_state_dict: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}"
        )
    for k, v in state.items():
        if v.shape != own[k].shape:
            raise ValueError(
                f"load_adapter_state_dict: {k} has shape {tuple(v.shape)}, "
                f"model expects {tuple(own[k].shape)}"
            )
    model.load_state_dict(state, strict=False)


def save_adapter(model: nn.Module, directory: str | Path) -> Path:
    from safetensors.torch import save_file

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.contiguous() for k, v in adapter_state_dict(model).items()},
        str(d / "adapter.safetensors"),
    )
    (d / "adapter.json").write_text(json.dumps(asdict(model.lora_config), indent=1))
    return d


def load_adapter(model: nn.Module, directory: str | Path) -> nn.Module:
    """Apply LoRA with the saved config (if not applied yet) and load the saved adapter weights."""
    from safetensors.torch import load_file

    d = Path(directory)
    for f in ("adapter.json", "adapter.safetensors"):
        if not (d / f).is_file():
            raise FileNotFoundError(f"load_adapter: {d / f} is missing")
    cfg = LoRAConfig(**json.loads((d / "adapter.json").read_text()))
    if not lora_modules(model):
        apply_lora(model, cfg.rank, cfg.alpha, cfg.targets, cfg.dropout, cfg.rslora)
    load_adapter_state_dict(model, load_file(str(d / "adapter.safetensors")))
    return model


@dataclass
class ParamCount:
    trainable: int
    total: int
    lora: bool = False

    @property
    def percent(self) -> float:
        return 100.0 * self.trainable / max(self.total, 1)

    def __str__(self) -> str:
        label = "Total trainable LoRA parameters" if self.lora else "Total trainable parameters"
        return f"{label}: {self.trainable:,} of {self.total:,} ({self.percent:.2f}%)"


def count_parameters(model: nn.Module) -> ParamCount:
    unique = {id(p): p for p in model.parameters()}.values()  # tied weights counted once
    return ParamCount(
        sum(p.numel() for p in unique if p.requires_grad),
        sum(p.numel() for p in unique),
        bool(lora_modules(model)),
    )
