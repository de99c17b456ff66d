"""Checkpoints of an RL run: everything needed to continue exactly where it stopped.

Layout of `<run_dir>/checkpoints/step_NNNNNN/`:
- `trainable.safetensors`: LoRA adapter tensors (under LoRA) or the full model weights;
- `value_head.safetensors`: PPO's value head, when there is one;
- `optimizer.pt`: the AdamW state dict (tensors and numbers only, read with `weights_only=True`);
- `rng.pt`: torch CPU (and CUDA) generator states, read with `weights_only=True`;
- `state.json`: step, data position, tracker run id, bad-step streak, Python RNG state.
`<run_dir>/latest` names the newest complete checkpoint; it is written last (atomic rename), so an
interruption mid-save leaves the previous checkpoint current. Nothing here unpickles code.
Data-parallel runs (`dist` with world > 1): rank 0 writes the weights, optimizer and state (the
data position is global; `world_size` is recorded); every rank r writes its own torch, CUDA and
Python RNG states to `rng_rank{r}.pt` instead of `rng.pt`; `latest` moves once every rank has
written. Resuming needs the same world size (a different one is refused, naming both) and restores
each rank's RNG exactly. The run directory must be visible to every rank (one machine, or a
shared file system). Sharded weights (`train.parallel=fsdp2`, rl/fsdp.py) are gathered and saved
by rank 0 in the same layout (full weights; optimizer state by parameter index, as
`optimizer.state_dict()` numbers it), so such a checkpoint loads into an unsharded model too;
resuming reads it on rank 0 and re-shards it.

Not here: what the state means (rl/trainer.py).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import torch

from rlreason.config import ConfigError
from rlreason.model.io import weights_state
from rlreason.model.lora import adapter_state_dict, load_adapter_state_dict, lora_modules
from rlreason.rl import fsdp

CHECKPOINT_FILES = ("trainable.safetensors", "optimizer.pt", "state.json")


def _trainable_state(model) -> dict[str, torch.Tensor]:
    return adapter_state_dict(model) if lora_modules(model) else weights_state(model)


def save_checkpoint(
    run_dir: str | Path, step: int, *, model, optimizer, state: dict, value_head=None, dist=None
) -> Path:
    run_dir = Path(run_dir)
    d = run_dir / "checkpoints" / f"step_{step:06d}"
    d.mkdir(parents=True, exist_ok=True)
    if dist is not None and dist.world > 1:
        rng = {"torch": torch.get_rng_state(), "python": _py_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state()
        torch.save(rng, d / f"rng_rank{dist.rank}.pt")
        full = _sharded_state(model, optimizer)  # FSDP2: gathered by every rank, kept on rank 0
        if dist.is_main:
            state = {**state, "world_size": dist.world}
            _write(d, model, optimizer, value_head, state, step, *full)
        dist.barrier()  # every rank's RNG file is there before `latest` names the checkpoint
        if dist.is_main:
            _point_latest(run_dir, d)
        return d
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    torch.save(rng, d / "rng.pt")
    _write(d, model, optimizer, value_head, state, step)
    _point_latest(run_dir, d)
    return d


def _py_state() -> list:
    v, internal, gauss = random.getstate()
    return [v, list(internal), gauss]


def _sharded_state(model, optimizer) -> tuple[dict | None, dict | None]:
    """(weights, optimizer state), unsharded, of an FSDP2 model (rank 0's; {} elsewhere), or
    (None, None) for a model every rank holds whole."""
    if not fsdp.is_sharded(model):
        return None, None
    return fsdp.full_model_state(model), fsdp.full_optimizer_state(model, optimizer)


def _write(
    d: Path, model, optimizer, value_head, state: dict, step: int, weights=None, optim_state=None
) -> None:
    from safetensors.torch import save_file

    weights = _trainable_state(model) if weights is None else weights
    save_file(weights, str(d / "trainable.safetensors"))
    if value_head is not None:
        save_file(
            {k: v.contiguous() for k, v in value_head.state_dict().items()},
            str(d / "value_head.safetensors"),
        )
    optim_state = optimizer.state_dict() if optim_state is None else optim_state
    torch.save(optim_state, d / "optimizer.pt")
    full = {**state, "step": step, "python_rng": _py_state()}
    (d / "state.json").write_text(json.dumps(full, indent=1))


def _point_latest(run_dir: Path, d: Path) -> None:
    tmp = run_dir / "latest.tmp"
    tmp.write_text(d.relative_to(run_dir).as_posix())
    os.replace(tmp, run_dir / "latest")


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


def load_checkpoint(d: str | Path, *, model, optimizer, value_head=None, dist=None) -> dict:
    """Restore weights, optimizer and RNG states in place; return the saved state dict.
    `dist`: this rank; the checkpoint must come from a run of the same world size."""
    from safetensors.torch import load_file

    d = Path(d)
    state = json.loads((d / "state.json").read_text())
    saved, world = state.pop("world_size", 1), dist.world if dist is not None else 1
    if saved != world:
        raise ConfigError(
            f"{d} was saved by {saved} data-parallel process(es) (world size {saved}); this run "
            f"has world size {world}. Resume with the same world size "
            f"(torchrun --nproc_per_node={saved}, or plain rlreason-train for 1): the prompt "
            "shards and per-rank RNG states depend on it"
        )
    if fsdp.is_sharded(model):  # FSDP2: rank 0 reads the full state, every rank takes its shard
        main = dist.is_main
        weights = load_file(str(d / "trainable.safetensors")) if main else {}
        fsdp.load_full_model_state(model, weights, main)
        optim = torch.load(d / "optimizer.pt", weights_only=True) if main else {}
        fsdp.load_full_optimizer_state(model, optimizer, optim, main)
    else:
        load_trainable(model, d / "trainable.safetensors")
        optimizer.load_state_dict(torch.load(d / "optimizer.pt", weights_only=True))
    if value_head is not None:
        value_head.load_state_dict(load_file(str(d / "value_head.safetensors")))
    v, internal, gauss = state.pop("python_rng")
    random.setstate((v, tuple(internal), gauss))
    if world > 1:
        rng = torch.load(d / f"rng_rank{dist.rank}.pt", weights_only=True)
        torch.set_rng_state(rng["torch"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state(rng["cuda"])
        v, internal, gauss = rng["python"]
        random.setstate((v, tuple(internal), gauss))
    elif (d / "rng.pt").is_file():
        rng = torch.load(d / "rng.pt", weights_only=True)
        torch.set_rng_state(rng["torch"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
    return state
