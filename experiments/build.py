"""Builders shared by `rlreason-train` and `rlreason-eval`: env, template, policy, scorer, run dir.

Each turns one part of the typed config into the object it names: the env and its template
(`env.*`), the model with its LoRA adapters (`model.*`, `lora.*`), the scorer (the env's rewards
with the `reward.*` overrides and `reward_gate`, see rewards.scoring), the run directory and a
run's saved config. This module runs nothing.
"""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path

from experiments.run_dirs import load_run_config  # noqa: F401  (re-exported)
from rlreason.config import Config, ConfigError, LoRAConfig, ModelConfig


def build_env(cfg):
    """(env, template) for `cfg.env`: the registered env built from its typed options."""
    from envs.base import build_env as make_env
    from envs.templates import get_template
    from experiments.schema import env_options

    env = make_env(cfg.env.name, **env_options(cfg.env))
    try:
        template = get_template(cfg.env.template or env.template)
    except KeyError as e:
        raise ConfigError(f"env.template={cfg.env.template!r}: {e.args[0]}") from e
    return env, template


def build_policy(model_cfg: ModelConfig, lora: LoRAConfig):
    """(model, tokenizer) from `model.*`, with LoRA adapters applied when `lora.enabled`, in mixed
    precision (rlreason.model.precision): trainable weights fp32, compute in `model.dtype`."""
    from experiments.models import build_model
    from rlreason.model.gpt import DTYPES
    from rlreason.model.lora import apply_lora
    from rlreason.model.precision import enable_tf32, mixed_precision

    model, tokenizer = build_model(model_cfg)
    if lora.enabled:
        apply_lora(model, lora.rank, lora.alpha, tuple(lora.targets), lora.dropout, lora.rslora)
    mixed_precision(model, DTYPES[model_cfg.dtype])
    if hasattr(model, "attn_padding"):  # rlreason's GPT: how padded forwards attend
        model.attn_padding = model_cfg.attn_padding
    if model_cfg.tf32:
        enable_tf32(next(model.parameters()).device)
    return model, tokenizer


def build_scorer(cfg, env, template):
    """The env's rewards with the config's overrides, as a scorer (rewards.scoring)."""
    from rewards.scoring import build_scorer as build

    overrides = {name: (t.weight, dict(t.options)) for name, t in cfg.reward.items()}
    try:
        return build(env, template, overrides, cfg.reward_gate)
    except ValueError as e:
        raise ConfigError(str(e)) from e


def run_directory(cfg: Config, arm: str, dist=None) -> Path:
    """train.resume, else log.run_dir, else log.out_dir/<name>/<time>-<arm>-seed<seed>; with
    `dist` (data-parallel ranks) rank 0's choice, broadcast, so every rank names one directory.

    The arm part is short and safe in any file system: at most 40 characters of the arm's
    overrides (path values by their last component) with every character outside
    [A-Za-z0-9._=+-] replaced by `_`, then 8 hex digits
    hashing the whole override list (two arms that share a prefix still differ). The overrides
    themselves are recorded in config.yaml (`log.overrides`). A generated directory is created
    here, atomically, with a `-N` suffix if another run took the name in the same second."""
    if dist is not None and dist.world > 1:
        return Path(dist.broadcast(str(run_directory(cfg, arm)) if dist.is_main else ""))
    if cfg.train.resume:
        return Path(cfg.train.resume)
    if cfg.log.run_dir:
        return Path(cfg.log.run_dir)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return _claim(Path(cfg.log.out_dir) / cfg.name / f"{stamp}-{arm_label(arm)}-seed{cfg.seed}")


def _claim(path: Path) -> Path:
    """Create `path`, or `path-2`, `path-3`, ... when a run started in the same second already
    holds it (parallel sweep jobs whose arms differ only in ignored keys): never two runs in one
    directory."""
    for n in range(1, 1000):
        candidate = path if n == 1 else path.with_name(f"{path.name}-{n}")
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            continue
    raise FileExistsError(f"{path}: 999 runs already hold this name")


def arm_label(arm: str, limit: int = 40) -> str:
    """A short, path-safe label for an arm (see `run_directory`); "default" for no overrides."""
    if not arm:
        return "default"
    short = ",".join(_short_value(o) for o in arm.split(","))
    slug = re.sub(r"[^A-Za-z0-9._=+-]+", "_", short).strip("._")[:limit]
    return f"{slug}-{hashlib.sha1(arm.encode()).hexdigest()[:8]}"


def _short_value(override: str) -> str:
    """`key=/a/b/name` -> `key=name`: a path value is known by its last component."""
    key, eq, value = override.partition("=")
    return f"{key}{eq}{value.rstrip('/').rsplit('/', 1)[-1]}" if "/" in value else override
