"""Prepacked CPU linear layers for inference: oneDNN-blocked weights for the duration of a block.

On CPU, `F.linear` with few rows (decoding: one row per sequence) runs well below the machine's
GEMM peak; oneDNN's `_linear_pointwise` on a weight reordered once into its blocked layout is
2-3x faster at 1-32 rows and ~1.3x at 1,024 rows (measured on 2 AVX2 cores, see README). The
results agree with `F.linear` to float rounding (~3e-6 absolute at d=768), not bit for bit.

`packed_linears(model)` is a context manager: inside it, every `nn.Linear` of `model` whose
weight is a float32 CPU tensor of at least `MIN_WEIGHT_ELEMENTS` (2^18) entries runs on a packed
copy of that weight; on exit the modules are exactly as before. The packed copies are made on
entry and dropped on exit, so a weight that changes between blocks (an optimizer step, a LoRA
merge, a checkpoint load) can never be served stale. Extra memory while inside: one copy of the
packed weights.

It is a no-op (with no error) where it cannot help or is unsupported: non-CPU weights, dtypes
other than float32 (oneDNN's bf16 path needs AVX-512/AVX-NE-CONVERT), a PyTorch build without
oneDNN, or autograd (it is meant for `torch.no_grad()` inference; under grad mode the modules
call `F.linear` as usual, so training is never affected).

Not here: fused activations, quantisation, GPU kernels.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn as nn
import torch.nn.functional as F


def available() -> bool:
    """True if this PyTorch build has oneDNN's linear kernels."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


# Smallest weight (in_features * out_features) worth packing: oneDNN's call costs ~30-50 us more
# than F.linear's, which a 128x128 or 384x384 layer never wins back (measured, module docstring).
MIN_WEIGHT_ELEMENTS = 1 << 18


def _packable(module: nn.Module, min_elements: int) -> bool:
    w = getattr(module, "weight", None)
    return (
        isinstance(module, nn.Linear)
        and isinstance(w, torch.Tensor)
        and w.device.type == "cpu"
        and w.dtype == torch.float32
        and w.dim() == 2
        and w.numel() >= min_elements
    )


def _packed_forward(module: nn.Linear, packed: torch.Tensor):
    weight, bias = module.weight, module.bias

    def forward(x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() or x.dtype != torch.float32 or x.device.type != "cpu":
            return F.linear(x, weight, bias)
        return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")

    return forward


@contextlib.contextmanager
def packed_linears(model: nn.Module, rows_hint: int = 32, min_elements: int = MIN_WEIGHT_ELEMENTS):
    """Inside the block, float32 CPU `nn.Linear`s of `model` with at least `min_elements`
    weights run on oneDNN-packed weights.

    `rows_hint` is the expected number of input rows (oneDNN picks its blocking from it; any row
    count works). Yields the number of layers packed (0 where unsupported).
    """
    patched: list[nn.Module] = []
    try:
        if available():
            with torch.no_grad():
                for module in model.modules():
                    if not _packable(module, min_elements) or "forward" in module.__dict__:
                        continue
                    try:
                        packed = torch.ops.mkldnn._reorder_linear_weight(
                            module.weight.detach(), max(1, rows_hint)
                        )
                    except RuntimeError:  # this CPU/build cannot pack this weight
                        continue
                    module.forward = _packed_forward(module, packed)
                    patched.append(module)
        yield len(patched)
    finally:
        for module in patched:
            del module.forward
