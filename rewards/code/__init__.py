"""The code reward: programs in `<answer>` run against tests in a namespace sandbox (sandbox.py,
sandbox_child.py); verdicts are decided in the parent from returned data (reward.py)."""

from rewards.code.reward import (
    TestReport,
    code_reward,
    extract_program,
    normalize_output,
    run_tests,
    run_tests_many,
    values_match,
)

__all__ = [
    "TestReport",
    "code_reward",
    "extract_program",
    "normalize_output",
    "run_tests",
    "run_tests_many",
    "values_match",
]
