"""Grader-vs-grader agreement: rlreason's math checker against math-verify on built-in pairs.

`PAIRS` are (family, predicted answer, gold, expected verdict), the expected verdict our own
reading of the pair (decimals: the rounding policy of `rewards.math.compare.decimal_matches`).
Both graders see the same completion, `<think>…</think><answer>\\boxed{pred}</answer>`:
rlreason through `math_reward` (strict extraction, the training default), math-verify through
`parse` / `verify` with its default extraction (the gold wrapped in `$…$`).
math-verify runs in another interpreter as a subprocess speaking JSON lines (`MV_SCRIPT`), never
imported here: its `latex2sympy2_extended` needs an antlr4 that breaks hydra's in this venv.
`find_math_verify(python)` picks the interpreter (the given one, else this one when
`math_verify` is importable here, else none); `compare(python)` returns an `Agreement`.
Not here: deciding which grader is right beyond `expected`, or grading anything.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from dataclasses import dataclass, field

from envs.base import Task
from rewards.math import math_reward

TIMEOUT_S = 300.0  # for the whole math-verify run (its own per-pair timeouts are 5 s)

PAIRS: list[tuple[str, str, str, bool]] = [
    ("integers", "6", "6", True),
    ("integers", "7", "6", False),
    ("integers", "6.0", "6", True),
    ("integers", "-3", "-3", True),
    ("fractions", "\\frac{1}{2}", "0.5", True),
    ("fractions", "1/2", "\\frac12", True),
    ("fractions", "\\frac{2}{4}", "\\frac{1}{2}", True),
    ("fractions", "2\\frac{1}{3}", "\\frac{7}{3}", True),
    ("symbolic", "2\\sqrt{3}", "\\sqrt{12}", True),
    ("symbolic", "x^2+2x+1", "(x+1)^2", True),
    ("symbolic", "\\frac{\\pi}{2}", "\\pi/2", True),
    ("symbolic", "\\sin^2 x+\\cos^2 x", "1", True),
    ("rounding", "\\sqrt{2}", "1.41", True),
    ("rounding", "0.333", "\\frac{1}{3}", True),
    ("rounding", "0.33", "\\frac{1}{3}", False),
    ("sets and tuples", "\\{1,2\\}", "\\{2,1\\}", True),
    ("sets and tuples", "(1,2)", "(2,1)", False),
    ("sets and tuples", "1, 2", "\\{1, 2\\}", True),
    ("intervals", "[0,1)", "[0,1)", True),
    ("intervals", "(0,1]", "[0,1]", False),
    ("intervals", "(-\\infty, 3]", "(-\\infty,3]", True),
    ("percent and degrees", "50\\%", "50", True),
    ("percent and degrees", "90^\\circ", "90", True),
    ("units", "5\\text{ cm}", "5", True),
    ("units", "5\\text{ cm}", "5\\text{ m}", False),
    ("units", "18 \\text{ clips}", "18", True),
    ("hedges", "6 \\text{ or } 7", "6", False),
    ("hedges", "6, 7", "6", False),
    ("hedges", "6 \\pm 1", "6", False),
    ("hedges", "[5,7]", "6", False),
    ("juxtaposed", "2 3", "6", False),
    ("juxtaposed", "1 000", "0", False),
    ("juxtaposed", "1\\,000", "1000", True),
    ("juxtaposed", "\\frac{12}{2} 7", "42", False),
    ("equations", "x=5", "5", True),
    ("equations", "y=2x+1", "y = 2x+1", True),
    ("equations", "x=2", "3", False),
    ("huge numbers", "10^{10000}", "10^{10000}", True),
    ("huge numbers", "10^{10000}+1", "10^{10000}", False),
    ("scientific", "1.5\\times10^{3}", "1500", True),
    ("infinity", "\\infty", "\\infty", True),
    ("infinity", "-\\infty", "\\infty", False),
    ("text answers", "\\text{east}", "\\text{East}", True),
]

MV_SCRIPT = """
import json, sys
from math_verify import parse, verify
for line in sys.stdin:
    job = json.loads(line)
    try:
        gold = parse(job["gold"])
        pred = parse(job["pred"])
        out = {"id": job["id"], "equal": bool(verify(gold, pred))}
    except Exception as exc:
        why = (type(exc).__name__ + ": " + str(exc))[:200]
        out = {"id": job["id"], "equal": False, "error": why}
    print(json.dumps(out), flush=True)
"""


@dataclass
class Agreement:
    """Verdicts of both graders; `skipped` says why math-verify did not run (then no counts)."""

    interpreter: str | None = None
    skipped: str | None = None
    rows: list[dict] = field(default_factory=list)

    @property
    def agreed(self) -> int:
        return sum(r["rlreason"] == r["math_verify"] for r in self.rows)

    def disagreements(self) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {}
        for r in self.rows:
            if r["rlreason"] != r["math_verify"]:
                out.setdefault(r["family"], []).append(r)
        return out

    def to_dict(self) -> dict:
        if self.skipped:
            return {"skipped": self.skipped}
        return {
            "interpreter": self.interpreter,
            "pairs": len(self.rows),
            "agreed": self.agreed,
            "agreement": self.agreed / len(self.rows) if self.rows else None,
            "rlreason_matches_expected": sum(r["rlreason"] == r["expected"] for r in self.rows),
            "math_verify_matches_expected": sum(
                r["math_verify"] == r["expected"] for r in self.rows
            ),
            "disagreements": self.disagreements(),
        }

    def format(self) -> str:
        if self.skipped:
            return f"grader agreement: skipped ({self.skipped})"
        d = self.to_dict()
        lines = [
            f"grader agreement with math-verify ({self.interpreter}): {d['agreed']}/{d['pairs']}"
            f" = {100 * d['agreement']:.1f}%; matching the expected verdict: rlreason"
            f" {d['rlreason_matches_expected']}/{d['pairs']}, math-verify"
            f" {d['math_verify_matches_expected']}/{d['pairs']}"
        ]
        for family, rows in d["disagreements"].items():
            lines.append(f"  {family}:")
            for r in rows:
                lines.append(
                    f"    {r['pred']!r} vs gold {r['gold']!r}: rlreason={r['rlreason']}"
                    f" math-verify={r['math_verify']} expected={r['expected']}"
                    + (f" ({r['error']})" if r.get("error") else "")
                )
        return "\n".join(lines)


def completion_of(pred: str) -> str:
    return f"<think>Working.</think><answer>\\boxed{{{pred}}}</answer>"


def _has_math_verify(python: str) -> bool:
    try:
        run = subprocess.run(
            [python, "-c", "import math_verify"], capture_output=True, timeout=120, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return run.returncode == 0


def find_math_verify(python: str | None = None) -> tuple[str | None, str]:
    """(interpreter that has math_verify, "") or (None, why there is none)."""
    if python:
        if _has_math_verify(python):
            return python, ""
        return None, f"{python} cannot import math_verify"
    if importlib.util.find_spec("math_verify") is not None:
        return sys.executable, ""
    return None, "math_verify is not importable here; point --math-verify-python at one that has it"


def _math_verify_verdicts(python: str) -> list[dict]:
    jobs = [
        {"id": i, "pred": completion_of(pred), "gold": gold if "\\boxed" in gold else f"${gold}$"}
        for i, (_, pred, gold, _) in enumerate(PAIRS)
    ]
    run = subprocess.run(
        [python, "-c", MV_SCRIPT],
        input="".join(json.dumps(j) + "\n" for j in jobs),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    replies = {}
    for line in run.stdout.splitlines():
        try:
            reply = json.loads(line)
            replies[reply["id"]] = reply
        except (ValueError, KeyError, TypeError):
            continue
    if len(replies) < len(jobs):
        tail = run.stderr.strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"math-verify answered {len(replies)}/{len(jobs)} pairs: {tail[0]}")
    return [replies[i] for i in range(len(jobs))]


def compare(python: str | None = None) -> Agreement:
    """Both graders on `PAIRS`; a skipped `Agreement` when no math-verify interpreter is found
    or it fails to answer."""
    interpreter, why = find_math_verify(python)
    if interpreter is None:
        return Agreement(skipped=why)
    try:
        theirs = _math_verify_verdicts(interpreter)
    except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
        return Agreement(interpreter, skipped=f"math-verify failed: {exc}")
    ours = math_reward(
        [completion_of(p) for _, p, _, _ in PAIRS], [Task("", g) for _, _, g, _ in PAIRS]
    )
    rows = [
        {
            "family": family,
            "pred": pred,
            "gold": gold,
            "expected": expected,
            "rlreason": score >= 1.0,
            "math_verify": reply["equal"],
            **({"error": reply["error"]} if "error" in reply else {}),
        }
        for (family, pred, gold, expected), score, reply in zip(PAIRS, ours, theirs)
    ]
    return Agreement(interpreter, rows=rows)
