"""The training batch of one RL step and how it is cut into mini- and micro-batches.

`RolloutBatch` holds everything the update needs, row-aligned (B = groups * G rows, prompt-major):
prompt ids, completion tokens / mask / sampler log-probs from the engine, rewards and advantages.
`concat` joins the kept groups of several sampling rounds (dynamic sampling); `rows` selects rows,
`crop` cuts the per-token fields to the longest completion of a micro-batch. Every tensor field
lives on one device (checked on construction, `check_devices`); `to` moves them together.
`micro_batches` splits a mini-batch's rows so each forward/backward stays within a token budget.

Not here: computing advantages or losses (advantages.py, losses.py), sampling (engine.py).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch


@dataclass
class RolloutBatch:
    prompt_ids: list[list[int]]  # B lists
    tokens: torch.Tensor  # (B, T) completion ids
    mask: torch.Tensor  # (B, T) float: tokens that enter the loss
    sampler_logp: torch.Tensor  # (B, T) engine log-probs
    rewards: torch.Tensor  # (B,) total reward
    finish_reasons: list[str]  # B
    texts: list[str]  # B
    tasks: list  # B (opaque to rlreason)
    components: dict[str, list[float]]
    adv: torch.Tensor | None = None  # (B,) or (B, T)
    returns: torch.Tensor | None = None  # (B, T), PPO value targets

    def __post_init__(self) -> None:
        self.check_devices()

    def __len__(self) -> int:
        return self.tokens.shape[0]

    @property
    def device(self) -> torch.device:
        return self.tokens.device

    def check_devices(self, device: torch.device | str | None = None) -> None:
        """Every tensor field on one device (`device`, default the tokens'); else a ValueError
        naming each field and its device. A CUDA run that built one field on the CPU fails here,
        at the batch, not deep inside the loss."""
        want = torch.device(device) if device is not None else self.tokens.device
        wrong = {
            f.name: str(v.device)
            for f in fields(self)
            if isinstance(v := getattr(self, f.name), torch.Tensor) and not _same(v.device, want)
        }
        if wrong:
            raise ValueError(
                f"RolloutBatch: every tensor must be on {want}, but {wrong} are elsewhere"
            )

    def to(self, device) -> RolloutBatch:
        """The batch with every tensor field moved to `device`."""
        moved = {
            f.name: v.to(device)
            for f in fields(self)
            if isinstance(v := getattr(self, f.name), torch.Tensor)
        }
        return replace(self, **moved)

    def rows(self, idx) -> RolloutBatch:
        idx_l = [int(i) for i in idx]
        idx_t = torch.as_tensor(idx_l, dtype=torch.long, device=self.tokens.device)
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, torch.Tensor):
                out[f.name] = v[idx_t]
            elif isinstance(v, dict):
                out[f.name] = {k: [vals[i] for i in idx_l] for k, vals in v.items()}
            elif isinstance(v, list):
                out[f.name] = [v[i] for i in idx_l]
            else:
                out[f.name] = v
        return RolloutBatch(**out)

    def crop(self, T: int) -> RolloutBatch:
        """The first T completion positions: every (B, T) tensor field cut to (B, T')."""
        cut = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, torch.Tensor) and v.dim() == 2:  # per-token field
                cut[f.name] = v[:, :T]
        return replace(self, **cut)


def _same(a: torch.device, b: torch.device) -> bool:
    """Same device; `cuda` and `cuda:<current>` count as the same."""
    if a.type != b.type:
        return False
    if a.type != "cuda":
        return a.index == b.index or None in (a.index, b.index)
    return _index(a) == _index(b)


def _index(d: torch.device) -> int:
    if d.index is not None:
        return d.index
    return torch.cuda.current_device() if torch.cuda.is_available() else 0


def _pad_cat(tensors: list[torch.Tensor], value) -> torch.Tensor:
    T = max(t.shape[1] for t in tensors)
    return torch.cat(
        [torch.nn.functional.pad(t, (0, T - t.shape[1]), value=value) for t in tensors]
    )


def concat(batches: list[RolloutBatch], pad_id: int) -> RolloutBatch:
    """Join batches row-wise; completions are right-padded to the longest."""
    if len(batches) == 1:
        return batches[0]
    first = batches[0]
    return replace(
        first,
        prompt_ids=[p for b in batches for p in b.prompt_ids],
        tokens=_pad_cat([b.tokens for b in batches], pad_id),
        mask=_pad_cat([b.mask for b in batches], 0.0),
        sampler_logp=_pad_cat([b.sampler_logp for b in batches], 0.0),
        rewards=torch.cat([b.rewards for b in batches]),
        finish_reasons=[r for b in batches for r in b.finish_reasons],
        texts=[t for b in batches for t in b.texts],
        tasks=[t for b in batches for t in b.tasks],
        components={k: [v for b in batches for v in b.components[k]] for k in first.components},
        adv=None,
        returns=None,
    )


def micro_batches(
    rows: list[int], prompt_lens: list[int], comp_lens: list[int], token_budget: int
) -> list[list[int]]:
    """Consecutive groups of `rows` whose padded size (n * (max prompt + max completion)) fits."""
    out, cur, p_max, c_max = [], [], 0, 0
    for r in rows:
        p, c = max(p_max, prompt_lens[r]), max(c_max, comp_lens[r])
        if cur and (len(cur) + 1) * (p + c) > token_budget:
            out.append(cur)
            cur, p, c = [], prompt_lens[r], comp_lens[r]
        cur.append(r)
        p_max, c_max = p, c
    if cur:
        out.append(cur)
    return out
