"""Data-parallel processes under torchrun: who this process is, and the few collectives used.

`Dist` reads torchrun's environment (`WORLD_SIZE`, `RANK`, `LOCAL_RANK`); `init()` joins the
process group when WORLD_SIZE > 1 (NCCL on CUDA after `torch.cuda.set_device(LOCAL_RANK)`, Gloo
on the CPU) and otherwise returns a single-process `Dist` whose collectives return their input,
so a plain `rlreason-train` runs exactly the code it ran before and stays the reference.
Collectives: sums of floats and of gradients, an all-gather of small picklable objects, a
broadcast of one object or of tensors from rank 0, a barrier.

There is no DDP module wrapper: the trainer calls the policy through `model.hidden()` and a
chunked `lm_head`, never `forward()`, so DDP's reducer would not see the backward. Gradients are
instead summed explicitly (`all_reduce_grads`, flat buckets) once per mini-batch, after its
micro-batch loop; each rank's loss is already its share of the global loss (rl/shard.py).
With `train.parallel=fsdp2` the weights are sharded instead and FSDP reduce-scatters (sums) the
gradients itself (rl/fsdp.py); `all_reduce_grads` is then not used.
Not here: what is sharded or reduced (rl/shard.py), FSDP2 (rl/fsdp.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch

BUCKET_BYTES = 32 * 2**20  # one all-reduce per ~32 MiB of gradients


@dataclass(frozen=True)
class Dist:
    """This process's place among the data-parallel ranks; rank 0 alone logs and writes files."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str | None = None  # None: single process, no process group

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def device(self) -> torch.device:
        """The device this rank computes on: cuda:LOCAL_RANK under NCCL, else the CPU."""
        return (
            torch.device("cuda", self.local_rank) if self.backend == "nccl" else torch.device("cpu")
        )

    # ------------------------------------------------------------------ collectives
    def sum_floats(self, values: list[float]) -> list[float]:
        """Element-wise sum over ranks of a list of floats (float64, on the backend's device)."""
        if self.world == 1:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=self.device)  # (n,)
        torch.distributed.all_reduce(t)
        return t.tolist()

    def all_gather(self, obj: Any) -> list[Any]:
        """Every rank's `obj` (small and picklable), in rank order."""
        if self.world == 1:
            return [obj]
        out: list[Any] = [None] * self.world
        torch.distributed.all_gather_object(out, obj)
        return out

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's `obj` on every rank."""
        if self.world == 1:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def broadcast_tensors(self, tensors: list[torch.Tensor]) -> None:
        """Overwrite every tensor in place with rank 0's values."""
        if self.world == 1:
            return
        with torch.no_grad():
            for t in tensors:
                torch.distributed.broadcast(t.data, src=0)

    def all_reduce_grads(self, params: list[torch.nn.Parameter]) -> None:
        """Sum each parameter's gradient over ranks, in flat buckets. A parameter with no gradient
        on this rank joins with zeros; one with no gradient on any rank keeps `grad = None`, as in
        one process (AdamW skips it)."""
        if self.world == 1 or not params:
            return
        has = torch.tensor([p.grad is not None for p in params], device=self.device)  # (n,)
        has = has.to(torch.int32)
        torch.distributed.all_reduce(has)
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        for bucket in _buckets(params):
            flat = torch.cat([p.grad.reshape(-1) for p in bucket])  # (sum of numels,)
            torch.distributed.all_reduce(flat)
            offset = 0
            for p in bucket:
                n = p.grad.numel()
                p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
                offset += n
        for p, h in zip(params, has.tolist()):
            if h == 0:
                p.grad = None

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def close(self) -> None:
        if self.world > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def _buckets(params: list[torch.nn.Parameter]) -> list[list[torch.nn.Parameter]]:
    """Consecutive runs of same-dtype, same-device gradients of at most BUCKET_BYTES each."""
    out: list[list[torch.nn.Parameter]] = []
    size = 0
    for p in params:
        nbytes = p.grad.numel() * p.grad.element_size()
        last = out[-1][-1] if out else None
        same = last is not None and (last.grad.dtype, last.grad.device) == (
            p.grad.dtype,
            p.grad.device,
        )
        if not same or size + nbytes > BUCKET_BYTES:
            out.append([])
            size = 0
        out[-1].append(p)
        size += nbytes
    return out


def from_env() -> Dist:
    """The `Dist` torchrun's environment describes, without joining any group."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", str(rank)))
    return Dist(rank, world, local)


def init(device: str = "auto") -> Dist:
    """Join the process group torchrun set up (idempotent); single process: no group at all.

    `device`: the run's `model.device`; "cpu" keeps a CUDA machine on Gloo."""
    d = from_env()
    if d.world == 1:
        return d
    cuda = torch.cuda.is_available() and device != "cpu"
    backend = "nccl" if cuda else "gloo"
    if cuda:
        torch.cuda.set_device(d.local_rank)
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend=backend)
    return Dist(d.rank, d.world, d.local_rank, backend)
