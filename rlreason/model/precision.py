"""Mixed precision: fp32 trainable weights and optimizer state, low-precision compute.

`model.dtype=bfloat16` (or `float16`) means the compute dtype, not the dtype of what the optimizer
steps. `mixed_precision(model, dtype)`:
- frozen parameters (the base weights under LoRA, the KL reference) are stored in `dtype`;
- trainable parameters (LoRA A/B, or every weight under full fine-tuning) are stored in float32,
  so AdamW's state and every update are float32: a 1e-6 step on a bf16 weight of magnitude 1e-2
  would round to nothing (bf16 keeps 8 significant bits);
- `model.compute_dtype = dtype`: the model's forward passes run under `torch.autocast`
  (`autocast(model)`), which casts each matmul's inputs to `dtype`; fp32 weights are cast on the
  fly and their gradients arrive in fp32.
float16 also needs loss scaling against gradient underflow: `loss_scaler(model)` returns a
`torch.amp.GradScaler` for it (None otherwise) and the update uses it. On CUDA, `enable_tf32()`
lets fp32 matmuls (the fp32 parts under autocast, fp32 runs) use TF32 tensor cores.

A model with `compute_dtype` None or float32 runs exactly as before: no autocast, no scaler.
Not here: choosing the dtype (`model.dtype`, experiments/models.py) or the update (rl/update.py).
"""

from __future__ import annotations

import contextlib

import torch

LOW_PRECISION = (torch.bfloat16, torch.float16)


def mixed_precision(model: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """Frozen parameters in `dtype`, trainable ones in float32; forward passes autocast to `dtype`.

    float32 (or float64) leaves the model as it is. Buffers keep their dtype (RoPE tables stay
    fp32). Returns the model, changed in place."""
    if dtype not in LOW_PRECISION:
        model.compute_dtype = None
        return model
    for p in model.parameters():
        p.data = p.data.to(torch.float32 if p.requires_grad else dtype)
    model.compute_dtype = dtype
    return model


def compute_dtype(model: torch.nn.Module) -> torch.dtype:
    """The dtype activations (and the KV cache) are computed in."""
    dt = getattr(model, "compute_dtype", None)
    if dt is not None:
        return dt
    return next(model.parameters()).dtype


def autocast(model: torch.nn.Module, device: torch.device | None = None):
    """A `torch.autocast` context for the model's compute dtype; a no-op without one."""
    dt = getattr(model, "compute_dtype", None)
    if dt not in LOW_PRECISION:
        return contextlib.nullcontext()
    if device is None:
        device = next(model.parameters()).device
    return torch.autocast(device_type=torch.device(device).type, dtype=dt)


def loss_scaler(model: torch.nn.Module) -> torch.amp.GradScaler | None:
    """A dynamic loss scaler for float16 compute (None for every other dtype)."""
    if getattr(model, "compute_dtype", None) is not torch.float16:
        return None
    return torch.amp.GradScaler(next(model.parameters()).device.type)


def enable_tf32(device: torch.device) -> bool:
    """Allow TF32 tensor cores for fp32 matmuls and convolutions on CUDA; True when set."""
    if torch.device(device).type != "cuda":
        return False
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    return True


def precision_record(model: torch.nn.Module) -> dict[str, object]:
    """What the run computed and stored in, for the run directory."""
    trainable = {str(p.dtype) for p in model.parameters() if p.requires_grad}
    frozen = {str(p.dtype) for p in model.parameters() if not p.requires_grad}
    return {
        "compute_dtype": str(compute_dtype(model)),
        "trainable_dtypes": sorted(trainable),
        "frozen_dtypes": sorted(frozen),
        "tf32": bool(torch.backends.cuda.matmul.allow_tf32),
    }
