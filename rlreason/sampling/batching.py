"""Token-budgeted generation: one `generate` call cut into consecutive sub-batches of prompts.

`generate_in_batches(model, prompt_ids, n=..., max_new_tokens=..., max_batch_tokens=...)` splits
the prompts into consecutive chunks whose rows (prompts x n) times (longest prompt of the chunk +
max_new_tokens), the size of the chunk's KV cache in tokens, fit `max_batch_tokens` (a chunk holds
at least one prompt, even when that one alone is over the budget), and samples each chunk with
`rlreason.sampling.engine.generate`. Every chunk is a row slice of the whole batch: it passes
`row_offset` (the caller's offset + the chunk's first row) and `total_rows` (the caller's, else
all rows), and one shared seed, so each step draws the uniforms of all `total_rows` rows and the
chunk uses its own (engine docstring, point 3): the chunks sample what one call would, up to the
rounding of a differently padded / sized batch. With `seed=None` one seed is drawn up front and
shared. The chunks' `Rollouts` are joined row-major, the (B, T) tensors right-padded to the
longest T: tokens with the pad id `generate` uses (`pad_id`, else `tokenizer.pad_id`, else 0),
mask and log-probs with 0, as `_package` pads them.

`max_batch_tokens=None` is exactly one `generate` call with the same arguments.
Not here: the sampling itself (engine.py), choosing the budget (`sampling.max_batch_tokens`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from rlreason.sampling import engine
from rlreason.sampling.engine import Rollouts


def plan_chunks(
    prompt_lengths: Sequence[int], n: int, max_new_tokens: int, max_batch_tokens: int | None
) -> list[tuple[int, int]]:
    """Consecutive [start, stop) prompt spans; each fits rows x (longest + new) <= budget or is
    a single prompt. `None`: one span over everything."""
    P = len(prompt_lengths)
    if max_batch_tokens is None:
        return [(0, P)]
    if max_batch_tokens < 1:
        raise ValueError(
            f"generate_in_batches: max_batch_tokens must be >= 1, got {max_batch_tokens}"
        )
    spans, start, longest = [], 0, 0
    for i, length in enumerate(prompt_lengths):
        grown = max(longest, length)
        if i > start and (i - start + 1) * n * (grown + max_new_tokens) > max_batch_tokens:
            spans.append((start, i))
            start, grown = i, length
        longest = grown
    spans.append((start, P))
    return spans


def concat_rollouts(parts: Sequence[Rollouts], pad_id: int) -> Rollouts:
    """Row-major join of rollouts of the same `n`; (b, T_i) tensors right-padded to max T_i."""
    if len(parts) == 1:
        return parts[0]
    T = max(r.tokens.shape[1] for r in parts)

    def padded(x: torch.Tensor, value) -> torch.Tensor:  # (b, T_i) -> (b, T)
        return torch.nn.functional.pad(x, (0, T - x.shape[1]), value=value)

    texts = None if any(r.texts is None for r in parts) else [t for r in parts for t in r.texts]
    return Rollouts(
        prompt_ids=[p for r in parts for p in r.prompt_ids],
        completion_ids=[c for r in parts for c in r.completion_ids],
        tokens=torch.cat([padded(r.tokens, pad_id) for r in parts]),  # (B, T)
        mask=torch.cat([padded(r.mask, 0.0) for r in parts]),  # (B, T)
        logprobs=torch.cat([padded(r.logprobs, 0.0) for r in parts]),  # (B, T)
        finish_reasons=[f for r in parts for f in r.finish_reasons],
        texts=texts,
        n=parts[0].n,
    )


def generate_in_batches(
    model,
    prompt_ids,
    *,
    n: int,
    max_new_tokens: int,
    max_batch_tokens: int | None,
    row_offset: int = 0,
    total_rows: int | None = None,
    generate_fn: Callable[..., Rollouts] | None = None,
    **generate_kwargs,
) -> Rollouts:
    """`generate` over token-budgeted chunks of `prompt_ids`; see the module docstring.

    `generate_fn` (default `engine.generate`, looked up at call time) is the function called per
    chunk; every other keyword goes to it unchanged (seed, tokenizer, stop_strings, ...)."""
    gen = generate_fn or engine.generate
    if max_batch_tokens is None:
        return gen(
            model,
            prompt_ids,
            n=n,
            max_new_tokens=max_new_tokens,
            row_offset=row_offset,
            total_rows=total_rows,
            **generate_kwargs,
        )
    spans = plan_chunks([len(p) for p in prompt_ids], n, max_new_tokens, max_batch_tokens)
    total = len(prompt_ids) * n if total_rows is None else total_rows
    kw = dict(generate_kwargs)
    if len(spans) > 1 and kw.get("seed") is None:
        kw["seed"] = torch.seed()  # one stream for every chunk, as one call would draw
    parts = [
        gen(
            model,
            prompt_ids[lo:hi],
            n=n,
            max_new_tokens=max_new_tokens,
            row_offset=row_offset + lo * n,
            total_rows=total,
            **kw,
        )
        for lo, hi in spans
    ]
    tokenizer = kw.get("tokenizer")
    pad_id = kw.get("pad_id")
    if pad_id is None:
        pad_id = tokenizer.pad_id if tokenizer is not None else 0
    return concat_rollouts(parts, pad_id)
