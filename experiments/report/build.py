"""Run reports (`report.md` + plots in every run directory) and `rlreason-report`, the cross-run
ablation report.

`write_report(run_dir)` runs at the end of every training run (experiments/report/summary.py). It reads
`metrics.jsonl`, `summary.json` and writes `report.md` with the before/after table, the time split,
the collapse alarms and PNGs under `plots/`: held-out accuracy (greedy and sampled), reward
components, format rate, response length, think rate, KL, entropy, learning rate. Training curves
are drawn raw (faint) and lightly smoothed; eval curves carry the evaluation's own bootstrap band
over problems (`_lo`/`_hi`). A plot whose data is absent is skipped and named; a plot that fails
is reported in `report.md` and on stderr: a report never crashes a finished run.

`rlreason-report RUN_DIRS… [--out DIR] [--target 0.9]` groups runs into arms by their resolved
configs with the seed (and bookkeeping: `log.*`, `train.resume`, …) removed; an arm's label lists
the keys whose values differ between runs, e.g. `reward.format.weight=0.0`. Per arm it draws the
mean curve across seeds with a 95% Student-t interval (mean +- t(0.975, n-1) * s / sqrt(n), seeds
taken as independent replicates; no band where fewer than two seeds have a value) and writes
`comparison.md` + `comparison.json`: final held-out greedy accuracy (mean +- CI half-width), final
sampled pass@1, steps to reach the target (first eval step at or above it, averaged over the
seeds that reach it, with the count that never do), final format rate and length. "Final" is a
run's last finite value of the metric, so an interrupted run contributes its last eval.

Not here: curves, their statistics and drawing (experiments/report_plots.py); significance tests
between arms; W&B reports.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from experiments.report.plots import (
    CI_METHOD,
    COMPARE_PLOTS,
    RUN_PLOTS,
    Curve,
    Series,
    arm_curve,
    draw_specs,
    last_value,
    mean_ci,
    run_curves,
    steps_to_target,
)

TABLE_KEYS = (
    ("greedy accuracy", "eval/greedy_acc"),
    ("sampled accuracy (pass@1)", "eval/pass@1"),
    ("format rate", "eval/format_rate"),
    ("think rate", "eval/think_rate"),
    ("response length", "eval/length_mean"),
)


class ReportError(ValueError):
    """Bad input to a report (missing run directory, unreadable config); the message says which."""


FINAL_KEYS = (
    "eval/greedy_acc",
    "eval/pass@1",
    "eval/format_rate",
    "eval/length_mean",
    "eval/think_rate",
)
IGNORED_KEYS = ("seed", "log", "train.resume", "train.stop_after", "train.progress", "model.device")
MISSING = "(unset)"  # arm label value of a key that some runs' configs lack


# ---------------------------------------------------------------------------- reading runs
def _number(v) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        return None
    try:
        return float(v)  # "nan", "inf", "-inf" as the JSONL logger writes them
    except ValueError:
        return None


def read_metrics(path: Path, notes: list[str] | None = None) -> dict[str, Series]:
    """Per-key series from a metrics.jsonl; a later row wins a repeated step (resumed runs)."""
    by_key: dict[str, dict[int, float]] = {}
    text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if not isinstance(row, dict) or not isinstance(row.get("step"), int):
            if notes is not None:
                notes.append(f"{path}:{lineno}: not a JSON object with an integer step; skipped")
            continue
        for key, value in row.items():
            x = _number(value)
            if key != "step" and x is not None:
                by_key.setdefault(key, {})[row["step"]] = x
    return {
        k: Series(
            np.array(sorted(d), dtype=float), np.array([d[s] for s in sorted(d)], dtype=float)
        )
        for k, d in by_key.items()
    }


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists stay values."""
    if not isinstance(tree, dict):
        return {prefix: tree} if prefix else {}
    out: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        out.update(flatten(v, key) if isinstance(v, dict) and v else {key: v})
    return out


def _read_json(path: Path, notes: list[str]) -> dict:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        notes.append(f"{path}: unreadable ({e}); ignored")
        return {}
    return data if isinstance(data, dict) else {}


def read_config(run_dir: Path) -> dict[str, Any]:
    import yaml

    path = run_dir / "config.yaml"
    if not path.is_file():
        raise ReportError(
            f"{run_dir}: no config.yaml, so its arm cannot be told (not a run directory?)"
        )
    try:
        return flatten(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    except yaml.YAMLError as e:
        raise ReportError(f"{path}: not valid YAML: {e}") from e


@dataclass
class Run:
    path: Path
    metrics: dict[str, Series]
    summary: dict = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)  # flattened, dotted keys
    notes: list[str] = field(default_factory=list)


def load_run(run_dir: str | Path, require_config: bool = True) -> Run:
    """Metrics, summary and flattened config of a run; without `require_config` a missing one is {}."""
    path, notes = Path(run_dir), []
    metrics = read_metrics(path / "metrics.jsonl", notes)
    config: dict[str, Any] = {}
    try:
        if require_config or (path / "config.yaml").is_file():
            config = read_config(path)
    except ReportError as e:
        if require_config:
            raise
        notes.append(str(e))
    return Run(path, metrics, _read_json(path / "summary.json", notes), config, notes)


def find_runs(paths: list[str | Path]) -> list[Path]:
    """Run directories (those with a metrics.jsonl) named directly or found under the given paths."""
    found: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise ReportError(f"{p}: no such run directory")
        inside = (
            [p]
            if (p / "metrics.jsonl").is_file()
            else sorted(f.parent for f in p.rglob("metrics.jsonl"))
        )
        if not inside:
            raise ReportError(f"{p}: no metrics.jsonl in it or below it (not a run directory?)")
        found += [d for d in inside if d not in found]
    return found


# ---------------------------------------------------------------------------- series helpers
def last_step(run: Run) -> int:
    return max((int(s.steps[-1]) for s in run.metrics.values() if len(s.steps)), default=0)


# ---------------------------------------------------------------------------- one run
def _fmt(v, digits: int = 3) -> str:
    ok = isinstance(v, (int, float)) and math.isfinite(v)
    return f"{v:.{digits}f}" if ok else "n/a"


def _md(text: str) -> str:
    return text.replace("<", "&lt;").replace(">", "&gt;")


def _first_last_eval(metrics: dict[str, Series], index: int) -> dict[str, float]:
    return {
        k: float(s.values[index])
        for k, s in metrics.items()
        if k.startswith("eval/") and len(s.values)
    }


def before_after_section(run: Run) -> list[str]:
    before = run.summary.get("before") or _first_last_eval(run.metrics, 0)
    after = run.summary.get("after") or _first_last_eval(run.metrics, -1)
    if not before and not after:
        return ["## Before / after", "", "No held-out evaluation was logged.", ""]
    extra = sorted(
        k
        for k in after
        if k.startswith(("eval/pass@", "eval/maj@")) and not k.endswith(("_lo", "_hi", "@1"))
    )
    rows = list(TABLE_KEYS) + [(k[5:], k) for k in extra]
    lines = [
        "## Before / after (held-out)",
        "",
        "| metric | before | after | change | after 95% CI |",
        "|---|---|---|---|---|",
    ]
    for label, key in rows:
        b, a = _number(before.get(key, math.nan)), _number(after.get(key, math.nan))
        ci = (
            f"[{_fmt(_number(after[key + '_lo']))}, {_fmt(_number(after[key + '_hi']))}]"
            if key + "_lo" in after and key + "_hi" in after
            else ""
        )
        change = a - b if a is not None and b is not None else None
        lines.append(f"| {label} | {_fmt(b)} | {_fmt(a)} | {_fmt(change)} | {ci} |")
    return lines + [""]


def time_section(run: Run) -> list[str]:
    seconds = {k: _number(v) for k, v in (run.summary.get("seconds") or {}).items()}
    wall = _number(run.summary.get("wall_seconds"))
    if not seconds:
        return []
    total = sum(v for v in seconds.values() if v) or math.nan
    lines = [
        "## Time split",
        "",
        f"Wall time {_fmt(wall, 1)} s.",
        "",
        "| phase | seconds | share |",
        "|---|---|---|",
    ]
    lines += [
        f"| {k} | {_fmt(v, 1)} | {_fmt(100 * (v or 0) / total, 1)}% |" for k, v in seconds.items()
    ]
    return lines + [""]


def alarms_section(run: Run) -> list[str]:
    alarms = run.summary.get("alarms")
    if alarms is None:  # no summary: the alarm/* metrics say when each condition first held
        alarms = [
            {"kind": k[6:], "step": step, "message": "(from metrics.jsonl)"}
            for k, s in sorted(run.metrics.items())
            if k.startswith("alarm/")
            for step in [steps_to_target(s, 0.5)]
            if step is not None
        ]
    if not alarms:
        return ["## Alarms", "", "No collapse alarm fired.", ""]
    return (
        ["## Alarms", ""]
        + [
            f"- step {a.get('step')}: **{a.get('kind')}**: {a.get('message', '')}"
            for a in alarms
            if isinstance(a, dict)
        ]
        + [""]
    )


def write_report(run_dir: str | Path) -> Path:
    """Write `report.md` and `plots/*.png` into a run directory; returns the report's path."""
    run = load_run(run_dir, require_config=False)
    name = run.config.get("name") or run.path.name
    step = run.summary.get("step", last_step(run))
    lines = [
        f"# Run report: {name}",
        "",
        f"Run directory `{run.path}`, {step} steps"
        + (" (interrupted)" if run.summary.get("interrupted") else "")
        + ".",
        "",
    ]
    if not run.metrics:
        lines += ["No metrics were logged (`metrics.jsonl` is missing or empty).", ""]
    notes = list(run.notes)
    for section in (before_after_section, time_section, alarms_section):
        try:
            lines += section(run)
        except Exception as e:  # an odd summary.json must not cost the finished run its report
            notes.append(f"section `{section.__name__}` failed: {type(e).__name__}: {e}")
    drawn = draw_specs(
        RUN_PLOTS, lambda spec: run_curves(run.metrics, spec), run.path / "plots", notes
    )
    if drawn:
        lines += [
            "## Curves",
            "",
            "Training curves: lightly smoothed, raw values faint behind. "
            "Eval curves: shaded band = the evaluation's 95% bootstrap interval over problems.",
            "",
        ]
    for spec, png in drawn:
        lines += [f"### {_md(spec.title)}", "", f"![{spec.name}](plots/{png})", ""]
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    out = run.path / "report.md"
    out.write_text("\n".join(lines), encoding="utf-8")
    return out


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
    return 0


if __name__ == "__main__":
    sys.exit(main())
