"""Reward contract and weighted composition with per-component output.

A reward is a plain callable `(completions: list[str], tasks: list[Task]) -> list[float]`; one
that isolates its own per-sample failures may return `Scores` (a list that also counts errors
and timeouts). `ComposedReward` runs named rewards, keeps every raw component for logging and
ablation, and forms the weighted total, optionally gated. One crashing reward never stops a
batch: it is retried one sample at a time, and each sample that raises, times out or scores a
non-finite number gets `error_value` and is counted (`errors` / `timeouts`) and logged. A
reward returning the wrong number of scores is a bug in it and raises `ValueError`.

What this module deliberately does not do: enforce wall-clock limits (a Python thread cannot be
killed safely, so rewards that run untrusted work, like `rewards.code`, bound their own time and
report `Scores.timeouts`), normalise rewards, or compute advantages.
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for annotations: rewards never need envs at import time
    from envs.base import Task

log = logging.getLogger(__name__)

RewardFn = Callable[[list[str], list["Task"]], list[float]]


class Scores(list):
    """A list of floats that also counts per-sample `errors` and `timeouts` inside a reward."""

    def __init__(self, values=(), *, errors: int = 0, timeouts: int = 0):
        super().__init__(float(v) for v in values)
        self.errors = int(errors)
        self.timeouts = int(timeouts)


@dataclass
class RewardOutput:
    """What a composed reward returns for one batch of B completions.

    `total[i]` = sum over components c of `weights[c] * components[c][i]`, where a gated component
    contributes 0 at samples whose gate score is not > 0 (see `ComposedReward`).
    `components` are the raw, unweighted, ungated scores, one list of B floats per name.
    """

    total: list[float]
    components: dict[str, list[float]]
    weights: dict[str, float]
    errors: dict[str, int] = field(default_factory=dict)
    timeouts: dict[str, int] = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        """Flat namespaced floats: `reward/<name>/{mean,std,errors,timeouts}`, `reward/total/*`.

        Means and stds of an empty batch are NaN (undefined), counts are 0.
        """
        out: dict[str, float] = {}
        for name, values in self.components.items():
            out[f"reward/{name}/mean"], out[f"reward/{name}/std"] = _mean_std(values)
            out[f"reward/{name}/errors"] = float(self.errors.get(name, 0))
            out[f"reward/{name}/timeouts"] = float(self.timeouts.get(name, 0))
        out["reward/total/mean"], out["reward/total/std"] = _mean_std(self.total)
        return out


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Population mean and standard deviation; (nan, nan) for an empty list."""
    if not values:
        return math.nan, math.nan
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


@dataclass
class _Run:
    """Scores of one component over a batch, with its failure counts and first failure."""

    scores: list[float]
    errors: int = 0
    timeouts: int = 0
    first_failure: str = ""

    def fail(self, i: int, exc: BaseException | str, value: float) -> None:
        self.scores[i] = value
        if isinstance(exc, TimeoutError):
            self.timeouts += 1
        else:
            self.errors += 1
        if not self.first_failure:
            text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
            self.first_failure = f"sample {i}: {text}"[:300]


class ComposedReward:
    """Weighted sum of named rewards that returns every component.

    `components`: name -> (reward function, weight). Weights must be finite; a weight of 0 keeps
    a component for logging (or as a pure gate) without affecting the total.

    Gating rule: if `gate` names a component, then for every sample i, each component listed in
    `gated` (default: every component except the gate itself) contributes
    `weight * score` to `total[i]` only if `components[gate][i] > 0`, and 0 otherwise. The gate
    itself always contributes `weight_gate * gate_score`. A gate sample that errored scores
    `error_value`, so with the default 0.0 it closes the gate. Caveat: if a gated reward can be
    negative (e.g. -1 for a wrong answer), a closed gate (0) beats a wrong answer with valid
    format; give such rewards a gate-compatible scale or do not gate them.

    `error_value`: score given to a sample on which a component raised, timed out or returned a
    non-finite number (default 0.0, i.e. "no credit", counted in `errors`/`timeouts`).
    """

    def __init__(
        self,
        components: dict[str, tuple[RewardFn, float]],
        gate: str | None = None,
        gated: tuple[str, ...] | None = None,
        error_value: float = 0.0,
    ):
        if not components:
            raise ValueError("ComposedReward: needs at least one component")
        for name, pair in components.items():
            if not (isinstance(pair, tuple) and len(pair) == 2 and callable(pair[0])):
                raise ValueError(
                    f"ComposedReward: component {name!r} must be (callable, weight), got {pair!r}"
                )
            if not _is_finite_number(pair[1]):
                raise ValueError(
                    f"ComposedReward: weight of {name!r} must be a finite number, got {pair[1]!r}"
                )
        if gate is not None and gate not in components:
            raise ValueError(
                f"ComposedReward: gate {gate!r} is not a component;"
                f" components are {sorted(components)}"
            )
        if gated is None:
            gated = tuple(n for n in components if n != gate) if gate is not None else ()
        unknown = [n for n in gated if n not in components]
        if unknown:
            raise ValueError(
                f"ComposedReward: gated names {unknown} are not components;"
                f" components are {sorted(components)}"
            )
        if gated and gate is None:
            raise ValueError(f"ComposedReward: gated={list(gated)} needs a gate component")
        if gate in gated:
            raise ValueError(f"ComposedReward: the gate {gate!r} cannot gate itself")
        self.fns = {n: fn for n, (fn, _) in components.items()}
        self.weights = {n: float(w) for n, (_, w) in components.items()}
        self.gate, self.gated = gate, tuple(gated)
        self.error_value = float(error_value)

    def __call__(self, completions: list[str], tasks: list[Task]) -> RewardOutput:
        if len(completions) != len(tasks):
            raise ValueError(
                f"ComposedReward: {len(completions)} completions but"
                f" {len(tasks)} tasks; they must pair one to one"
            )
        runs = {
            n: _run_component(n, fn, completions, tasks, self.error_value)
            for n, fn in self.fns.items()
        }
        comps = {n: r.scores for n, r in runs.items()}
        return RewardOutput(
            total=self._total(comps, len(completions)),
            components=comps,
            weights=dict(self.weights),
            errors={n: r.errors for n, r in runs.items()},
            timeouts={n: r.timeouts for n, r in runs.items()},
        )

    def _total(self, comps: dict[str, list[float]], n: int) -> list[float]:
        open_ = [comps[self.gate][i] > 0 for i in range(n)] if self.gate else [True] * n
        total = [0.0] * n
        for name, scores in comps.items():
            w, is_gated = self.weights[name], name in self.gated
            for i, s in enumerate(scores):
                if open_[i] or not is_gated:
                    total[i] += w * s
        return total


def _run_component(
    name: str, fn: RewardFn, completions: list[str], tasks: list[Task], error_value: float
) -> _Run:
    """Score the batch with one reward, isolating raising samples by per-sample retry."""
    n = len(completions)
    try:
        raw = fn(completions, tasks)
    except Exception as exc:
        log.debug("reward %r raised on the batch (%r); retrying per sample", name, exc)
        run = _run_per_sample(name, fn, completions, tasks, error_value)
    else:
        run = _Run(scores=[error_value] * n)
        _take(name, raw, n, run, 0, error_value)
    if run.errors or run.timeouts:
        log.warning(
            "reward %r: %d error(s), %d timeout(s) in a batch of %d; first: %s",
            name,
            run.errors,
            run.timeouts,
            n,
            run.first_failure or "reported by reward",
        )
    return run


def _run_per_sample(
    name: str, fn: RewardFn, completions: list[str], tasks: list[Task], error_value: float
) -> _Run:
    run = _Run(scores=[error_value] * len(completions))
    for i, (c, t) in enumerate(zip(completions, tasks)):
        try:
            raw = fn([c], [t])
        except Exception as exc:
            run.fail(i, exc, error_value)
            continue
        _take(name, raw, 1, run, i, error_value)
    return run


def _take(name: str, raw, expected: int, run: _Run, offset: int, error_value: float) -> None:
    """Copy `raw` (a reward's return value) into `run.scores[offset:]`, checking it."""
    try:
        count = len(raw)
    except TypeError:
        raise ValueError(
            f"reward {name!r} returned {type(raw).__name__}, not a list of floats"
        ) from None
    if count != expected:
        raise ValueError(f"reward {name!r} returned {count} scores for {expected} completion(s)")
    run.errors += int(getattr(raw, "errors", 0))
    run.timeouts += int(getattr(raw, "timeouts", 0))
    for j, value in enumerate(raw):
        if _is_finite_number(value):
            run.scores[offset + j] = float(value)
        else:
            run.fail(offset + j, f"non-finite or non-numeric score {value!r}", error_value)


def _is_finite_number(value) -> bool:
    """True for finite reals (bool, int, float, numpy scalars); False for NaN, inf, None, str."""
    return isinstance(value, numbers.Real) and math.isfinite(value)
