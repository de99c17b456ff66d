"""End of a run: `summary.json`, the before/after table and the time split, then `report.md`.

`summary.json` holds the final step, wall seconds, the seconds spent per phase (generation,
reward, reference/old log-probs, update, eval), the before/after eval metrics, the last step's
training metrics and any collapse alarms. The console gets a short before/after table.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from experiments.report.run_report import TABLE_KEYS, write_report


def last_train_metrics(run_dir: Path) -> dict:
    path = run_dir / "metrics.jsonl"
    last = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if "reward/total/mean" in row:
                last = row
    return last


def before_after_table(before: dict, after: dict) -> str:
    lines = [f"{'metric':28s} {'before':>9s} {'after':>9s}"]
    for label, key in TABLE_KEYS:
        b, a = before.get(key, math.nan), after.get(key, math.nan)
        lines.append(f"{label:28s} {b:9.3f} {a:9.3f}")
    return "\n".join(lines)


def finish_run(trainer, result: dict, wall_s: float) -> dict:
    run_dir = Path(trainer.run_dir)
    summary = {
        "run_dir": str(run_dir),
        "step": result.get("step"),
        "wall_seconds": wall_s,
        "interrupted": result.get("interrupted", False),
        "seconds": result.get("seconds", trainer.seconds),
        "alarms": result.get("alarms", []),
        "before": result.get("before", {}),
        "after": result.get("after", {}),
        "last_train_metrics": last_train_metrics(run_dir),
    }
    previous = run_dir / "summary.json"
    if previous.is_file() and not summary["before"]:  # a resumed run keeps its "before"
        summary["before"] = json.loads(previous.read_text()).get("before", {})
    previous.write_text(json.dumps(summary, indent=1, default=str))
    if summary["before"] and summary["after"]:
        print(before_after_table(summary["before"], summary["after"]))
    split = " ".join(f"{k}={v:.1f}s" for k, v in summary["seconds"].items())
    loop_s = sum(summary["seconds"].values())  # the steps and evals, without model setup
    print(
        f"[rlreason] {summary['step']} steps in {loop_s:.1f}s ({split}); {wall_s:.1f}s wall "
        f"with setup (model build, pretraining on first use); run dir: {run_dir}"
    )
    write_report(run_dir)
    return summary
