"""The math verifier: answer extraction in two modes (extract.py: strict, lenient), normalisation,
an own tokenizer and parser, exact rational comparison, bounded symbolic comparison in killable
worker processes (see reward.py)."""

from rewards.math.extract import MODES, explain_answer, graded_answer
from rewards.math.grading import math_reward
from rewards.math.normalize import extract_answer, normalize
from rewards.math.reward import (
    Verdict,
    canonical_answer,
    check_many,
    check_many_verdicts,
    close_pool,
    is_equivalent,
    start_pool,
)

__all__ = [
    "MODES",
    "Verdict",
    "canonical_answer",
    "check_many",
    "check_many_verdicts",
    "close_pool",
    "explain_answer",
    "extract_answer",
    "graded_answer",
    "is_equivalent",
    "math_reward",
    "normalize",
    "start_pool",
]
