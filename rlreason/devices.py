"""Device names: whether `model.device` (or a teacher's) can run on this machine.

Not here: placing models (experiments/models.py) or data-parallel devices (distributed.py).
"""

from __future__ import annotations


def device_problem_of(name: str) -> str | None:
    """Why `model.device` cannot run here (None: it can), checked before any model loads."""
    import torch

    if name == "auto":
        return None
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        return "not a device name; use auto, cpu, cuda or cuda:N"
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            return (
                f"CUDA is not available (torch {torch.__version__}, built for CUDA "
                f"{torch.version.cuda}); use model.device=cpu or auto"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            return f"this machine has {torch.cuda.device_count()} CUDA device(s)"
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        return "MPS is not available; use model.device=cpu or auto"
    elif dev.type not in ("cpu", "cuda", "mps"):
        return "use auto, cpu, cuda, cuda:N or mps"
    return None
