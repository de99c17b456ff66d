"""Format rewards for the `<think>…</think><answer>…</answer>` template.

Each is `(completions, tasks, *, prefilled=False) -> list[float]` (tasks are unused):
`strict_format_reward` 1.0 iff `is_strict_format` (DeepSeek-R1-Zero's format reward, Guo et al.
2025, §2.2.2); `soft_format_reward` 1.0 iff the four tags occur in order somewhere (shaping);
`tag_count_reward` 0.25 per tag occurring exactly as often as expected (0.0 … 1.0).
`prefilled=True` is for templates whose prompt already ends with `<think>`.

Format rewards are shaping, not the objective: a small weight (`RECOMMENDED_WEIGHT` = 0.1), or
strict format as the gate of a `ComposedReward` (weight 0). The structure checks are the tag
parser's (`envs.tags`, linear-time on hostile text). Not here: judging the answer's content
(`rewards.math`) or the tokenizer (a trailing `<|im_end|>` fails the strict check).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from envs.tags import expected_counts, is_soft_format, is_strict_format

if TYPE_CHECKING:
    from envs.base import Task

RECOMMENDED_WEIGHT = 0.1


def tag_count_score(completion: str, prefilled: bool = False) -> float:
    """0.25 for each tag whose count is exactly as expected (1; 0 for `<think>` if prefilled)."""
    return 0.25 * sum(completion.count(tag) == n for tag, n in expected_counts(prefilled).items())


def strict_format_reward(
    completions: list[str], tasks: list[Task], *, prefilled: bool = False
) -> list[float]:
    """1.0 where `is_strict_format(completion, prefilled)`, else 0.0 (DeepSeek-R1 format reward)."""
    return [float(is_strict_format(c, prefilled)) for c in completions]


def soft_format_reward(
    completions: list[str], tasks: list[Task], *, prefilled: bool = False
) -> list[float]:
    """1.0 where the four tags appear in order (`is_soft_format`), else 0.0; shaping only, in
    the spirit of the soft format reward of Hugging Face's open-r1 (2025) reproduction."""
    return [float(is_soft_format(c, prefilled)) for c in completions]


def tag_count_reward(
    completions: list[str], tasks: list[Task], *, prefilled: bool = False
) -> list[float]:
    """`tag_count_score` per completion: 0.25 per correctly counted tag; a dense shaping signal
    after the tag-count reward of open-r1 (2025), without its newline conventions."""
    return [tag_count_score(c, prefilled) for c in completions]
