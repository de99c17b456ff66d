"""Model sources picked by `model.source`: each returns `(model, tokenizer)`.

- `base`: the built-in tiny base model (pretrained on the synthetic corpus, cached by config hash;
  built on first use by `experiments.demo.pretrain.ensure_base`);
- `base_small`: the same recipe with half the layers (2): a weaker student for distillation;
- `scratch`: a randomly initialised GPT with the char tokenizer (shape from the model config);
- `local`: an rlreason model directory (`model.safetensors` + `config.json` + `tokenizer.json`);
- `hf`: a Hugging Face checkpoint directory (`rlreason.model.hf.load_pretrained`);
- `run`: a run directory's latest policy (`model.path=<run dir>`), LoRA folded in: the next stage
  of a multi-stage recipe (SFT, then RL) starts from it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import torch

from rlreason.model.gpt import (
    DTYPES,  # the model.dtype choices validate() checks
    GPT,
    GPTConfig,
)
from rlreason.model.tokenizer import CharTokenizer


def _need_path(cfg) -> str:
    if not cfg.path:
        raise ValueError(f"model.source={cfg.source!r} needs model.path=<directory>")
    return cfg.path


def _base(cfg):
    from experiments.demo.pretrain import ensure_base
    from rlreason.model.io import load_model

    return load_model(ensure_base())


def _base_small(cfg):
    """The built-in base's recipe at half the layers (the routes' distillation student)."""
    from experiments.demo.pretrain import ensure_base, small_base_config
    from rlreason.model.io import load_model

    return load_model(ensure_base(small_base_config()))


def _scratch(cfg):
    tok = CharTokenizer()
    gcfg = GPTConfig(
        vocab_size=tok.vocab_size,
        n_layer=cfg.n_layer,
        n_head=cfg.n_head,
        d_model=cfg.d_model,
        max_seq_len=cfg.max_seq_len,
        flavour=cfg.flavour,
    )
    return GPT(gcfg), tok


def _local(cfg):
    from rlreason.model.io import load_model

    return load_model(_need_path(cfg))


def _hf(cfg):
    from rlreason.model.hf import load_pretrained

    return load_pretrained(_need_path(cfg), dtype=DTYPES[cfg.dtype])


def _run(cfg):
    """A run directory's latest policy (an SFT or RL run), adapters folded into the weights: the
    start of a next stage (SFT cold start, then RL), which may add adapters of its own."""
    from experiments.run_dirs import load_run_config
    from rlreason.checkpoint import latest_checkpoint, load_trainable
    from rlreason.model.lora import apply_lora, fold_lora

    run_dir = Path(_need_path(cfg))
    saved = load_run_config(run_dir, "model.path")
    torch.manual_seed(saved.seed)  # as the run did: the same scratch base weights
    model, tokenizer = build_model(dataclasses.replace(saved.model, device=cfg.device))
    if saved.lora.enabled:
        lo = saved.lora
        apply_lora(model, lo.rank, lo.alpha, tuple(lo.targets), lo.dropout, lo.rslora)
    load_trainable(model, latest_checkpoint(run_dir) / "trainable.safetensors")
    return fold_lora(model).requires_grad_(True), tokenizer


MODEL_SOURCES: dict[str, Callable] = {
    "base": _base,
    "base_small": _base_small,
    "scratch": _scratch,
    "local": _local,
    "hf": _hf,
    "run": _run,
}


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def build_model(cfg):
    if cfg.source not in MODEL_SOURCES:
        raise ValueError(f"model.source={cfg.source!r}: choose one of {sorted(MODEL_SOURCES)}")
    model, tok = MODEL_SOURCES[cfg.source](cfg)
    model = model.to(device=resolve_device(cfg.device), dtype=DTYPES[cfg.dtype])
    model.gradient_checkpointing = cfg.gradient_checkpointing
    return model, tok
