"""Token log-probs and entropy of completions under the policy, in chunks.

Layout (the engine's): each row is its prompt left-padded to the batch's longest prompt P, then
its completion right-padded to T. The hidden state at slot P-1+j predicts completion token j, so
`hidden[:, P-1:P-1+T]` lines up with the rollouts' `(B, T)` tokens and mask; nothing downstream
re-derives prompt boundaries.

Memory: the lm_head projection, log-softmax and entropy run over `chunk` completion positions at a
time under activation checkpointing, so the full `(B, T, V)` fp32 logits never exist at once,
neither in forward nor in backward (each chunk's logits are recomputed in backward).

Temperature: logits are divided by the sampling temperature (when > 0) so the trainer's
log-probs are comparable with the sampler's.

Not here: losses (losses.py), the value head (value.py), sampling (engine.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.checkpoint import checkpoint

from rlreason.model import precision


@dataclass
class PackedBatch:
    ids: torch.Tensor  # (B, P + T) left-padded prompts then right-padded completions
    key_mask: torch.Tensor  # (B, P + T) bool, real tokens
    positions: torch.Tensor  # (B, P + T) position ids of real tokens
    tokens: torch.Tensor  # (B, T) completion ids
    prompt_len: int  # P


def pack(
    prompt_ids: list[list[int]], tokens: torch.Tensor, mask: torch.Tensor, pad_id: int
) -> PackedBatch:
    """Pack prompts (lists) and completions (B, T) into the engine's layout."""
    B, T = tokens.shape
    P = max(len(p) for p in prompt_ids)
    device = tokens.device
    ids = torch.full((B, P + T), pad_id, dtype=torch.long, device=device)
    key_mask = torch.zeros(B, P + T, dtype=torch.bool, device=device)
    for b, p in enumerate(prompt_ids):
        ids[b, P - len(p) : P] = torch.as_tensor(p, dtype=torch.long, device=device)
        key_mask[b, P - len(p) : P] = True
    ids[:, P:] = tokens
    key_mask[:, P:] = mask > 0
    positions = (key_mask.long().cumsum(1) - 1).clamp(min=0)
    return PackedBatch(ids, key_mask, positions, tokens, P)


def _chunk_logp_entropy(h: torch.Tensor, head, targets: torch.Tensor, temperature: float):
    logits = head(h).float()  # (B, t, V)
    if temperature > 0:
        logits = logits / temperature
    logp_all = torch.log_softmax(logits, -1)  # (B, t, V)
    logp = logp_all.gather(-1, targets[..., None])[..., 0]  # (B, t)
    entropy = -(logp_all.exp() * logp_all).sum(-1)  # (B, t)
    return logp, entropy


def token_logprobs(
    model,
    batch: PackedBatch,
    *,
    temperature: float = 1.0,
    chunk: int = 64,
    with_hidden: bool = False,
):
    """(logp (B, T), entropy (B, T)[, hidden (B, T, C)]) of the completion tokens."""
    with precision.autocast(model, batch.ids.device):  # mixed precision: the lm_head too
        return _token_logprobs(model, batch, temperature, chunk, with_hidden)


def _token_logprobs(model, batch: PackedBatch, temperature: float, chunk: int, with_hidden: bool):
    P, T = batch.prompt_len, batch.tokens.shape[1]
    hidden = model.hidden(batch.ids, positions=batch.positions, key_mask=batch.key_mask)
    h = hidden[:, P - 1 : P - 1 + T]  # (B, T, C)
    logps, ents = [], []
    for s in range(0, T, chunk):
        args = (h[:, s : s + chunk], model.lm_head, batch.tokens[:, s : s + chunk], temperature)
        if torch.is_grad_enabled() and h.requires_grad:
            lp, ent = checkpoint(_chunk_logp_entropy, *args, use_reentrant=False)
        else:
            lp, ent = _chunk_logp_entropy(*args)
        logps.append(lp)
        ents.append(ent)
    out = (torch.cat(logps, 1), torch.cat(ents, 1))
    return out + (h,) if with_hidden else out
