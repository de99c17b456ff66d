"""Beam search over the policy's own model, batched over prompts with one KV cache.

How it works (P prompts, beam width W):
1. Prompts are left-padded and prefilled once (as in `engine.generate`); the cache rows and last
   logits are repeated to W beams per prompt. Only beam 0 starts live (the others score -inf),
   so the first step does not pick the same token W times.
2. Each step scores every (beam, token) continuation by its summed log-prob, keeps the top 2W per
   prompt, and walks them best first: a continuation that ends the completion (EOS, or a stop
   sequence matched on the beam's own tokens) becomes a finished hypothesis if it ranks among the
   top W; any other continuation becomes a live beam until W are live. The cache rows are then
   re-indexed by each new beam's parent.
3. Stopping (fairseq-style "early stopping"): a prompt is done as soon as W hypotheses have
   finished, or when no live beam is left; at `max_new_tokens` its live beams finish with reason
   `length`. A prompt that is done leaves the batch (its cache rows are dropped).

Score of a finished hypothesis: sum of token log-probs / penalty(len, length_penalty), len counts
every completion token including the EOS/stop tokens. `LENGTH_PENALTIES` holds the two usual
forms: "simple" len**alpha (Hugging Face's; alpha=0 is the plain sum, alpha=1 the mean log-prob)
and "gnmt" ((5 + len) / 6)**alpha (Wu et al. 2016). Live beams are ranked by their raw sum, as
in both references. Departure from exact search: because a prompt stops once W hypotheses have
finished, a live beam that might later reach a better length-normalised score is not pursued.
This is what makes width 1 identical to greedy decoding for every length penalty.

Log-probs are taken under the model's unscaled distribution (temperature 1), the same numbers
greedy `generate(temperature=0)` records. Ties between equal scores go to `torch.topk`'s order.

Not here: sampling (engine.py), scoring the hypotheses with rewards (experiments/eval.py),
diverse or constrained beam search.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from rlreason.model import precision
from rlreason.model.gpt import KVCache
from rlreason.sampling.engine import Rollouts, _package, inference, last_logits, left_pad
from rlreason.sampling.stops import Stops, eos_id_list

LENGTH_PENALTIES: dict[str, Callable[[int, float], float]] = {
    "simple": lambda n, alpha: float(n) ** alpha,
    "gnmt": lambda n, alpha: ((5.0 + n) / 6.0) ** alpha,
}
_FINISH_CODES = {"length": 0, "eos": 1, "stop": 2}
_FINISH_NAMES = {v: k for k, v in _FINISH_CODES.items()}


@dataclass
class Hypothesis:
    ids: list[int]  # completion ids, EOS/stop tokens included
    logprobs: list[float]  # per token, under the model (temperature 1)
    score: float  # sum(logprobs) / penalty(len(ids), length_penalty)
    finish_reason: str  # "eos" | "stop" | "length"
    text: str | None = None  # decoded, when a tokenizer is given


@dataclass
class BeamResult:
    best: Rollouts  # the top hypothesis of each prompt (n = 1)
    hypotheses: list[list[Hypothesis]]  # per prompt: up to beam_width, best first

    @property
    def scores(self) -> list[list[float]]:
        return [[h.score for h in hyps] for hyps in self.hypotheses]


class _BeamRows:
    """Cache, key mask, positions and last logits of the beam rows still in the batch."""

    def __init__(self, model, prompt_ids, W: int, max_new: int, pad_id: int, device):
        self.model = model
        ids, valid, pos = left_pad(prompt_ids, pad_id, device)  # (P, L)
        P, L = ids.shape
        key_mask = torch.ones(P, L + max_new, dtype=torch.bool, device=device)
        key_mask[:, :L] = valid  # (P, S)
        cache = KVCache.allocate(model.config, P, L, precision.compute_dtype(model), device)
        logits = last_logits(model, ids, kv_cache=cache, positions=pos, key_mask=key_mask)  # (P, V)
        self.cache = cache.expand(W, L + max_new)  # (.., P*W, ..)
        self.logits = logits.float().repeat_interleave(W, 0)  # (P*W, V)
        self.key_mask = key_mask.repeat_interleave(W, 0)  # (P*W, S)
        self.next_pos = (pos[:, -1] + 1).repeat_interleave(W, 0)  # (P*W,)

    def advance(self, rows: torch.Tensor, tok: torch.Tensor) -> None:
        """Keep `rows` (b,) of the batch, in that order, and feed them `tok` (b,)."""
        c, b = self.cache, rows.numel()
        if b != c.k.shape[1] or not torch.equal(rows, torch.arange(b, device=rows.device)):
            self.cache = KVCache(c.k[:, rows], c.v[:, rows], c.length)  # a gather (copy)
        self.key_mask, self.next_pos = self.key_mask[rows], self.next_pos[rows]
        self.logits = self.model(
            tok[:, None],
            kv_cache=self.cache,
            positions=self.next_pos[:, None],
            key_mask=self.key_mask,
        )[:, -1].float()  # (b, V)
        self.next_pos = self.next_pos + 1


def _validate(model, prompt_ids, W: int, max_new_tokens: int, length_norm: str) -> None:
    if not prompt_ids or not all(len(p) > 0 for p in prompt_ids):
        raise ValueError("beam_search: prompt_ids must be a non-empty list of non-empty id lists")
    if W < 1 or max_new_tokens < 1:
        raise ValueError(
            f"beam_search: need beam_width >= 1 and max_new_tokens >= 1 (got {W}, {max_new_tokens})"
        )
    if model.config.vocab_size < 2 * W:
        raise ValueError(
            f"beam_search: beam_width={W} needs a vocabulary of at least {2 * W} "
            f"tokens (model has {model.config.vocab_size})"
        )
    if length_norm not in LENGTH_PENALTIES:
        raise ValueError(
            f"beam_search: length_norm={length_norm!r}; choose one of {sorted(LENGTH_PENALTIES)}"
        )
    longest, limit = max(len(p) for p in prompt_ids), model.config.max_seq_len
    if longest + max_new_tokens > limit:
        raise ValueError(
            f"beam_search: longest prompt ({longest}) + max_new_tokens "
            f"({max_new_tokens}) exceeds the model's max_seq_len ({limit})"
        )


@torch.no_grad()
def beam_search(
    model,
    prompt_ids,
    *,
    beam_width: int,
    max_new_tokens: int,
    length_penalty: float = 1.0,
    length_norm: str = "simple",
    eos_id: int | Sequence[int] | None = None,
    stop_strings: Sequence[str] | None = None,
    stop_ids=None,
    pad_id: int | None = None,
    tokenizer=None,
) -> BeamResult:
    """Beam search for every prompt; see the module docstring for the semantics."""
    W = beam_width
    _validate(model, prompt_ids, W, max_new_tokens, length_norm)
    device = next(model.parameters()).device
    pad_id = pad_id if pad_id is not None else (tokenizer.pad_id if tokenizer is not None else 0)
    eos = torch.tensor(eos_id_list(eos_id, tokenizer), dtype=torch.long, device=device)
    stop = Stops(stop_strings, stop_ids, tokenizer, device)
    penalty = LENGTH_PENALTIES[length_norm]
    with inference(model):
        return _search(
            model,
            prompt_ids,
            W,
            max_new_tokens,
            length_penalty,
            penalty,
            eos,
            stop,
            pad_id,
            tokenizer,
            device,
        )


def _search(
    model,
    prompt_ids,
    W,
    max_new_tokens,
    length_penalty,
    penalty,
    eos,
    stop,
    pad_id,
    tokenizer,
    device,
) -> BeamResult:
    rows = _BeamRows(model, prompt_ids, W, max_new_tokens, pad_id, device)
    P = len(prompt_ids)
    active = list(range(P))  # prompts in the batch
    beam_logp = torch.full((P, W), float("-inf"), device=device)
    beam_logp[:, 0] = 0.0  # (a, W) live beam sums
    seqs = torch.zeros(P * W, 0, dtype=torch.long, device=device)  # (a*W, t)
    tok_lp = torch.zeros(P * W, 0, dtype=torch.float32, device=device)  # (a*W, t)
    finished: list[list[Hypothesis]] = [[] for _ in range(P)]
    for t in range(max_new_tokens):
        a, V = len(active), rows.logits.shape[-1]
        logp = torch.log_softmax(rows.logits, -1)  # (a*W, V)
        if torch.isnan(logp).any():
            raise FloatingPointError("beam_search: the model produced NaN logits")
        total = beam_logp[:, :, None] + logp.view(a, W, V)  # (a, W, V)
        top, flat = total.view(a, W * V).topk(2 * W, dim=-1)  # (a, 2W)
        parent = torch.arange(a, device=device)[:, None] * W + flat // V  # (a, 2W) batch rows
        tok = flat % V  # (a, 2W)
        cand = torch.cat([seqs[parent.flatten()], tok.flatten()[:, None]], 1)  # (a*2W, t+1)
        cand_lp = torch.cat(
            [tok_lp[parent.flatten()], logp[parent.flatten(), tok.flatten()][:, None]], 1
        )  # (a*2W, t+1)
        is_eos = torch.isin(tok, eos)  # (a, 2W)
        is_stop = stop.candidates(cand, t).view(a, 2 * W) & ~is_eos
        ends = torch.where(is_eos, 1, torch.where(is_stop, 2, 0)).tolist()
        keep, picks, top_l = [], [], top.tolist()
        norm = penalty(t + 1, length_penalty)
        for i, p in enumerate(active):
            live = _select(i, top_l[i], ends[i], W, norm, cand, cand_lp, finished[p])
            if t == max_new_tokens - 1:  # out of length: the live beams finish as "length"
                finished[p] += [
                    _hypothesis(cand, cand_lp, i * 2 * W + j, s / norm, 0) for j, s in live
                ]
            elif live and len(finished[p]) < W:
                keep.append(i)
                picks += [i * 2 * W + j for j, _ in live] + [i * 2 * W + live[0][0]] * (
                    W - len(live)
                )
                beam_logp[i] = torch.tensor(
                    [s for _, s in live] + [float("-inf")] * (W - len(live)), device=device
                )
        if not keep:
            break
        pick = torch.tensor(picks, dtype=torch.long, device=device)  # (a'*W,) candidate ids
        beam_logp = beam_logp[keep]
        active = [active[i] for i in keep]
        seqs, tok_lp = cand[pick], cand_lp[pick]
        rows.advance(parent.flatten()[pick], tok.flatten()[pick])
    return _result(prompt_ids, finished, W, pad_id, tokenizer, device)


def _select(
    i: int,
    scores: list[float],
    ends: list[int],
    W: int,
    norm: float,
    cand,
    cand_lp,
    finished: list[Hypothesis],
) -> list[tuple[int, float]]:
    """Walk prompt i's 2W candidates best first; record finished ones, return live (j, sum)."""
    live: list[tuple[int, float]] = []
    for j, s in enumerate(scores):
        if s == float("-inf") or len(live) == W:
            break
        if ends[j]:
            if j < W:  # a finished continuation counts only if it ranks among the top W
                finished.append(_hypothesis(cand, cand_lp, i * len(scores) + j, s / norm, ends[j]))
        else:
            live.append((j, s))
    return live


def _hypothesis(cand, cand_lp, row: int, score: float, code: int) -> Hypothesis:
    return Hypothesis(cand[row].tolist(), cand_lp[row].tolist(), score, _FINISH_NAMES[code])


def _result(prompt_ids, finished, W: int, pad_id: int, tokenizer, device) -> BeamResult:
    hyps = [sorted(h, key=lambda x: -x.score)[:W] for h in finished]  # stable: ties keep order
    for per in hyps:
        for h in per:
            h.text = tokenizer.decode(h.ids) if tokenizer is not None else None
    best = [per[0] for per in hyps]
    T = max(len(h.ids) for h in best)
    out = torch.full((len(best), T), pad_id, dtype=torch.long, device=device)  # (P, T)
    logps = torch.zeros(len(best), T, dtype=torch.float32, device=device)  # (P, T)
    for r, h in enumerate(best):
        out[r, : len(h.ids)] = torch.tensor(h.ids, device=device)
        logps[r, : len(h.ids)] = torch.tensor(h.logprobs, device=device)
    lengths = torch.tensor([len(h.ids) for h in best], device=device)
    finish = torch.tensor([_FINISH_CODES[h.finish_reason] for h in best], device=device)
    return BeamResult(_package(prompt_ids, 1, out, logps, lengths, finish, pad_id, tokenizer), hyps)
