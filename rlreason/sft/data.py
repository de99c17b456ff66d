"""SFT data: `{"prompt", "completion"}` JSONL lines, checked, split and tokenized.

`load_examples(path)` reads a JSONL file of objects with a non-empty string `prompt` (the exact
text the model is conditioned on, already rendered by a template) and a non-empty string
`completion`; other keys (provenance, scores) are allowed and ignored. Blank lines are skipped
(they still count for line numbers). The whole file is checked before anything trains: every bad
line is an `SFTDataError` naming `file:line` and what is wrong (not JSON, not an object, a missing,
non-string or empty field), the first `MAX_ERRORS` of them in one message.

`split_examples` holds out a seeded share of the lines; `tokenize_examples` turns an example into
`prompt ids + completion ids (+ EOS)` with the loss starting at the completion, and rejects
sequences longer than the model's context (naming `file:line` and both lengths).

Not here: batching and the loss (rlreason/sft/trainer.py), config checks (rlreason/sft/checks.py).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

MAX_ERRORS = 10  # bad lines reported in one message
FIELDS = ("prompt", "completion")


class SFTDataError(ValueError):
    """A bad SFT data file; the message names `file:line` and what is wrong."""


@dataclass(frozen=True)
class SFTExample:
    prompt: str
    completion: str
    where: str  # "file:line" (1-based line number)


@dataclass(frozen=True)
class SFTSequence:
    """One tokenized example: `ids` = prompt + completion (+ EOS); the loss covers ids[loss_start:]."""

    ids: tuple[int, ...]
    loss_start: int  # index of the first completion token in `ids`
    where: str

    @property
    def n_targets(self) -> int:
        """Tokens the loss counts (completion + EOS)."""
        return len(self.ids) - self.loss_start


def _line_problem(text: str) -> tuple[dict | None, str | None]:
    """(the parsed object, None) or (None, what is wrong with the line)."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        return None, f"not JSON ({e.msg} at column {e.colno})"
    if not isinstance(obj, dict):
        return None, f"not a JSON object (a {type(obj).__name__})"
    for key in FIELDS:
        if key not in obj:
            return None, f"missing {key!r} (keys: {sorted(obj)})"
        if not isinstance(obj[key], str):
            return None, f"{key!r} is a {type(obj[key]).__name__}, not a string"
        if not obj[key]:
            return None, f"{key!r} is empty"
    return obj, None


def raise_collected(path: str | Path, errors: list[str], total: int, what: str) -> None:
    """One SFTDataError for `errors` (the first MAX_ERRORS of `total`); nothing when empty."""
    if not errors:
        return
    if total == 1:
        raise SFTDataError(errors[0])
    more = f" (first {len(errors)} shown)" if total > len(errors) else ""
    raise SFTDataError(f"{path}: {total} {what}{more}:\n  " + "\n  ".join(errors))


def _decode(raw: bytes, first: bool) -> tuple[str, str | None]:
    """A line's text, or the reason it is not UTF-8 (a byte-order mark may open the file)."""
    try:
        return raw.decode("utf-8-sig" if first else "utf-8"), None
    except UnicodeDecodeError as e:
        return "", f"not UTF-8 text (byte {e.start}: {raw[e.start : e.start + 1]!r})"


def load_examples(path: str | Path) -> list[SFTExample]:
    """Every example of a JSONL file, after checking all its lines (module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise SFTDataError(f"{path}: {'a directory' if path.is_dir() else 'no such file'}")
    examples, errors, n_bad = [], [], 0
    with path.open("rb") as f:
        for n, raw in enumerate(f, start=1):
            line, problem = _decode(raw, first=n == 1)
            if problem is None and not line.strip():
                continue  # blank lines are skipped
            if problem is None:
                obj, problem = _line_problem(line)
            if problem is not None:
                n_bad += 1
                if len(errors) < MAX_ERRORS:
                    errors.append(f"{path}:{n}: {problem}")
                continue
            examples.append(SFTExample(obj["prompt"], obj["completion"], f"{path}:{n}"))
    raise_collected(path, errors, n_bad, "bad lines")
    if not examples:
        raise SFTDataError(f"{path}: no examples (the file is empty or blank)")
    return examples


def split_examples(
    examples: Sequence[SFTExample], fraction: float, seed: int
) -> tuple[list[SFTExample], list[SFTExample]]:
    """(train, held out): a seeded `fraction` of the lines held out, at least one when
    fraction > 0 and there are two or more lines, never all of them; 0 holds out none."""
    n = len(examples)
    k = 0 if fraction <= 0 or n < 2 else min(max(1, round(fraction * n)), n - 1)
    order = list(range(n))
    random.Random(seed * 1_000_003 + 17).shuffle(order)
    held = set(order[:k])
    train = [e for i, e in enumerate(examples) if i not in held]
    return train, [e for i, e in enumerate(examples) if i in held]


def eos_id_of(tokenizer) -> int:
    """The tokenizer's EOS id: `eos_id`, else the first of `eos_ids`."""
    eos = getattr(tokenizer, "eos_id", None)
    if eos is None:
        eos = tokenizer.eos_ids[0]
    return int(eos)


def _prompt_ids(tokenizer, text: str) -> list[int]:
    encode = getattr(tokenizer, "encode_prompt", None) or tokenizer.encode
    return list(encode(text))


def tokenize(example: SFTExample, tokenizer, add_eos: bool = True) -> SFTSequence:
    prompt = _prompt_ids(tokenizer, example.prompt)
    completion = list(tokenizer.encode(example.completion))
    if add_eos:
        completion.append(eos_id_of(tokenizer))
    return SFTSequence(tuple(prompt + completion), len(prompt), example.where)


def _length_problem(seq: SFTSequence, max_len: int | None) -> str | None:
    if seq.loss_start == 0:
        return "the prompt encodes to no tokens"
    if seq.n_targets == 0:
        return "the completion encodes to no tokens (and sft.add_eos is off)"
    if max_len is not None and len(seq.ids) > max_len:
        return (
            f"{len(seq.ids)} tokens ({seq.loss_start} prompt + {seq.n_targets} completion) "
            f"exceed the model's context of {max_len} (model.max_seq_len)"
        )
    return None


def tokenize_examples(
    examples: Sequence[SFTExample], tokenizer, add_eos: bool = True, max_len: int | None = None
) -> list[SFTSequence]:
    """Tokenize every example; one SFTDataError naming the lines that do not fit `max_len` (or
    have no prompt or completion tokens)."""
    out, errors, n_bad = [], [], 0
    for example in examples:
        seq = tokenize(example, tokenizer, add_eos)
        problem = _length_problem(seq, max_len)
        if problem is not None:
            n_bad += 1
            if len(errors) < MAX_ERRORS:
                errors.append(f"{example.where}: {problem}")
        out.append(seq)
    where = examples[0].where.rsplit(":", 1)[0] if examples else ""
    raise_collected(where, errors, n_bad, "examples do not fit")
    return out


def epoch_steps(epochs: float, n_lines: int, batch_size: int) -> int:
    """Optimizer steps for `epochs` passes over `n_lines` lines at `batch_size` per step."""
    return max(1, math.ceil(epochs * n_lines / batch_size))
