"""`rlreason-report`: the cross-run ablation report, runs grouped into arms by their configs.

`rlreason-report RUN_DIRS… [--out DIR] [--target 0.9]` groups runs into arms by their resolved
configs with the seed (and bookkeeping: `log.*`, `train.resume`, …) removed; an arm's label lists
the keys whose values differ between runs, e.g. `reward.format.weight=0.0`. Per arm it draws the
mean curve across seeds with a 95% Student-t interval (seeds as independent replicates; no band
where fewer than two seeds have a value) and writes `comparison.md` + `comparison.json`: final
held-out greedy accuracy (mean +- CI half-width), final sampled pass@1, steps to reach the target
(first eval step at or above it, averaged over the seeds that reach it, with the count that never
do), final format rate and length. "Final" is a run's last finite value of the metric, so an
interrupted run contributes its last eval.

Not here: reading runs (`runs.py`), one run's report (`run_report.py`), curves and drawing
(`plots.py`); significance tests between arms; W&B reports.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from experiments.report.plots import (
    CI_METHOD,
    COMPARE_PLOTS,
    Curve,
    arm_curve,
    draw_specs,
    last_value,
    mean_ci,
    steps_to_target,
)
from experiments.report.run_report import _md
from experiments.report.runs import ReportError, Run, find_runs, last_step, load_run

FINAL_KEYS = (
    "eval/greedy_acc",
    "eval/pass@1",
    "eval/format_rate",
    "eval/length_mean",
    "eval/think_rate",
)
IGNORED_KEYS = ("seed", "log", "train.resume", "train.stop_after", "train.progress", "model.device")
MISSING = "(unset)"  # arm label value of a key that some runs' configs lack


# ---------------------------------------------------------------------------- arms across runs
def _show(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v)  # 0.1, null, true, [1, 2]


def _ignored(key: str, ignore: tuple[str, ...]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in ignore)


@dataclass
class Arm:
    label: str
    settings: dict[str, str]  # the keys that differ between arms, with this arm's values
    runs: list[Run]


def group_arms(runs: list[Run], ignore: tuple[str, ...] = IGNORED_KEYS) -> list[Arm]:
    """Runs whose configs agree outside `ignore` form one arm; labels list the differing keys."""
    keys = sorted({k for r in runs for k in r.config if not _ignored(k, ignore)})
    shown = [{k: _show(r.config[k]) if k in r.config else MISSING for k in keys} for r in runs]
    differ = [k for k in keys if len({s[k] for s in shown}) > 1]
    groups: dict[tuple[str, ...], list[Run]] = {}
    for run, s in zip(runs, shown):
        groups.setdefault(tuple(s[k] for k in differ), []).append(run)
    fallback = _show(runs[0].config.get("name", "all runs")) if runs else "all runs"
    arms = [
        Arm(
            ", ".join(f"{k}={v}" for k, v in zip(differ, sig)) or fallback,
            dict(zip(differ, sig)),
            rs,
        )
        for sig, rs in groups.items()
    ]
    return sorted(arms, key=lambda a: a.label)


def _stat(values: list[float]) -> dict:
    mean, half, n = mean_ci(values)
    return {"mean": mean, "ci": half, "n": n, "values": values}


def arm_summary(arm: Arm, target: float, metric: str) -> dict:
    steps = [steps_to_target(r.metrics.get(metric), target) for r in arm.runs]
    reached = [s for s in steps if s is not None]
    return {
        "label": arm.label,
        "settings": arm.settings,
        "n": len(arm.runs),
        "seeds": [r.config.get("seed") for r in arm.runs],
        "runs": [str(r.path) for r in arm.runs],
        "last_step": [last_step(r) for r in arm.runs],
        "final": {k: _stat([last_value(r.metrics.get(k)) for r in arm.runs]) for k in FINAL_KEYS},
        "steps_to_target": {
            "mean": float(np.mean(reached)) if reached else math.nan,
            "reached": len(reached),
            "never": len(steps) - len(reached),
            "values": steps,
        },
    }


def compare(arms: list[Arm], target: float = 0.9, metric: str = "eval/greedy_acc") -> dict:
    return {
        "target": target,
        "target_metric": metric,
        "interval": CI_METHOD,
        "arms": [arm_summary(a, target, metric) for a in arms],
    }


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None  # strict JSON has no NaN
    return x.item() if isinstance(x, np.generic) else x


def _pm(stat: dict, digits: int = 3) -> str:
    if not math.isfinite(stat["mean"]):
        return "n/a"
    ci = f" ± {stat['ci']:.{digits}f}" if math.isfinite(stat["ci"]) else ""
    return f"{stat['mean']:.{digits}f}{ci}"


def comparison_markdown(result: dict, drawn: list, notes: list[str]) -> str:
    t, arms = result["target"], result["arms"]
    lines = [
        f"# Comparison: {sum(a['n'] for a in arms)} runs in {len(arms)} arms",
        "",
        f"Intervals: {result['interval']} (no ± with one seed). Final = each run's last eval. "
        f"Steps to {t:g}: first eval step with `{result['target_metric']}` >= {t:g}, mean over the "
        "seeds that reach it.",
        "",
        f"| arm | seeds | final greedy acc | final sampled pass@1 | steps to {t:g} | format rate "
        "| length |",
        "|---|---|---|---|---|---|---|",
    ]
    for a in arms:
        f, st = a["final"], a["steps_to_target"]
        reach = f"{st['mean']:.0f} ({st['reached']}/{a['n']} reached)" if st["reached"] else "never"
        lines.append(
            f"| {a['label']} | {a['n']} | {_pm(f['eval/greedy_acc'])} | {_pm(f['eval/pass@1'])} | "
            f"{reach} | {_pm(f['eval/format_rate'])} | {_pm(f['eval/length_mean'], 1)} |"
        )
    lines += ["", "## Arms", ""]
    for a in arms:
        lines.append(
            f"- **{a['label']}**: "
            + "; ".join(
                f"seed {s}: `{p}` ({n} steps)"
                for s, p, n in zip(a["seeds"], a["runs"], a["last_step"])
            )
        )
    if drawn:
        lines += ["", "## Curves (mean across seeds, shaded: 95% t-interval)", ""]
        lines += [f"### {_md(spec.title)}\n\n![{spec.name}]({png})\n" for spec, png in drawn]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def default_out(runs: list[Run]) -> Path:
    """`comparison/` beside the runs: in the deepest folder that holds all of them."""
    return Path(os.path.commonpath([str(r.path.resolve().parent) for r in runs])) / "comparison"


def arm_curves(arms: list[Arm], key: str) -> list[Curve]:
    curves = [
        arm_curve([r.metrics[key] for r in a.runs if key in r.metrics], key, a.label) for a in arms
    ]
    return [c for c in curves if c is not None]


def write_comparison(
    paths: list[str | Path],
    out: Path | None = None,
    target: float = 0.9,
    metric: str = "eval/greedy_acc",
    ignore: tuple[str, ...] = IGNORED_KEYS,
    plots: bool = True,
) -> dict:
    """Load runs, group arms, write `comparison.md`, `comparison.json` and PNGs into `out`."""
    runs = [load_run(d) for d in find_runs(paths)]
    out = Path(out) if out else default_out(runs)
    arms = group_arms(runs, ignore)
    notes = [n for r in runs for n in r.notes]
    for a in arms:
        seeds = [r.config.get("seed") for r in a.runs]
        if len(set(map(str, seeds))) < len(seeds):
            notes.append(
                f"arm `{a.label}` holds the same seed twice ({seeds}): duplicate or resumed copy?"
            )
    if not any(metric in r.metrics for r in runs):
        notes.append(f"no run logged `{metric}`, so no run can reach the target (--metric typo?)")
    result = {**compare(arms, target, metric), "out": str(out)}
    out.mkdir(parents=True, exist_ok=True)
    drawn = []
    if plots:
        drawn = draw_specs(COMPARE_PLOTS, lambda spec: arm_curves(arms, spec.keys[0]), out, notes)
    (out / "comparison.json").write_text(json.dumps(_jsonable(result), indent=1), encoding="utf-8")
    (out / "comparison.md").write_text(comparison_markdown(result, drawn, notes), encoding="utf-8")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="rlreason-report",
        description="Compare runs (e.g. the arms of a reward ablation x seeds): "
        "mean curves with a 95%% t-interval across seeds, comparison.md and comparison.json.",
    )
    parser.add_argument("runs", nargs="+", help="run directories, or folders to search for them")
    parser.add_argument(
        "--out", type=Path, help="output folder (default: comparison/ beside the runs)"
    )
    parser.add_argument("--target", type=float, default=0.9, help="accuracy for 'steps to target'")
    parser.add_argument("--metric", default="eval/greedy_acc", help="metric compared with --target")
    parser.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="KEY",
        help="config key (or prefix) that does not define an arm; repeatable",
    )
    parser.add_argument("--no-plots", action="store_true", help="tables only")
    args = parser.parse_args(argv)
    try:
        result = write_comparison(
            args.runs,
            args.out,
            args.target,
            args.metric,
            IGNORED_KEYS + tuple(args.ignore),
            plots=not args.no_plots,
        )
    except ReportError as e:
        print(f"[rlreason-report] {e}", file=sys.stderr)
        return 2
    for a in result["arms"]:
        print(
            f"[rlreason-report] {a['label']}: {a['n']} runs, final greedy acc "
            f"{_pm(a['final']['eval/greedy_acc'])}"
        )
    print(f"[rlreason-report] wrote {result['out']}/comparison.md")
    from experiments.report.routes import write_routes_comparison

    if write_routes_comparison(args.runs, Path(result["out"])) is not None:
        print(f"[rlreason-report] wrote {result['out']}/routes_comparison.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
