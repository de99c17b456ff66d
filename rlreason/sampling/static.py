"""Static-shape decode loop: `generate(..., static=True)` (engine.py) runs here.

Same semantics as the eager loop of engine.py, which is the reference; what differs is how:
1. Every step has identical tensor shapes: all B = P*n rows keep decoding (a finished row is fed
   pad and its outputs are ignored: masked, never dropped), the KV cache is preallocated for
   every step (kv.SplitCache: the prompt prefix shared by the n samples of a prompt without a
   copy, per-sample suffixes), and the step index lives on the device.
2. No host synchronisation inside the loop: draws (`sample_next_nosync`: the arithmetic of
   draw.py without its host checks), EOS and `stop_ids` checks and bookkeeping are tensor ops.
   Every `check_every` steps (and at the end) the host reads the state once: stop strings are
   matched on decoded text (stops.TextStops, token by token as the eager loop does), rows that
   stopped earlier are trimmed back to their stop token (their later tokens never appear: length,
   mask and log-probs end there), a non-finite draw raises, and the loop ends when no row runs.
3. Draws: one uniform per row per step from the same generator as the eager loop (drawn on the
   host side of the step, `torch.rand(total, 1)`), so greedy tokens and seeded samples equal the
   eager path's (up to kernel rounding of the logits).
4. `cuda_graph=True` (CUDA only) captures the one-step function (feed + draw + bookkeeping) in a
   `torch.cuda.CUDAGraph` and replays it; `compile=True` (CUDA only) wraps it in
   `torch.compile(mode="reduce-overhead")` with the state buffers marked static. On CPU both
   raise ValueError; plain `static=True` runs the same step eagerly (and is what CPU tests check).

Not here: validation and packaging (engine.py), stop matching rules (stops.py).
"""

from __future__ import annotations

import torch

from rlreason.sampling import kv
from rlreason.sampling.draw import NONFINITE, first_above_nosync, inverse_cdf, sample_rows


def draw_nosync(probs: torch.Tensor, u: torch.Tensor):
    """draw.draw's two-level inverse CDF → (index (B,), bad (B,) rows without finite mass)."""
    return inverse_cdf(probs, u, first_above_nosync)


def sample_next_nosync(logits, temperature: float, top_k, top_p, u):
    """draw.sample_next without host reads → tok (B,), logp (B,), bad (B,) bool."""
    return sample_rows(logits, temperature, top_k, top_p, u, first_above_nosync)


class StaticDecoder:
    """State buffers (fixed addresses) and the one-step function of the static loop."""

    def __init__(self, model, prompt_ids, n, max_new, sampling, eos, stops, pad_id, share, rows):
        device = next(model.parameters()).device
        self.model, self.max_new, self.pad_id = model, max_new, pad_id
        self.sampling, self.eos, self.stops = sampling, eos, stops  # (temperature, top_k, top_p)
        self.row_offset, total = rows
        self.cache, self.logits, self.next_pos = kv.prefill(
            model, prompt_ids, n, max_new, share, pad_id, device
        )
        B = self.logits.shape[0]
        self.B, self.t = B, self.cache.t  # (1,) the column drawn next = the suffix slot
        self.out = torch.full((B, max_new), pad_id, dtype=torch.long, device=device)
        self.logps = torch.zeros(B, max_new, dtype=torch.float32, device=device)
        self.lengths = torch.zeros(B, dtype=torch.long, device=device)
        self.finish = torch.zeros(B, dtype=torch.long, device=device)  # 0 run, 1 eos, 2 stop
        self.tok = torch.full((B,), pad_id, dtype=torch.long, device=device)  # fed next
        self.u = torch.zeros(total, 1, device=device)  # this step's uniforms (all rows)
        self.bad = torch.zeros(B, dtype=torch.bool, device=device)

    def buffers(self) -> list[torch.Tensor]:
        return [self.logits, self.next_pos, self.out, self.logps, self.lengths, self.finish]

    def sample(self) -> None:
        """Draw column t for every row; running rows record it. No host read."""
        u = self.u[self.row_offset : self.row_offset + self.B]  # (B, 1)
        tok, lp, bad = sample_next_nosync(self.logits, *self.sampling, u)
        alive = self.finish == 0  # (B,)
        self.bad |= bad & alive
        col = self.t.expand(self.B)[:, None]  # (B, 1)
        self.out.scatter_(1, col, torch.where(alive, tok, self.pad_id)[:, None])
        self.logps.scatter_(1, col, torch.where(alive, lp, 0.0)[:, None])
        self.lengths.copy_(torch.where(alive, self.t + 1, self.lengths))
        is_eos = torch.isin(tok, self.eos)
        is_stop = self._id_hits() & ~is_eos
        code = torch.where(is_eos, 1, torch.where(is_stop, 2, 0))
        self.finish.copy_(torch.where(alive, code, self.finish))
        self.tok.copy_(torch.where(self.finish == 0, tok, self.pad_id))

    def _id_hits(self) -> torch.Tensor:
        hit = torch.zeros(self.B, dtype=torch.bool, device=self.out.device)
        for s in self.stops.ids.seqs:
            m = s.numel()
            cols = (self.t - m + 1 + torch.arange(m, device=s.device)).clamp(min=0)  # (m,)
            window = self.out.index_select(1, cols)  # (B, m)
            hit |= (window == s).all(-1) & (self.t + 1 >= m)
        return hit

    def step(self) -> None:
        """Feed the tokens of column t (slot t of the suffix), then draw column t + 1."""
        pos = (self.next_pos + self.t)[:, None]  # (B, 1)
        self.logits.copy_(self.model(self.tok[:, None], kv_cache=self.cache, positions=pos)[:, -1])
        self.sample()

    def check(self, upto: int, seqs: dict[int, list[int]], scanned: list[int]) -> bool:
        """Host: stop strings over columns < upto, trim, raise on bad draws; True when done."""
        if bool(self.bad.any()):
            raise FloatingPointError(NONFINITE)
        text = self.stops.text
        if text:
            finish, lengths = self.finish.tolist(), self.lengths.tolist()
            lo = min((c for c in scanned if c >= 0), default=upto)
            out = self.out[:, lo:upto].tolist()  # (B, upto - lo): the columns not yet read
            for r in range(self.B):
                if scanned[r] < 0:
                    continue  # stopped at an earlier check
                seq = seqs.setdefault(r, [])
                for j in range(scanned[r], lengths[r]):
                    seq.append(out[r][j - lo])
                    if text.completes(seq):
                        if not (j == lengths[r] - 1 and finish[r] == 1):  # EOS wins
                            self.lengths[r], self.finish[r] = j + 1, 2
                        scanned[r] = -1
                        break
                else:
                    scanned[r] = -1 if finish[r] else lengths[r]
        return not bool((self.finish == 0).any())


def decode(model, prompt_ids, n, max_new, sampling, eos, stops, gen, pad_id, share, rows, opts):
    """The static loop → (out (B, T), logps (B, T), lengths (B,), finish (B,)).
    opts: (check_every, compile, cuda_graph)."""
    check_every, use_compile, use_graph = opts
    if check_every < 1:
        raise ValueError(f"generate: check_every must be >= 1, got {check_every}")
    dec = StaticDecoder(model, prompt_ids, n, max_new, sampling, eos, stops, pad_id, share, rows)
    device = dec.u.device
    if (use_compile or use_graph) and device.type != "cuda":
        raise ValueError(
            "generate: compile=True / cuda_graph=True capture CUDA graphs and need a CUDA model; "
            "on CPU use static=True alone (same results, eager step)"
        )
    total = dec.u.shape[0]

    def uniforms() -> None:
        dec.u.copy_(torch.rand(total, 1, generator=gen, device=device))

    uniforms()
    dec.sample()  # column 0 from the prefill logits
    step = dec.step
    if use_compile:
        step = _compiled(dec)
    elif use_graph and max_new > 1:
        step = _graphed(dec)
    seqs: dict[int, list[int]] = {}
    scanned = [0] * dec.B
    done = False
    for t in range(1, max_new):
        if t % check_every == 0 and dec.check(t, seqs, scanned):
            done = True
            break
        uniforms()
        step()
    if not done:
        dec.check(max_new, seqs, scanned)
    return dec.out, dec.logps, dec.lengths, dec.finish


def _state(dec: StaticDecoder) -> list[torch.Tensor]:
    return dec.buffers() + dec.cache.buffers() + [dec.tok, dec.u, dec.bad]


def _compiled(dec: StaticDecoder):
    for buf in _state(dec):
        torch._dynamo.mark_static_address(buf)
    return torch.compile(dec.step, mode="reduce-overhead")


def _graphed(dec: StaticDecoder):
    """Warm up on a side stream (state restored afterwards), capture one step, replay it."""
    saved = [b.clone() for b in _state(dec)]
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):  # each warm-up step runs from the saved state (same slot, column)
            dec.step()
            for b, s in zip(_state(dec), saved):
                b.copy_(s)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        dec.step()
    return graph.replay
