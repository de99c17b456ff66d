"""Reward audit: every registered reward against the adversarial suite (`rewards.audit_suite`).

`run_audit(rewards=None) -> AuditReport` builds each reward as the scorer does
(`rewards.registry.build_composed`, so a crashing sample scores the error value and is counted),
scores its family's probes, and records per attack class how many probes it accepted (score >=
the reward's `accept_at`). A reward fails the audit when it accepts any probe of a class it must
reject, rejects any control, cannot be built, or has no entry in `AUDITS` ("no cases": every
registered reward must be covered). `format_table` renders reward × class accept counts;
`AuditReport.to_dict` is the machine-readable form; `exit_code` is 0 when nothing failed, else 1.
Not here: grader agreement (`rewards.grader_agreement`), the command line (`experiments.audit`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from rewards.audit_suite import AUDITS, CLASSES, FAMILIES, Probe, RewardAudit
from rewards.registry import build_composed, reward_names

MAX_EXAMPLE_CHARS = 120


@dataclass
class Cell:
    """One reward on one attack class: `accepted` of `total` probes; `required` is "accept"
    (the control), "reject" (a known-bad class) or "" (shown only)."""

    accepted: int = 0
    total: int = 0
    required: str = ""
    accepted_examples: list[str] = field(default_factory=list)
    rejected_examples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        if self.required == "reject":
            return self.accepted == 0
        if self.required == "accept":
            return self.total > 0 and self.accepted == self.total
        return True


@dataclass
class RewardResult:
    name: str
    family: str | None
    cells: dict[str, Cell] = field(default_factory=dict)
    error: str | None = None  # "no cases", or why the reward could not be built or run

    @property
    def failures(self) -> list[str]:
        """One line per failed requirement, naming the reward, the class and an example."""
        if self.error:
            return [f"{self.name}: {self.error}"]
        out = []
        for attack, cell in self.cells.items():
            if cell.ok:
                continue
            if cell.required == "reject":
                out.append(
                    f"{self.name} accepts known-bad {attack} ({cell.accepted}/{cell.total}),"
                    f" e.g. {cell.accepted_examples[0]}"
                )
            else:
                example = cell.rejected_examples[0] if cell.rejected_examples else "no probe"
                out.append(
                    f"{self.name} rejects its control ({cell.total - cell.accepted}/"
                    f"{cell.total}), e.g. {example}"
                )
        return out


@dataclass
class AuditReport:
    results: list[RewardResult]

    @property
    def failures(self) -> list[str]:
        return [line for r in self.results for line in r.failures]

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0

    def to_dict(self) -> dict:
        return {
            "classes": dict(CLASSES),
            "rewards": {
                r.name: {
                    "family": r.family,
                    "error": r.error,
                    "cells": {
                        a: {
                            "accepted": c.accepted,
                            "total": c.total,
                            "required": c.required,
                            "ok": c.ok,
                            "accepted_examples": c.accepted_examples,
                        }
                        for a, c in r.cells.items()
                    },
                }
                for r in self.results
            },
            "failures": self.failures,
            "exit_code": self.exit_code,
        }


def _example(probe: Probe) -> str:
    text = probe.completion.replace("\n", "\\n")
    if len(text) > MAX_EXAMPLE_CHARS:
        text = text[: MAX_EXAMPLE_CHARS // 2] + " … " + text[-MAX_EXAMPLE_CHARS // 2 :]
    gold = f" (gold {probe.task.answer})" if probe.task.answer is not None else ""
    return repr(text) + gold


def audit_reward(name: str, audit: RewardAudit | None) -> RewardResult:
    """Score `name` on its family's probes; never raises for a reward's own failure."""
    if audit is None:
        return RewardResult(name, None, error="no cases (add it to rewards.audit_suite.AUDITS)")
    result = RewardResult(name, audit.family)
    probes = FAMILIES[audit.family]()
    try:
        reward = build_composed({name: {"weight": 1.0, **audit.options}})
        scores = reward([p.completion for p in probes], [p.task for p in probes])
        values = scores.components[name]
    except Exception as exc:  # a reward that cannot be built or run fails its audit
        result.error = f"could not be scored: {type(exc).__name__}: {exc}"
        return result
    for probe, value in zip(probes, values):
        required = (
            "accept"
            if probe.attack == "control"
            else "reject"
            if probe.attack in audit.must_reject
            else ""
        )
        cell = result.cells.setdefault(probe.attack, Cell(required=required))
        cell.total += 1
        if value >= audit.accept_at:
            cell.accepted += 1
            cell.accepted_examples.append(_example(probe))
        else:
            cell.rejected_examples.append(_example(probe))
    return result


def run_audit(
    rewards: Iterable[str] | None = None, audits: dict[str, RewardAudit] | None = None
) -> AuditReport:
    """Audit `rewards` (default: every registered reward) with `audits` (default: `AUDITS`)."""
    audits = AUDITS if audits is None else audits
    names = list(rewards) if rewards is not None else reward_names()
    unknown = sorted(set(names) - set(reward_names()))
    if unknown:
        raise ValueError(f"unknown reward(s) {unknown}; registered: {reward_names()}")
    return AuditReport([audit_reward(n, audits.get(n)) for n in names])


def _cell_text(cell: Cell | None) -> str:
    if cell is None:
        return "-"
    text = f"{cell.accepted}/{cell.total}"
    if cell.required:
        text += " ok" if cell.ok else " BAD"
    return text


def format_table(report: AuditReport) -> str:
    """Attack classes as rows, rewards as columns; each cell `accepted/total`, with "ok"/"BAD"
    where the suite requires an outcome (accept the control, reject a known-bad class)."""
    widths = [max(len(r.name), 7) + 2 for r in report.results]
    seen = {a for r in report.results for a in r.cells}
    rows = [a for a in CLASSES if a in seen]
    head = "attack class".ljust(16) + "".join(
        r.name.rjust(w) for r, w in zip(report.results, widths)
    )
    lines = [head, "-" * len(head)]
    for attack in rows:
        cells = [_cell_text(r.cells.get(attack)).rjust(w) for r, w in zip(report.results, widths)]
        lines.append(attack.ljust(16) + "".join(cells))
    for r in report.results:
        if r.error:
            lines.append(f"{r.name}: {r.error}")
    lines += [
        "",
        "cells: probes accepted/probes run; 'ok'/'BAD' where the suite requires an outcome",
        "(control: all accepted; known-bad class: none accepted); '-': no probe of that class.",
    ]
    return "\n".join(lines)
