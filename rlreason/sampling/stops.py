"""When a completion ends: its EOS ids, stop strings matched on decoded text, stop id sequences.

- `eos_id_list(eos, tokenizer)`: the EOS ids that end a row: `eos` (one id or a collection),
  else the tokenizer's `eos_ids` (every EOS id its files name), else its `eos_id`.
- `TextStops`: stop strings matched on the DECODED tail of a completion, so `</answer>` stops a
  row whether a BPE tokenizer wrote it as `</`,`answer`,`>` or `Ġ</`,`answer`,`>Ċ`. The token
  that completes a stop string ends the completion and is kept, even when the string ends inside
  it (a token `>\\n` keeps its newline).
- `IdStops`: exact token-id sequences on the completion's tail (for callers that pass ids).
- `Stops`: both, for the engine (rows that persist across steps) and for beam search
  (candidates rebuilt every step).

How `TextStops` stays cheap and exact. Let B be the longest stop string in UTF-8 bytes.
1. Only a token that carries the last character of some stop string can complete one, so a
   token's own decoded text is looked up once per id (cached): if it holds no stop string's last
   character, the row is not decoded at all this step. Tokens whose own text is empty or holds
   U+FFFD (a partial UTF-8 byte) always go on to step 2, and so does every token when a stop
   string ends in a space (SentencePiece decoders drop a lone token's leading space).
2. The row's last `B + 8` tokens are decoded. Every ordinary token carries at least one byte of
   text, so these cover the stop string plus a margin for decoder effects at the window's start
   (a character cut in the middle decodes to U+FFFD; a leading space may be stripped). Tokens
   that decode to nothing (pad, EOS, empty specials) break that count, so the window is checked:
   unless its text, leading U+FFFD stripped, holds at least B + (bytes of the last token) + 1
   bytes, it doubles, up to the whole completion.
3. The row stops when any stop string occurs in that text. Rows are checked after every token,
   so an occurrence is always new: an older one would have stopped the row when it completed.
Matching is on the completion only, never the prompt. `tokenizer.decode(ids)` must drop nothing
but pad/EOS/special ids (both tokenizers of this package do): a stop string that is the text of an
EOS id is never seen in decoded text, so such a token stops the row as an EOS id instead.

Not here: the decode loop (engine.py), beam bookkeeping (beam.py), chat end-of-turn markers
(`envs.templates`).
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence

import torch

MARGIN = 8  # tokens decoded beyond the longest stop string's byte length


def eos_id_list(eos, tokenizer=None) -> list[int]:
    """The EOS ids: `eos` (an id or a collection of ids); when None, `tokenizer.eos_ids`, else
    `tokenizer.eos_id`; [] when there is none (no row ends on EOS)."""
    if eos is None and tokenizer is not None:
        eos = getattr(tokenizer, "eos_ids", None)
        if eos is None:
            eos = getattr(tokenizer, "eos_id", None)
    if eos is None:
        return []
    try:
        return [operator.index(eos)]
    except TypeError:
        return list(dict.fromkeys(operator.index(e) for e in eos))


class TextStops:
    """Stop strings matched on the decoded tail of each completion; see the module docstring."""

    def __init__(self, stop_strings: Iterable[str] | None, tokenizer):
        self.strings = tuple(dict.fromkeys(s for s in (stop_strings or ()) if s))
        if self.strings and tokenizer is None:
            raise ValueError(
                "stop strings are matched on decoded text: pass the tokenizer "
                f"(stop_strings={list(self.strings)})"
            )
        self.tokenizer = tokenizer
        self.max_bytes = max((len(s.encode()) for s in self.strings), default=0)
        self.window = self.max_bytes + MARGIN
        self._last_chars = tuple(dict.fromkeys(s[-1] for s in self.strings))
        self._every_token = " " in self._last_chars
        self._tokens: dict[int, tuple[bool, int]] = {}  # id -> (may complete, bytes of its text)

    def __bool__(self) -> bool:
        return bool(self.strings)

    def _token(self, tid: int) -> tuple[bool, int]:
        info = self._tokens.get(tid)
        if info is None:
            text = self.tokenizer.decode([tid])
            may = (
                self._every_token
                or not text
                or "\ufffd" in text
                or any(c in text for c in self._last_chars)
            )
            info = self._tokens[tid] = (may, len(text.encode()))
        return info

    def may_complete(self, tid: int) -> bool:
        """Whether token `tid` can be the one that completes a stop string (step 1)."""
        return self._token(tid)[0]

    def completes(self, ids: Sequence[int]) -> bool:
        """Whether the completion `ids` (non-empty, the newest token last) now holds a stop string;
        the caller checks after every token, so only the newest token can have completed it."""
        may, last_bytes = self._token(ids[-1])
        if not may:
            return False
        need, k = self.max_bytes + last_bytes + 1, self.window
        while True:
            text = self.tokenizer.decode(ids[-k:])
            if k >= len(ids) or len(text.lstrip("\ufffd").encode()) >= need:
                break
            k *= 2
        return any(s in text for s in self.strings)


class IdStops:
    """Exact stop token sequences matched against the tail of each completion."""

    def __init__(self, stop_ids, device):
        seqs = [list(s) for s in (stop_ids or []) if len(s) > 0]
        self.seqs = [torch.tensor(s, dtype=torch.long, device=device) for s in seqs]

    def __bool__(self) -> bool:
        return bool(self.seqs)

    def hits(self, out: torch.Tensor, t: int) -> torch.Tensor:
        """out (B, T) tokens so far, t = index just written → (B,) bool."""
        hit = torch.zeros(out.shape[0], dtype=torch.bool, device=out.device)
        for s in self.seqs:
            m = s.numel()
            if t + 1 >= m:
                hit |= (out[:, t + 1 - m : t + 1] == s).all(-1)
        return hit


class Stops:
    """The stop strings and stop id sequences of one generate / beam-search call."""

    def __init__(self, stop_strings, stop_ids, tokenizer, device):
        self.text = TextStops(stop_strings, tokenizer)
        self.ids = IdStops(stop_ids, device)
        self._rows: dict[int, list[int]] = {}  # engine row -> its completion ids so far

    def rows(self, out: torch.Tensor, live: torch.Tensor, tok: torch.Tensor, t: int):
        """Engine: rows `live` (b,) of out (B, T) just got `tok` (b,) at index t → (b,) bool.
        Each row is passed here after every token it gets, until it stops."""
        hit = torch.zeros(live.shape[0], dtype=torch.bool, device=out.device)
        if self.ids:
            hit |= self.ids.hits(out[live], t)
        if self.text:
            flags = []
            for r, k in zip(live.tolist(), tok.tolist()):
                seq = self._rows.setdefault(r, [])
                seq.append(k)
                flags.append(self.text.completes(seq))
            hit |= torch.tensor(flags, dtype=torch.bool, device=out.device)
        return hit

    def candidates(self, cand: torch.Tensor, t: int) -> torch.Tensor:
        """Beam search: cand (N, t+1) whole completions, each one token past a live beam
        → (N,) bool."""
        hit = self.ids.hits(cand, t) if self.ids else torch.zeros_like(cand[:, 0], dtype=torch.bool)
        if self.text:
            maybe = [j for j, k in enumerate(cand[:, -1].tolist()) if self.text.may_complete(k)]
            if maybe:
                seqs = cand[maybe].tolist()  # (m, t+1) on the host
                flags = [self.text.completes(s) for s in seqs]
                hit[torch.tensor(maybe, device=cand.device)] |= torch.tensor(
                    flags, dtype=torch.bool, device=cand.device
                )
        return hit
