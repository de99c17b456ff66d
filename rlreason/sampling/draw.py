"""Next-token draws: temperature, top-k / top-p filtering and one inverse-CDF draw per row.

`sample_next(logits, temperature, top_k, top_p, u)` turns logits (B, V) into one token per row
and its sampler log-prob. Contract: the log-prob is taken under the temperature-scaled FULL
distribution (log_softmax(logits / T) over the whole vocabulary, BEFORE top-k/top-p truncation);
for greedy (`temperature=0`) under the unscaled distribution. The trainer compares its own
log-probs with these to measure sampler/trainer mismatch.

Randomness comes in from outside: one uniform `u` per row, so a row's draw depends only on its
own uniform (the engine keeps one stream per row, which makes batch compaction reproducible).

Not here: the decode loop and the KV cache (engine.py), beam search (beam.py).
"""

from __future__ import annotations

import torch

NONFINITE = "generate: the model produced non-finite logits (NaN/inf weights or activations?)"


def filter_logits(logits: torch.Tensor, top_k: int | None, top_p: float | None) -> torch.Tensor:
    """Set logits outside the top-k / nucleus top-p set to -inf. logits (B, V) float32."""
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        before = probs.cumsum(-1) - probs  # mass before each token
        drop_sorted = before >= top_p  # keeps >= 1 token
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


_BLOCK = 256  # tokens per block of the two-level inverse CDF


def _first_above(cdf: torch.Tensor, target: torch.Tensor, mass: torch.Tensor) -> torch.Tensor:
    """First index whose cumulative mass exceeds target (B, 1), never one with zero `mass`."""
    idx = torch.searchsorted(cdf, target, right=True).clamp_(max=cdf.shape[-1] - 1)  # (B, 1)
    empty = mass.gather(-1, idx) <= 0
    if bool(empty.any()):  # rounding put the target on a zero-mass tail: last with mass
        idx = torch.where(empty, _last_with_mass(mass), idx)
    return idx


def first_above_nosync(cdf: torch.Tensor, target: torch.Tensor, mass: torch.Tensor):
    """`_first_above` without its host read: the zero-mass fallback is applied unconditionally
    (for a decode loop that must not synchronise, e.g. one captured in a CUDA graph)."""
    idx = torch.searchsorted(cdf, target, right=True).clamp_(max=cdf.shape[-1] - 1)  # (B, 1)
    return torch.where(mass.gather(-1, idx) <= 0, _last_with_mass(mass), idx)


def _last_with_mass(mass: torch.Tensor) -> torch.Tensor:
    return mass.shape[-1] - 1 - (mass.flip(-1) > 0).long().argmax(-1, keepdim=True)  # (B, 1)


def draw(probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """One sample per row of probs (B, V) by inverse CDF, given one uniform per row u (B, 1).

    probs non-negative, rows need not sum to 1: the index (B,) whose CDF interval holds
    `u * total` is returned. Two levels: the masses of blocks of 256 tokens pick a block, then the
    cumulative sum inside that block (in float64) picks the token, with the target rescaled to the
    block's own float64 total. A token's chance is then its probability up to one relative rounding
    of its block's float32 sum (~1e-6), wherever it sits in the vocabulary; one float32 cumulative
    sum over the whole row would give every token an interval quantised to ~6e-8 absolute,
    distorting tokens rarer than ~1e-6. A zero-probability token (or block) has an empty interval
    and is never picked, including when rounding lands the target on a zero-mass tail. A row
    without finite positive mass (NaN/inf logits) raises FloatingPointError.

    Unlike `torch.multinomial` it consumes exactly one given uniform per row, so the caller owns
    the random stream of each row.
    """
    idx, bad = inverse_cdf(probs, u, _first_above)
    if bool(bad.any()):
        raise FloatingPointError(NONFINITE)
    return idx


def inverse_cdf(probs: torch.Tensor, u: torch.Tensor, first_above=_first_above):
    """`draw`'s two-level inverse CDF without host reads → (index (B,), bad (B,) rows without
    finite positive mass; their index is meaningless). `first_above` picks the block and the
    token (`_first_above`, or a variant without its host check for a captured decode loop)."""
    B, V = probs.shape
    full = V // _BLOCK * _BLOCK
    mass = probs[:, :full].unflatten(-1, (-1, _BLOCK)).sum(-1)  # (B, nb)
    if full < V:
        mass = torch.cat([mass, probs[:, full:].sum(-1, keepdim=True)], -1)
    mass = mass.to(torch.float64)  # (B, nb')
    cdf = mass.cumsum(-1)
    total = cdf[:, -1:]  # (B, 1)
    bad = ~(torch.isfinite(total) & (total > 0))[:, 0]  # (B,)
    target = u.to(torch.float64) * total  # (B, 1)
    block = first_above(cdf, target, mass)  # (B, 1)
    block_mass = mass.gather(-1, block)  # (B, 1)
    start = cdf.gather(-1, block) - block_mass  # mass before the block
    frac = ((target - start) / block_mass).clamp_(0, 1)  # where in the block
    cols = block * _BLOCK + torch.arange(_BLOCK, device=probs.device)  # (B, 256)
    inside = probs.gather(-1, cols.clamp(max=V - 1)).to(torch.float64)
    inside = inside.masked_fill(cols >= V, 0.0)  # past the vocabulary
    inner = inside.cumsum(-1)  # (B, 256)
    pick = first_above(inner, frac * inner[:, -1:], inside)  # (B, 1)
    return (block * _BLOCK + pick)[:, 0].clamp_(max=V - 1), bad


def sample_next(logits: torch.Tensor, temperature: float, top_k, top_p, u: torch.Tensor):
    """One token per row and its sampler log-prob. logits (B, V), u (B, 1) uniforms in [0, 1)
    → tok (B,), logp (B,).

    With top-k the draw runs over the k candidates only (exactly k; ties broken by `topk`), so no
    full-vocabulary softmax or sort is built; the log-prob still uses the full-vocabulary
    normaliser (logsumexp) at the sampling temperature.
    """
    tok, logp, bad = sample_rows(logits, temperature, top_k, top_p, u)
    if bool(bad.any()):
        raise FloatingPointError(NONFINITE)
    return tok, logp


def sample_rows(logits, temperature: float, top_k, top_p, u, first_above=_first_above):
    """`sample_next` without its non-finite check → tok (B,), logp (B,), bad (B,) rows without
    finite mass (their token is meaningless); with `first_above_nosync` it reads nothing back
    to the host."""
    logits = logits.float()
    if temperature == 0:
        tok = logits.argmax(-1)
        lp = logits.gather(-1, tok[:, None])[:, 0] - logits.logsumexp(-1)
        return tok, lp, torch.zeros_like(tok, dtype=torch.bool)
    scaled = logits if temperature == 1 else logits / temperature  # (B, V)
    lse = scaled.logsumexp(-1)  # (B,)
    cand, cand_idx = scaled, None
    if top_k is not None and top_k < scaled.shape[-1]:
        cand, cand_idx = torch.topk(scaled, top_k, dim=-1)  # (B, k) descending
    probs = torch.softmax(filter_logits(cand, None, top_p), -1)
    choice, bad = inverse_cdf(probs, u, first_above)  # (B,)
    tok = choice if cand_idx is None else cand_idx.gather(-1, choice[:, None])[:, 0]
    return tok, scaled.gather(-1, tok[:, None])[:, 0] - lse, bad
