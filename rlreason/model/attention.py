"""Attention kernels and masks of the GPT (gpt.py); the masked SDPA call is the reference.

- `decode_attention`: one query per row over a (strided) KV cache, two matmuls, GQA native.
- `additive_mask` / `attention_mask`: the dense masks of the reference path (left padding,
  cached prefill, decode over a growing cache).
- `compact_order`: mask-free handling of padding for a forward WITHOUT a cache. A stable sort
  moves every row's real tokens (key_mask True) to the front, in their order; plain causal
  attention over that layout lets each real query see exactly the real keys at or before it,
  which is what the dense mask allows. Position ids are gathered along, so RoPE / learned
  positions are unchanged, and the outputs are scattered back to the original slots. Works for
  left, right and two-sided padding and holes. Padding slots' outputs are unspecified garbage
  (finite) in both paths: the dense path lets a padding query see real keys and itself, the
  compact one every earlier slot; callers mask them out (losses, log-probs).
- `sdpa`: `F.scaled_dot_product_attention` with the KV heads expanded only where the backend
  needs it.

What the PyTorch CUDA SDPA kernels accept (torch 2.5+): flash attention takes fp16/bf16,
no `attn_mask` (only `is_causal`), and GQA via `enable_gqa=True`; memory-efficient attention
takes fp32 too and an additive/bool `attn_mask`, but not GQA; cuDNN attention (H100/H200) takes
fp16/bf16 and masks, no GQA; everything else falls to the math kernel, which materialises the
(B, H, T, S) scores. So: no mask + bf16 + GQA goes to flash; with a mask or fp32, GQA is
expanded here (`repeat_interleave`, a copy of K/V) so the efficient kernel can run instead of
math. On CPU `enable_gqa=True` is used as is (no copy).

Not here: the model (gpt.py), caches (gpt.KVCache, sampling/kv.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def decode_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """Attention of one query per row over the cached keys, for the decode step.

    q (B, H, 1, D); k, v (B, Hkv, S, D), possibly strided views of a larger cache; `bias` float32
    additive mask (0 or -inf) broadcastable to (B, 1, 1, S), see `additive_mask`. The query heads
    of a GQA group are stacked as rows of one matmul against their shared key head, so k/v are
    neither expanded nor copied (SDPA copies a strided cache slice on every call, and its mask
    handling costs more than the two matmuls at this size). Softmax runs in float32.
    Returns (B, H, 1, D).
    """
    B, H, _, D = q.shape
    Hkv = k.shape[1]
    qg = (q * D**-0.5).reshape(B, Hkv, H // Hkv, D)  # (B, Hkv, G, D)
    scores = torch.matmul(qg, k.transpose(-1, -2)).float()  # (B, Hkv, G, S)
    if bias is not None:
        scores = scores + bias  # bias (B|1, 1, 1, S)
    probs = torch.softmax(scores, dim=-1).to(v.dtype)
    return torch.matmul(probs, v).reshape(B, H, 1, D)  # (B, H, 1, D)


def additive_mask(mask: torch.Tensor) -> torch.Tensor:
    """Bool attention mask (True = may attend) → float32 additive bias (0 / -inf), same shape."""
    return torch.zeros(mask.shape, dtype=torch.float32, device=mask.device).masked_fill_(
        ~mask, float("-inf")
    )


def attention_mask(key_mask: torch.Tensor | None, start: int, T: int, device) -> torch.Tensor:
    """Bool mask (B or 1, 1, T, start+T): causal over absolute slots, minus invalid key slots.

    Every query may always see its own slot, so a padding query never has an all-masked row
    (which would make SDPA emit NaN that then leaks through 0 * NaN in later layers).
    """
    S = start + T
    q_slot = torch.arange(start, S, device=device)[:, None]  # (T, 1)
    k_slot = torch.arange(S, device=device)[None, :]  # (1, S)
    causal = k_slot <= q_slot  # (T, S)
    if key_mask is None:
        return causal[None, None]
    valid = causal[None, None] & key_mask[:, None, None, :S].bool()  # (B, 1, T, S)
    return valid | (k_slot == q_slot)[None, None]


def compact_order(key_mask: torch.Tensor) -> torch.Tensor:
    """key_mask (B, T) bool → order (B, T): slot indices, real tokens first (stable), then pads.

    `x.gather(1, order)` compacts, `out.scatter(1, order, y)` puts results back."""
    return torch.sort((~key_mask.bool()).to(torch.uint8), dim=1, stable=True).indices  # (B, T)


def sdpa(q, k, v, attn_mask: torch.Tensor | None, is_causal: bool) -> torch.Tensor:
    """q (B, H, T, D), k/v (B, Hkv, S, D) → (B, H, T, D); see the module docstring for GQA."""
    gqa = k.shape[1] != q.shape[1]
    if gqa and q.is_cuda and (attn_mask is not None or q.dtype == torch.float32):
        rep = q.shape[1] // k.shape[1]
        k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)  # (B, H, S, D)
        gqa = False
    return F.scaled_dot_product_attention(
        q, k, v, attn_mask=attn_mask, is_causal=is_causal, enable_gqa=gqa
    )
