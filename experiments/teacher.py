"""Load a frozen teacher (`teacher.*`): a run's latest policy, a built-in base, a local or Hugging
Face directory, with an optional LoRA adapter; and check it shares the student's tokenizer.

`load_run_policy(run_dir)` is also how `rlreason-eval eval.run_dir=...` rebuilds a run's policy:
the run's config.yaml, its seed (the same scratch weights), its latest trainable weights.
A teacher is returned in eval mode with every weight frozen and stored in its compute dtype.

Not here: what the teacher is used for (experiments/sample.py, rl/update.py's teacher pass).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from rlreason.config import ConfigError, ModelConfig, TeacherConfig

TEACHER_SOURCES = ("run", "base", "base_small", "local", "hf")


def load_run_policy(run_dir: str | Path, device: str | None = None, key: str = "run_dir"):
    """(model, tokenizer, info) of a run directory's latest checkpoint; errors name `key`."""
    from experiments.build import build_policy, load_run_config
    from experiments.schema import env_options
    from rlreason.checkpoint import latest_checkpoint, load_trainable

    run_dir = Path(run_dir)
    saved = load_run_config(run_dir, key)
    model_cfg = saved.model if device is None else dataclasses.replace(saved.model, device=device)
    torch.manual_seed(saved.seed)  # as build_trainer does: same scratch base weights
    model, tokenizer = build_policy(model_cfg, saved.lora)
    ckpt = latest_checkpoint(run_dir)
    load_trainable(model, ckpt / "trainable.safetensors")
    step = json.loads((ckpt / "state.json").read_text()).get("step", 0)
    info = {
        "run_dir": str(run_dir),
        "checkpoint": str(ckpt),
        "step": step,
        "env": saved.env.name,
        "env_options": env_options(saved.env),
    }
    return model.eval(), tokenizer, info


def load_teacher(t: TeacherConfig, model: ModelConfig):
    """(teacher, tokenizer, info) for `teacher.*`; `model` (the student's `model.*`) supplies the
    device and, when `teacher.dtype` is None, the compute dtype."""
    from experiments.models import build_model
    from rlreason.model.gpt import DTYPES
    from rlreason.model.hf.peft import load_adapter_dir
    from rlreason.model.precision import mixed_precision

    if t.source not in TEACHER_SOURCES:
        raise ConfigError(f"teacher.source={t.source!r}: choose one of {list(TEACHER_SOURCES)}")
    dtype = t.dtype or model.dtype
    if dtype not in DTYPES:
        raise ConfigError(f"teacher.dtype={dtype!r}: choose one of {sorted(DTYPES)}")
    if t.source in ("run", "local", "hf") and not t.path:
        raise ConfigError(f"teacher.source={t.source} needs teacher.path=<directory>")
    if t.path and not Path(t.path).is_dir():
        raise ConfigError(f"teacher.path={t.path}: no such directory")
    try:
        if t.source == "run":
            teacher, tokenizer, info = load_run_policy(t.path, model.device, "teacher.path")
        else:
            mc = ModelConfig(source=t.source, path=t.path, dtype=dtype, device=model.device)
            teacher, tokenizer = build_model(mc)
            info = {"source": t.source, "path": t.path}
        if t.adapter:
            info["adapter_format"] = load_adapter_dir(teacher, t.adapter)
            info["adapter"] = t.adapter
    except (FileNotFoundError, ValueError) as e:  # CheckpointError is a ValueError
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"teacher ({t.source}, {t.path}): {e}") from e
    teacher.eval().requires_grad_(False)
    mixed_precision(teacher, DTYPES[dtype])  # frozen: every weight in the compute dtype
    info = {**info, "source": t.source, "dtype": dtype}
    return teacher, tokenizer, info


def check_same_tokenizer(student_tok, teacher_tok, probe: str) -> None:
    """The teacher scores the student's token ids, so both must tokenize alike: same vocabulary
    size and the same ids for `probe` (a rendered prompt plus a completion-like tail)."""
    sv, tv = _vocab(student_tok), _vocab(teacher_tok)
    if sv != tv:
        raise ConfigError(
            f"the teacher's tokenizer has {tv} tokens and the student's {sv}: on-policy "
            "distillation needs one tokenizer (pick a teacher of the student's family)"
        )
    a, b = student_tok.encode(probe), teacher_tok.encode(probe)
    if a != b:
        raise ConfigError(
            f"the teacher and the student tokenize {probe[:40]!r} differently "
            f"({a[:8]}... vs {b[:8]}...): on-policy distillation needs one tokenizer"
        )


def _vocab(tok) -> int:
    return int(getattr(tok, "vocab_size", None) or len(tok))
