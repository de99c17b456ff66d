"""Batched rollout engine: KV-cache sampling of `n` completions per prompt.

1. Prompts are left-padded to the longest (P, L); a key mask hides the padding and positions
   count real tokens only. Each distinct prompt is prefilled once and its cache rows repeated to
   its `n` samples (prompt-major); `share_prefix=False` prefills every sample instead.
2. Decoding writes into one preallocated cache; once at most half the rows still run, finished
   rows leave the batch (`compact`), so a few long completions do not pay for the whole batch.
3. Each step draws one uniform for every one of the B = P*n rows, finished or not, from one
   `torch.Generator` seeded with `seed`: a row's stream depends only on its index, so
   `share_prefix`/`compact` on or off give the same tokens (up to prefill rounding). Token draws
   and the recorded log-probs (temperature-scaled FULL distribution) are draw.py's. A slice of a
   larger batch (a data-parallel rank's prompts) passes `row_offset` and `total_rows`: each step
   then draws the uniforms of all `total_rows` rows and uses rows [row_offset, row_offset + B), so
   the slice samples what the whole batch would for those rows.
4. A row stops on any of its EOS ids (`eos_id`: one id or several; by default every id in
   `tokenizer.eos_ids`, else `tokenizer.eos_id`), on a `stop_strings` entry found in its decoded
   completion however the tokenizer split it, or on an exact `stop_ids` sequence at the end of its
   completion (stops.py). The token that ends a row is kept. Finish reasons: `eos`, `stop`,
   `length` (EOS wins when a token is both).

5. `static=True` runs the static-shape loop of static.py instead (fixed shapes, a prompt prefix
   shared by its n samples without copies, host reads only every `check_every` steps; optional
   `cuda_graph=True` / `compile=True` on CUDA). Same tokens, log-probs and finish reasons; the
   eager loop here stays the default and the reference.

Not here: stop matching (stops.py), beam search (beam.py), text beyond `tokenizer.decode`,
rewards, training log-probs.
"""

from __future__ import annotations

import contextlib
import operator
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from rlreason.model import precision
from rlreason.model.gpt import KVCache
from rlreason.sampling import static as static_loop
from rlreason.sampling.draw import sample_next
from rlreason.sampling.stops import Stops, eos_id_list


@dataclass
class Rollouts:
    prompt_ids: list[list[int]]  # per sample (B = P*n), unpadded
    completion_ids: list[list[int]]  # per sample, unpadded, stop/eos tokens included
    tokens: torch.Tensor  # (B, T) completion ids, padded with pad_id
    mask: torch.Tensor  # (B, T) float, 1 where a token was sampled
    logprobs: torch.Tensor  # (B, T) float32 sampler log-probs, 0 where mask == 0
    finish_reasons: list[str]  # per sample: "eos" | "stop" | "length"
    texts: list[str] | None  # per sample, decoded completions (tokenizer given)
    n: int  # group size

    def __len__(self) -> int:
        return len(self.completion_ids)


def _validate(prompt_ids, n: int, max_new_tokens: int, temperature: float, top_k, top_p):
    if not prompt_ids or not all(len(p) > 0 for p in prompt_ids):
        raise ValueError("generate: prompt_ids must be a non-empty list of non-empty id lists")
    if n < 1 or max_new_tokens < 1:
        raise ValueError(
            f"generate: need n >= 1 and max_new_tokens >= 1 (got {n}, {max_new_tokens})"
        )
    if temperature < 0:
        raise ValueError(f"generate: temperature must be >= 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"generate: top_k must be >= 1 or None, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"generate: top_p must be in (0, 1] or None, got {top_p}")


def _check_ids(prompt_ids, vocab: int | None) -> None:
    """Every prompt id is an integer (Python, NumPy or 0-dim tensor) in [0, vocab)."""
    for i, p in enumerate(prompt_ids):
        for t in p:
            try:
                ok = (
                    0 <= operator.index(t) < (vocab if vocab is not None else operator.index(t) + 1)
                )
            except TypeError:
                ok = False
            if not ok:
                raise ValueError(
                    f"generate: prompt {i} holds token id {t!r}, outside the model's "
                    f"vocabulary [0, {vocab})"
                )


def left_pad(prompt_ids: Sequence[Sequence[int]], pad_id: int, device):
    """ids (P, L) left-padded, key mask (P, L) bool, position ids (P, L) of real tokens."""
    L = max(len(p) for p in prompt_ids)
    ids = torch.full((len(prompt_ids), L), pad_id, dtype=torch.long)
    for i, p in enumerate(prompt_ids):
        ids[i, L - len(p) :] = torch.as_tensor(list(p), dtype=torch.long)
    valid = torch.arange(L)[None, :] >= (L - torch.tensor([len(p) for p in prompt_ids]))[:, None]
    positions = (valid.long().cumsum(1) - 1).clamp(min=0)
    return ids.to(device), valid.to(device), positions.to(device)


def last_logits(model, ids, **kw) -> torch.Tensor:
    """Logits (B, V) of the last position; a model with `hidden`/`lm_head` (our GPT) projects only
    that position onto the vocabulary (the prefill's other positions never need logits)."""
    if hasattr(model, "hidden") and hasattr(model, "lm_head"):
        return model.lm_head(model.hidden(ids, **kw)[:, -1:])[:, -1]
    return model(ids, **kw)[:, -1]


# `sampling.engine`: the decode loop `generate` runs (eager is the reference and the CPU path)
ENGINES: dict[str, dict] = {
    "eager": {},
    "static": {"static": True},  # fixed shapes, masked finished rows, host checks every 16 steps
    "cuda_graph": {"static": True, "cuda_graph": True},  # one decode step captured (CUDA only)
    "compile": {"static": True, "compile": True},  # torch.compile reduce-overhead (CUDA only)
}


@torch.no_grad()
def generate(
    model,
    prompt_ids,
    *,
    n: int,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    stop_strings: Sequence[str] | None = None,
    stop_ids=None,
    eos_id: int | Sequence[int] | None = None,
    seed: int | None = None,
    tokenizer=None,
    pad_id: int | None = None,
    share_prefix: bool = True,
    use_cache: bool = True,
    compact: bool = True,
    row_offset: int = 0,
    total_rows: int | None = None,
    static: bool = False,
    check_every: int = 16,
    compile: bool = False,
    cuda_graph: bool = False,
) -> Rollouts:
    """Sample `n` completions for each prompt; see the module docstring for the semantics."""
    _validate(prompt_ids, n, max_new_tokens, temperature, top_k, top_p)
    _check_ids(prompt_ids, getattr(model.config, "vocab_size", None))
    longest, limit = max(len(p) for p in prompt_ids), model.config.max_seq_len
    if longest + max_new_tokens > limit:
        raise ValueError(
            f"generate: longest prompt ({longest}) + max_new_tokens ({max_new_tokens}) "
            f"exceeds the model's max_seq_len ({limit})"
        )
    device = next(model.parameters()).device
    pad_id = pad_id if pad_id is not None else (tokenizer.pad_id if tokenizer is not None else 0)
    eos = torch.tensor(eos_id_list(eos_id, tokenizer), dtype=torch.long, device=device)
    stop = Stops(stop_strings, stop_ids, tokenizer, device)
    with inference(model):
        gen = torch.Generator(device=device)
        gen.manual_seed(seed if seed is not None else torch.seed())
        B = len(prompt_ids) * n
        total = B if total_rows is None else total_rows
        if row_offset < 0 or row_offset + B > total:
            raise ValueError(
                f"generate: rows [{row_offset}, {row_offset + B}) are not inside a batch of "
                f"total_rows={total}"
            )
        if static or compile or cuda_graph:
            if not use_cache:
                raise ValueError("generate: static=True decodes on a KV cache (use_cache=True)")
            out, logps, lengths, finish = static_loop.decode(
                model, prompt_ids, n, max_new_tokens, (temperature, top_k, top_p), eos, stop,
                gen, pad_id, share_prefix, (row_offset, total), (check_every, compile, cuda_graph),
            )  # fmt: skip
            T = int(lengths.max())
            return _package(prompt_ids, n, out[:, :T], logps, lengths, finish, pad_id, tokenizer)
        runner = _Decoder(
            model, prompt_ids, n, max_new_tokens, pad_id, share_prefix, use_cache, compact, device
        )
        out = torch.full((B, max_new_tokens), pad_id, dtype=torch.long, device=device)
        logps = torch.zeros(B, max_new_tokens, dtype=torch.float32, device=device)
        lengths = torch.zeros(B, dtype=torch.long, device=device)
        finish = torch.zeros(B, dtype=torch.long, device=device)  # 0 running, 1 eos, 2 stop
        for t in range(max_new_tokens):
            rows = runner.rows  # (b,) original row ids
            u = torch.rand(total, 1, generator=gen, device=device)  # (total, 1) one per row
            u = u[row_offset : row_offset + B][rows]  # (b, 1) this slice's running rows
            tok, lp = sample_next(runner.logits, temperature, top_k, top_p, u)
            alive = finish[rows] == 0  # (b,) still running
            live, tok_live = rows[alive], tok[alive]
            out[live, t], logps[live, t] = tok_live, lp[alive]
            lengths[live] = t + 1
            is_eos = torch.isin(tok_live, eos)  # (b',)
            is_stop = stop.rows(out, live, tok_live, t) & ~is_eos
            finish[live] = torch.where(is_eos, 1, torch.where(is_stop, 2, 0))
            running = finish[rows] == 0  # (b,)
            if t == max_new_tokens - 1 or not bool(running.any()):
                break
            runner.step(tok.masked_fill(~running, pad_id), running)
        return _package(
            prompt_ids, n, out[:, : int(lengths.max())], logps, lengths, finish, pad_id, tokenizer
        )


@contextlib.contextmanager
def inference(model):
    """Eval mode and the model's mixed-precision autocast (`precision.autocast`: the lm_head
    too) for the duration of the call; training mode restored on exit, errors included."""
    was_training = model.training
    model.eval()
    try:
        with precision.autocast(model):
            yield model
    finally:
        if was_training:
            model.train()


class _Decoder:
    """Holds the cache, key mask and positions of the rows still running."""

    def __init__(
        self, model, prompt_ids, n, max_new, pad_id, share_prefix, use_cache, compact, device
    ):
        self.model, self.use_cache, self.compact = model, use_cache, compact
        share_prefix = share_prefix and n > 1  # n == 1: nothing to share, skip the copy
        ids, valid, pos = left_pad(prompt_ids, pad_id, device)  # (P, L)
        P, L = ids.shape
        self.capacity = L + max_new
        if not share_prefix:
            ids, valid, pos = (x.repeat_interleave(n, 0) for x in (ids, valid, pos))
        key_mask = torch.ones(ids.shape[0], self.capacity, dtype=torch.bool, device=device)
        key_mask[:, :L] = valid  # (P or B, S)
        self.next_pos = pos[:, -1] + 1  # (P or B,)
        if use_cache:
            dtype = precision.compute_dtype(model)  # fp32 trainable weights, bf16 cache
            cache = KVCache.allocate(
                model.config, ids.shape[0], L if share_prefix else self.capacity, dtype, device
            )
            logits = last_logits(model, ids, kv_cache=cache, positions=pos, key_mask=key_mask)
            self.cache = cache.expand(n, self.capacity) if share_prefix else cache
        else:
            self.seq, self.seq_pos = ids, pos
            logits = last_logits(model, ids, positions=pos, key_mask=key_mask)
        rep = n if share_prefix else 1
        self.logits = logits.repeat_interleave(rep, 0)  # (B, V)
        self.key_mask = key_mask.repeat_interleave(rep, 0)  # (B, S)
        self.next_pos = self.next_pos.repeat_interleave(rep, 0)  # (B,)
        if not use_cache:
            self.seq, self.seq_pos = (x.repeat_interleave(rep, 0) for x in (self.seq, self.seq_pos))
        self.rows = torch.arange(P * n, device=device)

    def step(self, tok: torch.Tensor, running: torch.Tensor) -> None:
        """Feed the sampled tokens (b,) of the current rows; keep only `running` rows if compacting."""
        if self.compact and int(running.sum()) * 2 <= running.numel():
            keep = running.nonzero()[:, 0]
            tok, self.rows = tok[keep], self.rows[keep]
            self.key_mask, self.next_pos = self.key_mask[keep], self.next_pos[keep]
            if self.use_cache:
                c = self.cache
                self.cache = KVCache(c.k[:, keep], c.v[:, keep], c.length)
            else:
                self.seq, self.seq_pos = self.seq[keep], self.seq_pos[keep]
        pos = self.next_pos[:, None]  # (b, 1)
        if self.use_cache:
            self.logits = self.model(
                tok[:, None], kv_cache=self.cache, positions=pos, key_mask=self.key_mask
            )[:, -1]
        else:
            self.seq = torch.cat([self.seq, tok[:, None]], 1)
            self.seq_pos = torch.cat([self.seq_pos, pos], 1)
            T = self.seq.shape[1]
            self.logits = self.model(
                self.seq, positions=self.seq_pos, key_mask=self.key_mask[:, :T]
            )[:, -1]
        self.next_pos = self.next_pos + 1


def _package(prompt_ids, n, out, logps, lengths, finish, pad_id, tokenizer) -> Rollouts:
    B, T = out.shape
    mask = (torch.arange(T, device=out.device)[None, :] < lengths[:, None]).float()  # (B, T)
    tokens = out.masked_fill(mask == 0, pad_id)
    lengths_l = lengths.tolist()
    completion_ids = [row[:k] for row, k in zip(tokens.tolist(), lengths_l)]
    names = {1: "eos", 2: "stop"}
    reasons = [names.get(f, "length") for f in finish.tolist()]
    texts = [tokenizer.decode(c) for c in completion_ids] if tokenizer is not None else None
    prompts = [list(p) for p in prompt_ids for _ in range(n)]
    return Rollouts(prompts, completion_ids, tokens, mask, logps[:, :T] * mask, reasons, texts, n)
