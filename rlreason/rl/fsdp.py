"""`train.parallel=fsdp2`: full fine-tuning with the weights sharded over the data-parallel ranks.

`shard_model(model, dist)` applies `torch.distributed.fsdp.fully_shard` (FSDP2) to every
transformer block, then to the root (embeddings, final norm and lm_head stay in the root unit, so
a tied lm_head stays one parameter). Parameters become DTensors holding 1/N of each weight; the
optimizer (AdamW over the sharded parameters) keeps 1/N of its state. `hidden` is registered as an
FSDP forward method (the log-prob and sampling code call it and `lm_head` directly, never
`forward`): blocks are all-gathered in their pre-forward and freed after; the root stays gathered
from its first forward to the end of the backward (FSDP's default for the root).

Precision: rlreason's (model/precision.py): parameters stay float32 masters and the forward runs
under the model's autocast, so a sharded step computes what a replicated one does. The
`MixedPrecisionPolicy` all-gathers in float32 by default (`gather_dtype`: all-gather in the compute
dtype instead, half the traffic, but then norms and embeddings compute in it as well) and reduces
gradients in float32. float16 (a GradScaler with per-rank overflow checks) is not supported.

Gradients: rlreason's loss norms are global (rl/shard.py), so the gradients of the ranks are
SUMMED: divide factor 1 with sum-only reductions (Gloo has no PREMUL_SUM); `Shard.reduce_grads` is
a no-op for sharded parameters. FSDP reduce-scatters once per backward, so every rank must run the
same number of backwards in a mini-batch: `backward_padding` agrees on the largest count and
`zero_backward` runs the missing ones (a 1-token forward, loss times 0). Clipping: torch's
`clip_grad_norm_` (rlreason.optim.clip_gradients) takes the global norm over the DTensor shards
(its float is the global value on every rank) and scales every shard by the same factor.

Generation, evaluation and the no-grad log-prob passes run a rank-dependent number of forwards:
they must run inside `gathered(model, ...)` (every FSDP module unsharded once, resharded after),
which also saves an all-gather per decode step. Re-entrant; a no-op for unsharded models.

Checkpoints (`full_model_state`, `full_optimizer_state`, `load_*`): rank 0 writes the full,
unsharded state in the layout of an unsharded run (weights by name, optimizer state by parameter
index), so a checkpoint does not depend on how the run was sharded; loading broadcasts it from
rank 0 and re-shards. Not here: the value head (PPO) and LoRA are refused (experiments/train.py:
`check`), the teacher is not sharded (a replicated frozen copy), no HSDP/tensor parallelism.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch

FORWARD_METHODS = ("hidden",)  # called by logprobs.py and the sampler besides forward


def _fsdp():
    import torch.distributed.fsdp as fsdp

    return fsdp


def is_sharded(model) -> bool:
    return model is not None and isinstance(model, _fsdp().FSDPModule)


def has_dtensors(params) -> bool:
    from torch.distributed.tensor import DTensor

    return any(isinstance(p, DTensor) for p in params)


def fsdp_modules(model) -> list:
    """The root and every sharded submodule (blocks), root first."""
    return [m for m in model.modules() if isinstance(m, _fsdp().FSDPModule)]


def shard_model(model, dist, *, gather_dtype: torch.dtype | None = None):
    """Shard `model` (a GPT: `.blocks`, embeddings, `lm_head`) over `dist`'s ranks, in place."""
    from torch.distributed.device_mesh import init_device_mesh

    f = _fsdp()
    mesh = init_device_mesh(dist.device.type, (dist.world,))
    policy = f.MixedPrecisionPolicy(param_dtype=gather_dtype, reduce_dtype=torch.float32)
    for block in model.blocks:
        f.fully_shard(block, mesh=mesh, mp_policy=policy)
    f.fully_shard(model, mesh=mesh, mp_policy=policy)
    for name in FORWARD_METHODS:
        f.register_fsdp_forward_method(model, name)
    for m in fsdp_modules(model):
        m.set_gradient_divide_factor(1.0)  # sum: the loss norm is already global
        m.set_force_sum_reduction_for_comms(True)
    model.set_reshard_after_forward(False, recurse=False)  # the root: FSDP's default, explicit
    return model


@contextlib.contextmanager
def gathered(*models):
    """Every FSDP module of `models` unsharded for the block (one all-gather each), resharded
    after; forwards inside run no collectives. Models that are None or unsharded are skipped."""
    todo = [m for m in models if is_sharded(m) and not getattr(m, "_rlreason_gathered", False)]
    for model in todo:
        model._rlreason_gathered = True
        for m in fsdp_modules(model):
            m.set_reshard_after_forward(False, recurse=False)
            m.unshard()
    try:
        yield
    finally:
        for model in todo:
            for m in fsdp_modules(model):
                m.reshard()
                m.set_reshard_after_forward(m is not model, recurse=False)  # blocks reshard
            model._rlreason_gathered = False


def backward_padding(model, dist, n_backward: int) -> int:
    """How many zero backwards this rank adds so every rank runs the largest count (0 when the
    model is not sharded). A collective: call it before the mini-batch's first forward."""
    if not is_sharded(model) or dist.world == 1:
        return 0
    return max(dist.all_gather(int(n_backward))) - n_backward


def zero_backward(model) -> None:
    """One forward and backward of a 1-token input with loss 0: every parameter gets a zero
    gradient and FSDP runs the reduce-scatters another rank's real backward runs."""
    from rlreason.model import precision

    device = next(model.parameters()).device
    ids = torch.zeros(1, 1, dtype=torch.long, device=device)
    with precision.autocast(model, device):
        out = model.lm_head(model.hidden(ids)).float()
    (out.sum() * 0.0).backward()


# ---------------------------------------------------------------- checkpoints
def _options(**kw):
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True, **kw)


def full_model_state(model) -> dict[str, torch.Tensor]:
    """The unsharded weights on rank 0 (CPU; {} on other ranks); a tied lm_head stored once,
    as `rlreason.model.io.weights_state` stores it. A collective: every rank calls it."""
    from torch.distributed.checkpoint.state_dict import get_model_state_dict

    state = get_model_state_dict(model, options=_options(cpu_offload=True))
    if getattr(model.config, "tie_embeddings", False):
        state.pop("lm_head.weight", None)
    return {k: v.detach().contiguous() for k, v in state.items()}


def load_full_model_state(model, weights: dict[str, torch.Tensor], is_main: bool) -> None:
    """Load unsharded weights (read on rank 0; others pass anything) into a sharded model."""
    from torch.distributed.checkpoint.state_dict import set_model_state_dict

    weights = dict(weights) if is_main else {}
    if is_main and getattr(model.config, "tie_embeddings", False):
        weights.setdefault("lm_head.weight", weights["tok_emb.weight"])
    set_model_state_dict(model, weights, options=_options(broadcast_from_rank0=True))


def _index_names(model, optimizer) -> list[str]:
    """The name of each optimizer parameter in `optimizer.state_dict()`'s index order."""
    names = {id(p): n for n, p in model.named_parameters()}
    return [names[id(p)] for g in optimizer.param_groups for p in g["params"]]


def full_optimizer_state(model, optimizer) -> dict:
    """The unsharded optimizer state on rank 0 in `optimizer.state_dict()`'s layout (parameters
    by index), so it loads into an unsharded run's optimizer; {} on other ranks. A collective."""
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    full = get_optimizer_state_dict(model, optimizer, options=_options(cpu_offload=True))
    if not full:
        return {}
    index = {n: i for i, n in enumerate(_index_names(model, optimizer))}
    groups = [{**g, "params": [index[n] for n in g["params"]]} for g in full["param_groups"]]
    return {"state": {index[n]: s for n, s in full["state"].items()}, "param_groups": groups}


def load_full_optimizer_state(model, optimizer, state: dict, is_main: bool) -> None:
    """Load an optimizer state of `optimizer.state_dict()`'s layout (rank 0's) and re-shard it."""
    from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

    full: dict = {}
    if is_main:
        names = _index_names(model, optimizer)
        full = {
            "state": {names[int(i)]: s for i, s in state["state"].items()},
            "param_groups": [
                {**g, "params": [names[int(i)] for i in g["params"]]} for g in state["param_groups"]
            ],
        }
    set_optimizer_state_dict(model, optimizer, full, options=_options(broadcast_from_rank0=True))


# ---------------------------------------------------------------- strategies
def _replicate(model, reference, dist, gather_dtype=None):
    return model, reference


def _fsdp2(model, reference, dist, gather_dtype=None):
    model = shard_model(model, dist, gather_dtype=gather_dtype)
    if reference is not None:  # frozen, stored in the compute dtype: gathered as it is
        reference = shard_model(reference, dist)
    return model, reference


# train.parallel -> (model, reference, dist) -> (model, reference), the data-parallel weights
STRATEGIES: dict[str, Callable] = {"replicate": _replicate, "fsdp2": _fsdp2}


def check(cfg, world: int, needs_value: bool) -> None:
    """ConfigError for a `train.parallel` that is unknown or cannot run this configuration
    (checked before any model loads)."""
    from rlreason.config import ConfigError

    p = cfg.train.parallel
    if p not in STRATEGIES:
        raise ConfigError(f"train.parallel={p!r}; expected one of {sorted(STRATEGIES)}")
    if p != "fsdp2":
        return
    refusals = [
        (
            cfg.lora.enabled,
            "train.parallel=fsdp2 is for full fine-tuning; with lora.enabled=true use "
            "train.parallel=replicate (adapters are small, the frozen base is replicated)",
        ),
        (
            needs_value,
            f"train.parallel=fsdp2 does not shard PPO's value head (algo.advantage="
            f"{cfg.algo.advantage}); use train.parallel=replicate",
        ),
        (
            cfg.model.dtype == "float16",
            "train.parallel=fsdp2 does not support model.dtype=float16 (loss scaling over "
            "sharded gradients); use bfloat16 or float32",
        ),
        (
            world < 2,
            f"train.parallel=fsdp2 shards the weights over data-parallel processes, but this run "
            f"has world size {world}: fsdp2 needs torchrun with >= 2 processes "
            "(torchrun --nproc_per_node=N --no-python rlreason-train ...)",
        ),
    ]
    for bad, message in refusals:
        if bad:
            raise ConfigError(message)
