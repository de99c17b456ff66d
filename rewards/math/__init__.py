"""The math verifier: extraction and normalisation, an own tokenizer and parser, exact rational
comparison, bounded symbolic comparison in killable worker processes (see reward.py)."""

from rewards.math.normalize import extract_answer, normalize
from rewards.math.reward import (
    Verdict,
    canonical_answer,
    check_many,
    check_many_verdicts,
    close_pool,
    is_equivalent,
    math_reward,
    start_pool,
)

__all__ = [
    "Verdict",
    "canonical_answer",
    "check_many",
    "check_many_verdicts",
    "close_pool",
    "extract_answer",
    "is_equivalent",
    "math_reward",
    "normalize",
    "start_pool",
]
