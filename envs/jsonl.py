"""File-backed envs: math and code problems stored as local JSONL files, one JSON object a line.

Schema (blank lines are ignored; any other key is kept under `Task.meta`):

- `format="math"`:   {"question" or "prompt": str, "answer": str | int | float}
- `format="gsm8k"`:  {"question": str, "answer": "worked solution ... #### 42"}; the reference is
  the text after the last `####` with thousands separators removed.
- `format="hendrycks_math"` (MATH): {"problem": str, "solution": "... \\boxed{\\frac{1}{2}} ...",
  optional "level": "Level 3", "type": str}; the reference is the last \\boxed{} (or \\fbox{}),
  braces balanced; "Level N" becomes `meta["difficulty"] = N`.
- `format="code"`:   {"prompt": str, "tests": [{"stdin", "stdout"} | {"call", "expected"}, ...],
  optional "entry_point": str}.
- `format="countdown"` (TinyZero's columns): {"target": int, "nums": [int, ...] (2 to 8),
  optional "use_all": bool (default true: every number exactly once, as TinyZero scores)}; the
  prompt is the countdown env's and the `countdown` reward checks the equation.

Optional on every line: "id" (str), "difficulty" (int). A bad line raises `JsonlError` naming the
file, the line number and the problem; `skip_bad=True` skips bad lines and counts them.

This module reads and validates files; it does not download data sets or judge answers.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from envs.base import MATH_VOTE, EnvSpec, Task, TaskSet, shuffle_split, with_ids
from envs.tags import last_boxed


class JsonlError(ValueError):
    """A problem with one line of a JSONL file; `str()` reads `path:line: problem`."""

    def __init__(self, path: str, line: int, problem: str):
        super().__init__(f"{path}:{line}: {problem}")
        self.path, self.line, self.problem = path, line, problem


class _BadRecord(ValueError):
    """Raised by a record parser; the reader adds file and line."""


# --------------------------------------------------------------------------- answer extraction


def gsm8k_answer(solution: str) -> str | None:
    """The final answer of a GSM8K solution: text after the last `####`, commas removed."""
    if "####" not in solution:
        return None
    answer = solution.rsplit("####", 1)[1].strip().replace(",", "")
    return answer or None


# --------------------------------------------------------------------------- record parsers


def _text(rec: dict, *keys: str) -> str:
    for k in keys:
        if k in rec:
            if not isinstance(rec[k], str) or not rec[k].strip():
                raise _BadRecord(f"field {k!r} must be a non-empty string")
            return rec[k]
    raise _BadRecord(f"missing field {' or '.join(repr(k) for k in keys)}; found {sorted(rec)}")


def _extras(rec: dict, used: set[str]) -> dict[str, Any]:
    meta = {k: v for k, v in rec.items() if k not in used}
    if "difficulty" in meta and not isinstance(meta["difficulty"], int):
        raise _BadRecord(f"'difficulty' must be an int, got {meta['difficulty']!r}")
    return meta


def parse_math(rec: dict) -> Task:
    prompt = _text(rec, "question", "prompt")
    answer = rec.get("answer")
    if (
        isinstance(answer, bool)
        or not isinstance(answer, (str, int, float))
        or not str(answer).strip()
    ):
        raise _BadRecord(f"'answer' must be a non-empty string or number, got {answer!r}")
    return Task(prompt, str(answer).strip(), None, _extras(rec, {"question", "prompt", "answer"}))


def parse_gsm8k(rec: dict) -> Task:
    prompt, solution = _text(rec, "question"), _text(rec, "answer")
    answer = gsm8k_answer(solution)
    if answer is None:
        raise _BadRecord("'answer' has no final '#### <number>' line")
    meta = _extras(rec, {"question", "answer"})
    return Task(prompt, answer, None, {**meta, "solution": solution})


def parse_hendrycks_math(rec: dict) -> Task:
    prompt, solution = _text(rec, "problem"), _text(rec, "solution")
    answer = (last_boxed(solution) or "").strip()
    if not answer:
        raise _BadRecord("'solution' has no complete \\boxed{...} answer")
    meta = _extras(rec, {"problem", "solution", "level"})
    level = re.fullmatch(r"Level (\d+)", str(rec.get("level", "")))
    if level:
        meta.setdefault("difficulty", int(level.group(1)))
    return Task(prompt, answer, None, {**meta, "solution": solution})


def validate_tests(tests: Any) -> list[dict[str, str]]:
    """Check a code test list: each test is {stdin, stdout} or {call, expected}, all strings."""
    if not isinstance(tests, list) or not tests:
        raise _BadRecord("'tests' must be a non-empty list")
    for i, t in enumerate(tests):
        keys = set(t) if isinstance(t, dict) else None
        if keys not in ({"stdin", "stdout"}, {"call", "expected"}):
            raise _BadRecord(
                f"tests[{i}] must have exactly the keys stdin/stdout or call/expected, got {t!r}"
            )
        bad = [k for k, v in t.items() if not isinstance(v, str)]
        if bad:
            raise _BadRecord(f"tests[{i}]: {bad} must be strings")
    return tests


def parse_code(rec: dict) -> Task:
    prompt = _text(rec, "prompt")
    tests = validate_tests(rec.get("tests"))
    entry = rec.get("entry_point")
    if entry is not None and (not isinstance(entry, str) or not entry.isidentifier()):
        raise _BadRecord(f"'entry_point' must be a Python identifier, got {entry!r}")
    meta = _extras(rec, {"prompt", "tests"})
    return Task(prompt, None, tests, meta)


def _int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _BadRecord(f"'{key}' must hold integers, got {value!r}")
    return value


def parse_countdown(rec: dict) -> Task:
    from envs.countdown import make_task

    target, nums = _int("target", rec.get("target")), rec.get("nums")
    if not isinstance(nums, list) or not 2 <= len(nums) <= 8:
        raise _BadRecord(f"'nums' must be a list of 2 to 8 integers, got {nums!r}")
    nums = [_int("nums", n) for n in nums]
    use_all = rec.get("use_all", True)
    if not isinstance(use_all, bool):
        raise _BadRecord(f"'use_all' must be true or false, got {use_all!r}")
    task = make_task(nums, target, use_all)
    extras = _extras(rec, {"target", "nums", "use_all"})
    return Task(task.prompt, task.answer, None, {**task.meta, **extras})


PARSERS: dict[str, Callable[[dict], Task]] = {
    "math": parse_math,
    "gsm8k": parse_gsm8k,
    "hendrycks_math": parse_hendrycks_math,
    "code": parse_code,
    "countdown": parse_countdown,
}
REWARDS = {
    "math": {"math": 1.0, "format": 0.1},
    "gsm8k": {"math": 1.0, "format": 0.1},
    "hendrycks_math": {"math": 1.0, "format": 0.1},
    "code": {"code": 1.0, "format": 0.1},
    "countdown": {"countdown": 1.0, "format": 0.1},
}
VOTES = {"code": None, "countdown": ("envs.tags:final_answer", "envs.countdown:answer_key")}


# --------------------------------------------------------------------------- reading files


@dataclass(frozen=True)
class ReadResult:
    tasks: tuple[Task, ...]
    skipped: int = 0
    errors: tuple[str, ...] = field(default_factory=tuple)  # messages of skipped lines


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _BadRecord(f"not valid UTF-8 (byte {e.start + 1})") from None


def _parse_line(line: str, parser: Callable[[dict], Task]) -> Task:
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as e:
        raise _BadRecord(f"invalid JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(rec, dict):
        raise _BadRecord(f"expected a JSON object, got {type(rec).__name__}")
    return parser(rec)


def read_jsonl(
    path: str | os.PathLike, format: str = "math", *, skip_bad: bool = False
) -> ReadResult:
    """Parse every non-blank line of `path` into a `Task` (see the module docstring)."""
    if format not in PARSERS:
        raise ValueError(f"unknown JSONL format {format!r}; valid formats: {sorted(PARSERS)}")
    path = os.fspath(path)
    tasks, errors = [], []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                tasks.append(_parse_line(_decode(raw), PARSERS[format]))
            except _BadRecord as e:
                if not skip_bad:
                    raise JsonlError(path, lineno, str(e)) from None
                errors.append(str(JsonlError(path, lineno, str(e))))
    return ReadResult(tuple(tasks), len(errors), tuple(errors))


# --------------------------------------------------------------------------- the env


@dataclass(frozen=True)
class JsonlConfig:
    path: str = ""
    format: str = "math"
    eval_path: str | None = None  # eval file; else a seeded split of `path`
    n_eval: int = 0  # size of that split when eval_path is None
    seed: int = 0
    skip_bad: bool = False
    template: str = "r1_zero"

    def __post_init__(self) -> None:
        if not self.path:
            raise ValueError("jsonl env: 'path' is required")
        if self.format not in PARSERS:
            raise ValueError(
                f"jsonl env: unknown format {self.format!r}; valid formats: {sorted(PARSERS)}"
            )


def _dedupe(tasks: tuple[Task, ...], exclude: set[str] = frozenset()) -> tuple[Task, ...]:
    seen, out = set(exclude), []
    for t in tasks:
        if t.prompt not in seen:
            seen.add(t.prompt)
            out.append(t)
    return tuple(out)


def build(cfg: JsonlConfig) -> TaskSet:
    """Train/eval from files; duplicate prompts are dropped and train never repeats an eval one."""
    pool = _dedupe(read_jsonl(cfg.path, cfg.format, skip_bad=cfg.skip_bad).tasks)
    if cfg.eval_path:
        eval_ = _dedupe(read_jsonl(cfg.eval_path, cfg.format, skip_bad=cfg.skip_bad).tasks)
        train = _dedupe(pool, {t.prompt for t in eval_})
    else:
        train, eval_ = shuffle_split(pool, cfg.n_eval, cfg.seed)
    stem = os.path.splitext(os.path.basename(cfg.path))[0]
    return TaskSet(
        f"jsonl:{stem}",
        with_ids(train, stem, "train"),
        with_ids(eval_, stem, "eval"),
        dict(REWARDS[cfg.format]),
        cfg.template,
        cfg,
        accuracy=next(iter(REWARDS[cfg.format])),
        vote=VOTES.get(cfg.format, MATH_VOTE),
    )


ENV = EnvSpec(config=JsonlConfig, build=build)
