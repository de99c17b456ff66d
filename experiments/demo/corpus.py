"""Synthetic "web" pretraining corpus for the built-in addition task (pure Python, seeded).

Every document is `"Q: {a}+{b}=\\nA: " + completion + "<eos>"`, i.e. the `tiny` template's prompt
followed by one of four kinds of completion, in fractions set by `CorpusConfig`:

- `direct`: `<answer>{guess}</answer>`. The guess is right when the sum needs no carry; when it
  does, it is right only with probability `direct_right_on_carry` and otherwise the column sums
  with every carry dropped (`175+48` → `113`). Direct answering is what the base does by default,
  and it is weak exactly where the task needs intermediate steps.
- `think`: a worked trace `<think>…</think><answer>…</answer>` (see `trace_lines`), usually right.
  A share `sloppy_fraction` of the traces has one wrong column (the error propagates to the
  answer); a share `truncated_fraction` stops mid-trace with no answer at all.
- `bad`: badly formatted text from `BAD_FORMATS` (a bare number, the answer in prose, an
  unclosed answer tag, chatter around the tags, a trace whose answer is outside the tags); the
  numbers in it follow the `direct` rule.

The trace is designed for a tiny character model: one line per column, least significant first,
each line `x+y+c=ss p` with the two column digits (0 once an operand has run out), the carry in,
the two-digit column sum `ss` (carry out, digit) and the partial result `p` so far, which is the
previous line's partial result with the new digit in front. The answer is a copy of the last
partial result, so no step needs more than a lookup, a one-digit sum or a copy. A final carry gets
its own line `0+0+1=01 1…`.

Prompts are drawn with the `arithmetic` env's own sampler (`CorpusConfig.env_kwargs()` is the env
config the RL trainer uses) and the env's eval prompts are excluded, so held-out evaluation never
sees a pretraining problem. This module does not tokenize or train (experiments/demo/pretrain.py does).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import asdict, dataclass

from envs.arithmetic import ArithmeticConfig, sample_task
from envs.base import build_env
from envs.templates import render

KINDS = ("direct", "think", "bad")


@dataclass(frozen=True)
class CorpusConfig:
    n_docs: int = 40_000
    seed: int = 1234
    digits: int = 3  # env: operands have min_digits..digits digits; fixed
    min_digits: int = 3  # width keeps every digit at a fixed position
    env_seed: int = 0  # env: seed of its train/eval splits
    n_train: int = 10_000
    n_eval: int = 500
    direct_fraction: float = 0.66
    think_fraction: float = 0.20  # the rest (1 - direct - think) is badly formatted
    direct_right_on_carry: float = 0.10
    sloppy_fraction: float = 0.06  # of the think documents
    truncated_fraction: float = 0.04  # of the think documents

    def __post_init__(self) -> None:
        probs = {
            k: getattr(self, k)
            for k in (
                "direct_fraction",
                "think_fraction",
                "direct_right_on_carry",
                "sloppy_fraction",
                "truncated_fraction",
            )
        }
        bad = {k: v for k, v in probs.items() if not 0.0 <= v <= 1.0}
        if bad:
            raise ValueError(f"CorpusConfig: fractions must lie in [0, 1], got {bad}")
        if self.direct_fraction + self.think_fraction > 1.0 + 1e-9:
            raise ValueError(
                "CorpusConfig: direct_fraction + think_fraction exceeds 1 "
                f"({self.direct_fraction} + {self.think_fraction})"
            )
        if self.sloppy_fraction + self.truncated_fraction > 1.0 + 1e-9:
            raise ValueError("CorpusConfig: sloppy_fraction + truncated_fraction exceeds 1")
        if self.n_docs < 0:
            raise ValueError(f"CorpusConfig: n_docs must be >= 0, got {self.n_docs}")
        ArithmeticConfig(**self.env_kwargs())  # validates digits / min_digits

    @property
    def bad_fraction(self) -> float:
        return max(0.0, 1.0 - self.direct_fraction - self.think_fraction)

    def env_kwargs(self) -> dict:
        """Keyword arguments of `build_env("arithmetic", ...)` for the matching RL task."""
        return dict(
            digits=self.digits,
            min_digits=self.min_digits,
            ops=("+",),
            seed=self.env_seed,
            n_train=self.n_train,
            n_eval=self.n_eval,
            template="tiny",
        )

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Doc:
    text: str  # full document, prompt + completion + "<eos>"
    prompt: str  # rendered prompt ("Q: 12+345=\nA: ")
    completion: str  # the part after the prompt, without "<eos>"
    kind: str  # direct | think | bad
    variant: str  # direct: right|carry_dropped; think: clean|sloppy|truncated; bad: format name
    a: int
    b: int
    correct: bool  # the completion states the right sum inside <answer> tags


# --------------------------------------------------------------------------- arithmetic pieces


def column_digits(a: int, b: int) -> list[tuple[int, int]]:
    """(x, y) digit pairs, least significant first, padded with 0 to the longer operand."""
    n = max(len(str(a)), len(str(b)))
    return [((a // 10**i) % 10, (b // 10**i) % 10) for i in range(n)]


def needs_carry(a: int, b: int) -> bool:
    return any(x + y >= 10 for x, y in column_digits(a, b))


def carry_dropped(a: int, b: int) -> int:
    """Column sums mod 10, every carry (including the final one) dropped."""
    return sum(((x + y) % 10) * 10**i for i, (x, y) in enumerate(column_digits(a, b)))


def direct_guess(a: int, b: int, rng: random.Random, cfg: CorpusConfig) -> tuple[int, str]:
    """(guess, variant) of a direct answer: right without a carry, usually carry-dropped with."""
    if not needs_carry(a, b) or rng.random() < cfg.direct_right_on_carry:
        return a + b, "right"
    return carry_dropped(a, b), "carry_dropped"


def trace_lines(a: int, b: int, error_column: int | None = None) -> tuple[list[str], int]:
    """Worked column-addition lines and the final result; `error_column` adds 1 (mod 10) to that
    column's digit, a sloppy step whose error then propagates to the result."""
    lines, carry, partial = [], 0, ""
    cols = column_digits(a, b)
    for i, (x, y) in enumerate(cols):
        s = x + y + carry
        digit = (s % 10 + (1 if i == error_column else 0)) % 10
        shown = (s // 10) * 10 + digit
        partial = f"{digit}{partial}"
        lines.append(f"{x}+{y}+{carry}={shown:02d} {partial}")
        carry = s // 10
    if carry:
        partial = f"1{partial}"
        lines.append(f"0+0+1=01 {partial}")
    return lines, int(partial)


def trace_completion(lines: list[str], result: int) -> str:
    return "<think>" + "\n".join(lines) + "\n</think><answer>" + str(result) + "</answer>"


# --------------------------------------------------------------------------- completions by kind


def _direct(a: int, b: int, rng: random.Random, cfg: CorpusConfig) -> tuple[str, str, bool]:
    guess, variant = direct_guess(a, b, rng, cfg)
    return f"<answer>{guess}</answer>", variant, guess == a + b


def _think(a: int, b: int, rng: random.Random, cfg: CorpusConfig) -> tuple[str, str, bool]:
    u = rng.random()
    if u < cfg.sloppy_fraction:
        lines, result = trace_lines(a, b, error_column=rng.randrange(len(column_digits(a, b))))
        return trace_completion(lines, result), "sloppy", result == a + b
    lines, result = trace_lines(a, b)
    full = trace_completion(lines, result)
    if u < cfg.sloppy_fraction + cfg.truncated_fraction:
        cut = rng.randint(len("<think>") + 1, full.index("</think>"))
        return full[:cut], "truncated", False
    return full, "clean", True


def _bare(a, b, guess, rng):
    return str(guess)


def _prose(a, b, guess, rng):
    return rng.choice(("the answer is ", "it is ", "= ")) + str(guess)


def _unclosed(a, b, guess, rng):
    return f"<answer>{guess}"


def _chatter(a, b, guess, rng):
    return rng.choice(("easy. ", "hmm ok ", "sure! ")) + f"<answer>{guess}</answer>"


def _untagged_trace(a, b, guess, rng):
    lines, result = trace_lines(a, b)
    return "<think>" + "\n".join(lines) + "\n</think>so " + str(result)


BAD_FORMATS: dict[str, Callable[[int, int, int, random.Random], str]] = {
    "bare": _bare,
    "prose": _prose,
    "unclosed": _unclosed,
    "chatter": _chatter,
    "untagged_trace": _untagged_trace,
}


def _bad(a: int, b: int, rng: random.Random, cfg: CorpusConfig) -> tuple[str, str, bool]:
    guess, _ = direct_guess(a, b, rng, cfg)
    name = rng.choice(sorted(BAD_FORMATS))
    text = BAD_FORMATS[name](a, b, guess, rng)
    return text, name, name == "chatter" and guess == a + b


COMPLETIONS = {"direct": _direct, "think": _think, "bad": _bad}


# --------------------------------------------------------------------------- the corpus


def eval_prompts(cfg: CorpusConfig) -> set[str]:
    """The env's held-out prompts (`"12+345="`), excluded from the corpus."""
    return {t.prompt for t in build_env("arithmetic", **cfg.env_kwargs()).eval}


def _pick_kind(rng: random.Random, cfg: CorpusConfig) -> str:
    u = rng.random()
    if u < cfg.direct_fraction:
        return "direct"
    return "think" if u < cfg.direct_fraction + cfg.think_fraction else "bad"


def make_doc(a: int, b: int, kind: str, rng: random.Random, cfg: CorpusConfig) -> Doc:
    """One document of `kind` for `a+b` (pure given the generator state)."""
    if kind not in COMPLETIONS:
        raise ValueError(f"corpus: unknown document kind {kind!r}; valid kinds: {KINDS}")
    completion, variant, correct = COMPLETIONS[kind](a, b, rng, cfg)
    prompt = render("tiny", f"{a}+{b}=")
    return Doc(prompt + completion + "<eos>", prompt, completion, kind, variant, a, b, correct)


def build_corpus(cfg: CorpusConfig | None = None) -> list[Doc]:
    """`cfg.n_docs` seeded documents; same config → same list. No eval prompt occurs."""
    cfg = cfg or CorpusConfig()
    excluded = eval_prompts(cfg)
    env_cfg = ArithmeticConfig(**cfg.env_kwargs())
    rng = random.Random(cfg.seed)
    docs: list[Doc] = []
    while len(docs) < cfg.n_docs:
        task = sample_task(env_cfg, rng)
        if task.prompt in excluded:
            continue
        a, b = (int(x) for x in task.prompt[:-1].split("+"))
        docs.append(make_doc(a, b, _pick_kind(rng, cfg), rng, cfg))
    return docs


def mix_summary(docs: list[Doc]) -> dict[str, float]:
    """Share of each kind and variant (`kind` and `kind/variant` keys) in `docs`."""
    n = max(1, len(docs))
    out: dict[str, float] = {}
    for d in docs:
        out[d.kind] = out.get(d.kind, 0.0) + 1 / n
        key = f"{d.kind}/{d.variant}"
        out[key] = out.get(key, 0.0) + 1 / n
    return dict(sorted(out.items()))
