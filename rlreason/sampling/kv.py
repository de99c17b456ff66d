"""Static-shape KV cache for the static decode loop (static.py): a shared prompt prefix plus
per-sample suffixes, and the attention over both.

- `split_attention`: one decode query per row over a prefix cache of P rows, each shared by the
  n consecutive samples of its prompt (queries viewed as (P, Hkv, n*G, D), so the prefix keys are
  broadcast, never copied), plus a suffix cache of P*n rows. GQA native: the G query heads of a
  KV head are rows of one matmul. The two parts are merged by log-sum-exp (one softmax over the
  union, computed as two partial softmaxes), float32 statistics.
- `SplitCache`: the prefix (the prefill's `KVCache`, used as is) and a zeroed suffix preallocated
  for every decode step; the write slot is a device tensor, the suffix mask compares slot indices
  with it, so every step has the same shapes and no host read (CUDA-graph / compile friendly).
  It implements the model's "own attention" cache protocol (gpt.py): `attends`, `prepare(T)`,
  `attend(layer, q, k, v, mask)`, `advance(T)`.
- `prefill`: right-padded prompts, one plain causal forward into the prefix cache (no dense
  mask), logits of each prompt's last real token.

The reference is the eager path (engine.py: left-padded prefill, `decode_attention` on a copied
cache). Not here: the decode loop, draws and stops (static.py).
"""

from __future__ import annotations

import torch

from rlreason.model import precision
from rlreason.model.attention import additive_mask
from rlreason.model.gpt import KVCache

_FLOOR = torch.finfo(torch.float32).min  # row maxima floor: a fully masked part weighs 0, no NaN


def split_attention(q, pk, pv, pbias, sk, sv, sbias, n: int) -> torch.Tensor:
    """q (B, H, 1, D) with B = P*n (prompt-major); prefix pk, pv (P, Hkv, Lp, D) and additive
    pbias (P, 1, 1, Lp); suffix sk, sv (B, Hkv, Ss, D) and sbias broadcastable to (B, 1, 1, Ss).
    Returns (B, H, 1, D) = softmax over [prefix ; suffix] keys, as if the prefix were repeated."""
    B, H, _, D = q.shape
    P, Hkv = pk.shape[0], pk.shape[1]
    G = H // Hkv
    qs = (q * D**-0.5).reshape(B, Hkv, G, D)  # (B, Hkv, G, D)
    qp = qs.view(P, n, Hkv, G, D).transpose(1, 2).reshape(P, Hkv, n * G, D)  # (P, Hkv, nG, D)
    sp = torch.matmul(qp, pk.transpose(-1, -2)).float() + pbias  # (P, Hkv, nG, Lp)
    ss = torch.matmul(qs, sk.transpose(-1, -2)).float() + sbias  # (B, Hkv, G, Ss)
    mp = sp.amax(-1, keepdim=True).clamp_min(_FLOOR)  # (P, Hkv, nG, 1)
    ms = ss.amax(-1, keepdim=True).clamp_min(_FLOOR)  # (B, Hkv, G, 1)
    ep, es = torch.exp(sp - mp), torch.exp(ss - ms)
    op = torch.matmul(ep.to(pv.dtype), pv).float()  # (P, Hkv, nG, D) unnormalised
    os_ = torch.matmul(es.to(sv.dtype), sv).float()  # (B, Hkv, G, D)

    def rows(x):  # (P, Hkv, n*G, X) → (B, Hkv, G, X)
        return x.view(P, Hkv, n, G, -1).transpose(1, 2).reshape(B, Hkv, G, -1)

    mp, lp, op = rows(mp), rows(ep.sum(-1, keepdim=True)), rows(op)
    m = torch.maximum(mp, ms)  # (B, Hkv, G, 1)
    wp, ws = torch.exp(mp - m), torch.exp(ms - m)
    y = (op * wp + os_ * ws) / (lp * wp + es.sum(-1, keepdim=True) * ws)  # (B, Hkv, G, D)
    return y.to(sv.dtype).reshape(B, H, 1, D)


class SplitCache:
    """Prefix k/v (L, P, Hkv, Lp, D) shared by n samples each + suffix (L, P*n, Hkv, steps, D)."""

    attends = True  # gpt.py: this cache writes, masks and attends itself
    length = 0  # unused by the model for such a cache (positions are always given)

    def __init__(self, prefix: KVCache, prefix_mask: torch.Tensor, n: int, steps: int):
        L, P, Hkv, _, D = prefix.k.shape
        Lp = prefix.length
        self.pk, self.pv, self.n = prefix.k[:, :, :, :Lp], prefix.v[:, :, :, :Lp], n
        shape = (L, P * n, Hkv, steps, D)
        dev = prefix.k.device
        self.sk = torch.zeros(shape, dtype=prefix.k.dtype, device=dev)  # zeros: never NaN
        self.sv = torch.zeros(shape, dtype=prefix.v.dtype, device=dev)
        self.pbias = additive_mask(prefix_mask[:, :Lp])[:, None, None, :]  # (P, 1, 1, Lp)
        self.slots = torch.arange(steps, device=dev)  # (Ss,)
        self.t = torch.zeros(1, dtype=torch.long, device=dev)  # suffix slot of the next write

    def buffers(self) -> list[torch.Tensor]:
        return [self.sk, self.sv, self.t]

    def prepare(self, T: int) -> torch.Tensor:
        if T != 1:
            raise ValueError(f"SplitCache: decode steps feed one token per row (got {T})")
        zero = torch.zeros((), device=self.t.device)
        return torch.where(self.slots <= self.t, zero, float("-inf"))[None, None, None]

    def attend(self, layer: int, q, k, v, sbias) -> torch.Tensor:
        sk, sv = self.sk[layer], self.sv[layer]  # (B, Hkv, Ss, D) views
        sk.index_copy_(2, self.t, k.to(sk.dtype))  # k (B, Hkv, 1, D) into slot t
        sv.index_copy_(2, self.t, v.to(sv.dtype))
        return split_attention(q, self.pk[layer], self.pv[layer], self.pbias, sk, sv, sbias, self.n)

    def advance(self, T: int) -> None:
        self.t += T


def right_pad(prompt_ids, pad_id: int, device):
    """ids (P, L) right-padded, key mask (P, L) bool, lengths (P,) long."""
    lens = torch.tensor([len(p) for p in prompt_ids], dtype=torch.long)
    ids = torch.full((len(prompt_ids), int(lens.max())), pad_id, dtype=torch.long)
    for i, p in enumerate(prompt_ids):
        ids[i, : len(p)] = torch.as_tensor(list(p), dtype=torch.long)
    valid = torch.arange(ids.shape[1])[None, :] < lens[:, None]
    return ids.to(device), valid.to(device), lens.to(device)


def prefill(model, prompt_ids, n: int, steps: int, share_prefix: bool, pad_id: int, device):
    """→ (SplitCache, logits (P*n, V), next positions (P*n,)). `share_prefix` False prefills
    every sample (P*n prefix rows, n = 1 each) instead of each distinct prompt once."""
    if not hasattr(model, "hidden"):
        raise TypeError("generate(static=True) needs this package's GPT (`hidden`, cache protocol)")
    ids, valid, lens = right_pad(prompt_ids, pad_id, device)  # (P, L)
    rep = 1 if share_prefix else n
    ids, valid, lens = (x.repeat_interleave(rep, 0) for x in (ids, valid, lens))
    rows, L = ids.shape
    cache = KVCache.allocate(model.config, rows, L, precision.compute_dtype(model), device)
    positions = torch.arange(L, device=device).expand(rows, L)
    h = model.hidden(ids, kv_cache=cache, positions=positions)  # (rows, L, C) plain causal
    last = h.gather(1, (lens - 1)[:, None, None].expand(rows, 1, h.shape[-1]))  # (rows, 1, C)
    logits = model.lm_head(last)[:, 0]  # (rows, V)
    share = n // rep
    split = SplitCache(cache, valid, share, steps)
    return split, logits.repeat_interleave(share, 0), lens.repeat_interleave(share, 0)
