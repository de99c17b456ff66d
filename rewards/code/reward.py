"""Code tests and the code-execution reward: verdicts decided in the trusted parent.

- `run_tests(program, tests)`: each stdin/stdout test runs in its own sandboxed process
  (`rewards.code.sandbox`); call tests (`{"call": "f(1, 2)", "expected": "3"}`) run in one process
  that returns `repr(value)`. Expected values never enter the child and a pass is the parent's
  comparison, so exit codes, printed markers or patched builtins cannot fake one.
- `run_tests_many`: many programs on a bounded thread pool.
- `code_reward(completions, tasks) -> Scores`: the program is `extract_program`'s (the last
  `<answer>` block, read with `envs.tags`; its first fenced block if any); scored by `SCORING`:
  "all_pass" (default, DeepSeek-R1's binary accuracy) or "fraction". No program scores 0.
Not done here: isolation (`rewards.code.sandbox`), partial credit for output prefixes, special
judges (float-tolerant stdout, unordered output), languages other than Python.
"""

from __future__ import annotations

import ast
import logging
import math
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from envs.tags import answers_of, strip_think
from rewards.base import Scores
from rewards.code.sandbox import Limits, run_program

log = logging.getLogger(__name__)

_FENCE = re.compile(r"```(?:python3?|py)?[ \t]*\n(.*?)```", re.DOTALL)
FLOAT_TOL = 1e-6


@dataclass(frozen=True)
class TestReport:
    """`passed` of `total` tests; `statuses[i]` is "pass", "fail" or the run's failure status
    (error | timeout | memory | killed | output_limit | missing)."""

    passed: int
    total: int
    statuses: tuple[str, ...]

    @property
    def all_passed(self) -> bool:
        return self.total > 0 and self.passed == self.total


def extract_program(completion: str) -> str | None:
    """The program inside the last `<answer>` block after the reasoning (first fenced block in
    it, if any); a program written only inside `<think>` is not graded."""
    answers = answers_of(strip_think(completion))
    if not answers:
        return None
    fenced = _FENCE.search(answers[-1])
    program = fenced.group(1) if fenced else answers[-1]
    return program.strip("\n") or None


def normalize_output(text: str) -> str:
    """CRLF -> LF, trailing whitespace stripped per line, trailing blank lines dropped."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    return "\n".join(lines).rstrip("\n")


def _literal(text: str) -> tuple[bool, Any]:
    try:
        return True, ast.literal_eval(text.strip())
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None


def _equal(a: Any, b: Any) -> bool:
    """Python equality, but bool is not int, sequence types must agree, floats are tolerant."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b or math.isclose(a, b, rel_tol=FLOAT_TOL, abs_tol=FLOAT_TOL)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_equal, a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def values_match(got_repr: str, expected: str) -> bool:
    """Compare a child's repr with the expected text as literals, else as stripped strings."""
    ok_got, got = _literal(got_repr)
    ok_exp, exp = _literal(expected)
    if ok_got and ok_exp:
        try:
            return _equal(got, exp)
        except RecursionError:
            return False
    return got_repr.strip() == expected.strip()


def _check_tests(tests: Any) -> None:
    if not isinstance(tests, (list, tuple)) or not tests:
        raise ValueError(f"run_tests: tests must be a non-empty list, got {type(tests).__name__}")
    for i, t in enumerate(tests):
        keys = set(t) if isinstance(t, dict) else None
        if keys not in ({"stdin", "stdout"}, {"call", "expected"}) or not all(
            isinstance(v, str) for v in t.values()
        ):
            raise ValueError(
                f"run_tests: test {i} must be {{'stdin','stdout'}} or "
                f"{{'call','expected'}} with string values, got {t!r:.200}"
            )


def _stdio_status(program: str, test: dict, limits: Limits) -> str:
    res = run_program(program, test["stdin"], limits=limits)
    if res.status != "ok":
        return res.status
    return "pass" if normalize_output(res.stdout) == normalize_output(test["stdout"]) else "fail"


def _call_statuses(
    program: str, cases: list[dict], entry_point: str | None, limits: Limits
) -> list[str]:
    calls = [c["call"] for c in cases]
    if entry_point is not None:  # the program must define it; checked in the child as a call
        calls = [f"{entry_point}.__call__ and ({c})" for c in calls]
    res = run_program(program, "", calls, limits=limits)
    out = []
    for i, case in enumerate(cases):
        got = res.calls.get(i)
        if got is None:
            out.append(res.status if res.status != "ok" else "missing")
        elif got.kind != "value":
            out.append("memory" if got.kind == "memory" else "error")
        else:
            out.append("pass" if values_match(got.text, case["expected"]) else "fail")
    return out


def run_tests(
    program: str,
    tests: list[dict],
    *,
    timeout_s: float = 2.0,
    memory_mb: int = 512,
    entry_point: str | None = None,
    limits: Limits | None = None,
) -> TestReport:
    """Run `tests` against `program` in the sandbox; `timeout_s` is per process (each stdin test,
    and all call tests together). Raises ValueError for malformed tests and
    `rewards.code.sandbox.SandboxError` when the sandbox itself fails; never for the program.

    A stdin/stdout test passes when the run is `ok` and `normalize_output` of both texts agree;
    a call test when the returned repr and `expected` are equal literals (`values_match`: floats
    within 1e-6), or equal stripped strings where either is not a literal. The program shares
    its process with the result pipe, so it could write frames itself: no more than answering
    the calls, since it never sees the expected values.
    """
    _check_tests(tests)
    if entry_point is not None and not str(entry_point).isidentifier():
        raise ValueError(f"run_tests: entry_point {entry_point!r} is not an identifier")
    lim = replace(limits or Limits(), timeout_s=float(timeout_s), memory_mb=int(memory_mb))
    statuses: list[str | None] = [None] * len(tests)
    call_idx = [i for i, t in enumerate(tests) if "call" in t]
    if call_idx:
        for i, s in zip(
            call_idx, _call_statuses(program, [tests[i] for i in call_idx], entry_point, lim)
        ):
            statuses[i] = s
    for i, t in enumerate(tests):
        if "stdin" in t:
            statuses[i] = _stdio_status(program, t, lim)
    final = tuple(s or "missing" for s in statuses)
    return TestReport(sum(s == "pass" for s in final), len(final), final)


def run_tests_many(
    programs: list[str], tests: list[list[dict]], *, max_workers: int = 4, **kwargs: Any
) -> list[TestReport]:
    """`run_tests` for many (program, tests) pairs on a bounded thread pool, in input order."""
    if len(programs) != len(tests):
        raise ValueError(f"run_tests_many: {len(programs)} programs but {len(tests)} test lists")
    with ThreadPoolExecutor(max_workers=max(1, max_workers)) as pool:
        return list(pool.map(lambda pt: run_tests(pt[0], pt[1], **kwargs), zip(programs, tests)))


SCORING: dict[str, Callable[[TestReport], float]] = {
    "all_pass": lambda r: 1.0 if r.all_passed else 0.0,
    "fraction": lambda r: r.passed / r.total if r.total else 0.0,
}


def _score_one(completion: str, task: Any, scoring: str, kwargs: dict) -> tuple[float, str]:
    """-> (score, outcome) with outcome "ok", "timeout" or "error"; never raises."""
    try:
        program = extract_program(completion)
        if program is None:
            return 0.0, "ok"
        report = run_tests(
            program, task.tests, entry_point=(task.meta or {}).get("entry_point"), **kwargs
        )
        return SCORING[scoring](report), ("timeout" if "timeout" in report.statuses else "ok")
    except Exception as exc:
        log.warning("code_reward: sample failed to score: %s: %s", type(exc).__name__, exc)
        return 0.0, "error"


def code_reward(
    completions: list[str],
    tasks: list,
    *,
    scoring: str = "all_pass",
    max_workers: int = 4,
    timeout_s: float = 2.0,
    memory_mb: int = 512,
) -> Scores:
    """Score each completion's program on its task's tests; counts timeouts and errors."""
    if scoring not in SCORING:
        raise ValueError(f"code_reward: unknown scoring {scoring!r}; choose from {sorted(SCORING)}")
    if len(completions) != len(tasks):
        raise ValueError(f"code_reward: {len(completions)} completions but {len(tasks)} tasks")
    kwargs = {"timeout_s": timeout_s, "memory_mb": memory_mb}
    with ThreadPoolExecutor(max_workers=max(1, max_workers)) as pool:
        results = list(
            pool.map(lambda ct: _score_one(ct[0], ct[1], scoring, kwargs), zip(completions, tasks))
        )
    return Scores(
        [s for s, _ in results],
        errors=sum(o == "error" for _, o in results),
        timeouts=sum(o == "timeout" for _, o in results),
    )
