"""Checkpoints of an RL run: everything needed to continue exactly where it stopped.

Layout of `<run_dir>/checkpoints/step_NNNNNN/`:
- `trainable.safetensors`: LoRA adapter tensors (under LoRA) or the full model weights;
- `value_head.safetensors`: PPO's value head, when there is one;
- `optimizer.pt`: the AdamW state dict (tensors and numbers only, read with `weights_only=True`);
- `rng.pt`: torch CPU (and CUDA) generator states, read with `weights_only=True`;
- `state.json`: step, data position, tracker run id, bad-step streak, Python RNG state.
`<run_dir>/latest` names the newest complete checkpoint; it is written last (atomic rename), so an
interruption mid-save leaves the previous checkpoint current. Nothing here unpickles code.

Not here: what the state means (rl/trainer.py).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import torch

from rlreason.model.io import weights_state
from rlreason.model.lora import adapter_state_dict, load_adapter_state_dict, lora_modules

CHECKPOINT_FILES = ("trainable.safetensors", "optimizer.pt", "state.json")


def _trainable_state(model) -> dict[str, torch.Tensor]:
    return adapter_state_dict(model) if lora_modules(model) else weights_state(model)


def save_checkpoint(
    run_dir: str | Path, step: int, *, model, optimizer, state: dict, value_head=None
) -> Path:
    from safetensors.torch import save_file

    run_dir = Path(run_dir)
    d = run_dir / "checkpoints" / f"step_{step:06d}"
    d.mkdir(parents=True, exist_ok=True)
    save_file(_trainable_state(model), str(d / "trainable.safetensors"))
    if value_head is not None:
        save_file(
            {k: v.contiguous() for k, v in value_head.state_dict().items()},
            str(d / "value_head.safetensors"),
        )
    torch.save(optimizer.state_dict(), d / "optimizer.pt")
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    torch.save(rng, d / "rng.pt")
    py_state = random.getstate()
    full = {**state, "step": step, "python_rng": [py_state[0], list(py_state[1]), py_state[2]]}
    (d / "state.json").write_text(json.dumps(full, indent=1))
    tmp = run_dir / "latest.tmp"
    tmp.write_text(d.relative_to(run_dir).as_posix())
    os.replace(tmp, run_dir / "latest")
    return d


def find_checkpoint(run_dir: str | Path, step: int | None = None) -> Path:
    """`checkpoints/step_N` for `step`, else the one `<run_dir>/latest` names; FileNotFoundError
    naming the path (and the saved steps) when it is not there or incomplete."""
    run_dir = Path(run_dir)
    if step is None:
        pointer = run_dir / "latest"
        if not pointer.is_file():
            raise FileNotFoundError(
                f"{run_dir}: no checkpoint ({pointer} is missing; rlreason-train writes one every "
                "train.save_every steps and at the end)"
            )
        d = run_dir / pointer.read_text().strip()
    else:
        d = run_dir / "checkpoints" / f"step_{step:06d}"
    missing = [f for f in CHECKPOINT_FILES if not (d / f).is_file()]
    if missing:
        saved = sorted(p.name for p in (run_dir / "checkpoints").glob("step_*"))
        raise FileNotFoundError(
            f"{d}: no checkpoint there, or an incomplete one ({', '.join(missing)} missing); "
            f"saved: {', '.join(saved) if saved else 'none'}"
        )
    return d


def latest_checkpoint(run_dir: str | Path) -> Path:
    """The newest complete checkpoint of a run (see `find_checkpoint`)."""
    return find_checkpoint(run_dir)


def load_trainable(model, path: str | Path) -> None:
    """Load a checkpoint's `trainable.safetensors` into `model`: adapters, or the full weights."""
    from safetensors.torch import load_file

    weights = load_file(str(path))
    if lora_modules(model):
        load_adapter_state_dict(model, weights)
        return
    missing, unexpected = model.load_state_dict(weights, strict=False)
    missing = [k for k in missing if not (k == "lm_head.weight" and model.config.tie_embeddings)]
    if missing or unexpected:
        raise ValueError(
            f"{path}: missing {missing[:5]}, unexpected {unexpected[:5]} "
            "(was the run trained with a different LoRA setting?)"
        )


def load_checkpoint(d: str | Path, *, model, optimizer, value_head=None) -> dict:
    """Restore weights, optimizer and RNG states in place; return the saved state dict."""
    from safetensors.torch import load_file

    d = Path(d)
    load_trainable(model, d / "trainable.safetensors")
    if value_head is not None:
        value_head.load_state_dict(load_file(str(d / "value_head.safetensors")))
    optimizer.load_state_dict(torch.load(d / "optimizer.pt", weights_only=True))
    if (d / "rng.pt").is_file():
        rng = torch.load(d / "rng.pt", weights_only=True)
        torch.set_rng_state(rng["torch"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
    state = json.loads((d / "state.json").read_text())
    v, internal, gauss = state.pop("python_rng")
    random.setstate((v, tuple(internal), gauss))
    return state
