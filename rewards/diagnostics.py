"""Text diagnostics of a batch of completions, computed by the scorer (pure functions over text).

- `rollout/think_rate`: share of completions with a non-empty `<think>…</think>` section (read
  with `envs.tags.reasoning`; with `prefilled` the prompt opened `<think>`).
- `rollout/self_verify_rate`: share of reasonings containing a self-verification phrase
  ("wait", "let me check", "verify", "double-check", "re-check", "actually", "hmm"; English only).
- `rollout/language_mix`: mean share of words in the reasoning's minority scripts (Latin,
  Cyrillic, Han/Kana counted per character); 0 when one script is used throughout.
- `rollout/repetition`: mean share of repeated character 8-grams in the completions (1 - distinct /
  total), a cheap degeneration signal for the collapse alarm.

These are signals for dashboards and alarms, not rewards: they never enter the loss. Token lengths
(`rollout/length_*`) are the trainer's: text does not know its tokenisation.
"""

from __future__ import annotations

import re

from envs.tags import reasoning

VERIFY_RE = re.compile(
    r"\b(wait|let me check|verify|double[- ]check|re-?check|actually|hmm)\b", re.I
)
SCRIPT_RES = {
    "latin": re.compile(r"[A-Za-z]+"),
    "cyrillic": re.compile(r"[\u0400-\u04FF]+"),
    "han": re.compile(r"[\u3040-\u30FF\u4E00-\u9FFF]"),
}


def language_mix(text: str) -> float:
    counts = [len(r.findall(text)) for r in SCRIPT_RES.values()]
    total = sum(counts)
    return 0.0 if total == 0 else 1.0 - max(counts) / total


def repetition(text: str, n: int = 8) -> float:
    grams = [text[i : i + n] for i in range(max(len(text) - n + 1, 0))]
    return 0.0 if not grams else 1.0 - len(set(grams)) / len(grams)


def _mean(xs) -> float:
    xs = list(xs)
    return sum(xs) / len(xs) if xs else float("nan")


def text_diagnostics(texts: list[str], prefilled: bool = False) -> dict[str, float]:
    """The `rollout/*` text signals above for a batch of completions."""
    thought = [r for r in (reasoning(t, prefilled) for t in texts) if r]
    return {
        "rollout/think_rate": len(thought) / max(len(texts), 1),
        "rollout/self_verify_rate": _mean(bool(VERIFY_RE.search(r)) for r in thought)
        if thought
        else 0.0,
        "rollout/language_mix": _mean(language_mix(r) for r in thought) if thought else 0.0,
        "rollout/repetition": _mean(repetition(t) for t in texts),
    }
