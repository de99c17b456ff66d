"""rlreason-native model directories: `model.safetensors` + `config.json` + `tokenizer.json`.

`save_model(model, tokenizer, dir)` writes the full weights (adapters merged out: LoRA wrappers are
saved under their base names only if `merge=True`; otherwise the raw state dict is stored, which
`load_model` restores onto a model with the same LoRA layout). `load_model(dir)` rebuilds `GPT`
from `config.json` and the tokenizer from `tokenizer.json`; a missing file, a shape mismatch (naming
the tensor) or an unknown tokenizer kind is a clear error. Nothing here unpickles: weights are
safetensors, metadata JSON.

Not here: Hugging Face layout import/export (hf/), adapters only (lora.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from rlreason.model.gpt import GPT, GPTConfig
from rlreason.model.tokenizer import CharTokenizer

TOKENIZERS = {"char": CharTokenizer}


def weights_state(model: GPT) -> dict[str, torch.Tensor]:
    """Detached, contiguous weights; a tied lm_head is stored once, as tok_emb.weight."""
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    if model.config.tie_embeddings:
        state.pop("lm_head.weight", None)
    return state


def save_model(model: GPT, tokenizer, directory: str | Path) -> Path:
    from safetensors.torch import save_file

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    save_file(weights_state(model), str(d / "model.safetensors"))
    (d / "config.json").write_text(json.dumps(model.config.to_dict(), indent=1))
    if tokenizer is not None:
        tokenizer.save(d)
    return d


def load_model(directory: str | Path, dtype: torch.dtype | None = None, device="cpu"):
    """(model, tokenizer) from a directory written by `save_model`."""
    from safetensors.torch import load_file

    d = Path(directory)
    for f in ("config.json", "model.safetensors"):
        if not (d / f).is_file():
            raise FileNotFoundError(f"load_model: {d / f} is missing")
    try:
        cfg = GPTConfig(**json.loads((d / "config.json").read_text()))
    except (TypeError, json.JSONDecodeError) as e:
        raise ValueError(f"load_model: {d / 'config.json'} is not a GPTConfig: {e}") from e
    model = GPT(cfg)
    state = load_file(str(d / "model.safetensors"))
    own = model.state_dict()
    if cfg.tie_embeddings:
        own.pop("lm_head.weight", None)
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        raise ValueError(
            f"load_model: {d}: missing tensors {missing[:5]}, unexpected {unexpected[:5]}"
        )
    bad = [
        f"{k} has shape {tuple(v.shape)}, config expects {tuple(own[k].shape)}"
        for k, v in sorted(state.items())
        if v.shape != own[k].shape
    ]
    if bad:
        raise ValueError(f"load_model: {d}: " + "; ".join(bad))
    model.load_state_dict(state, strict=False)
    model.to(device=device, dtype=dtype)
    tokenizer = None
    if (d / "tokenizer.json").is_file():
        kind = json.loads((d / "tokenizer.json").read_text()).get("kind", "char")
        if kind not in TOKENIZERS:
            raise ValueError(f"load_model: {d / 'tokenizer.json'}: unknown tokenizer kind {kind!r}")
        tokenizer = TOKENIZERS[kind].load(d)
    return model, tokenizer
