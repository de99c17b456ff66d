"""One run's `report.md`: the before/after table, the time split, the collapse alarms, the plots.

`write_report(run_dir)` runs at the end of every training run (`experiments.report.summary`).
It reads `metrics.jsonl` and `summary.json` and writes `report.md` and PNGs under `plots/`:
held-out accuracy (greedy and sampled), reward components, format rate, response length, think
rate, KL, entropy, learning rate. Training curves are drawn raw (faint) and lightly smoothed;
eval curves carry the evaluation's own bootstrap band over problems (`_lo`/`_hi`). A plot whose
data is absent is skipped and named; a plot that fails is reported in `report.md` and on stderr:
a report never crashes a finished run.
"""

from __future__ import annotations

import math
from pathlib import Path

from experiments.report.plots import (
    RUN_PLOTS,
    Series,
    draw_specs,
    run_curves,
    steps_to_target,
)
from experiments.report.runs import Run, _number, last_step, load_run

TABLE_KEYS = (
    ("greedy accuracy", "eval/greedy_acc"),
    ("sampled accuracy (pass@1)", "eval/pass@1"),
    ("format rate", "eval/format_rate"),
    ("think rate", "eval/think_rate"),
    ("response length", "eval/length_mean"),
)


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
