"""Run reports: one run's `report.md` and plots (run_report.py), comparisons of arms across runs
(build.py, `rlreason-report`), reading runs (runs.py), curves (plots.py) and the end-of-run summary
(summary.py)."""

from experiments.report.build import group_arms, main, write_comparison
from experiments.report.run_report import write_report
from experiments.report.runs import Run, load_run, read_metrics

__all__ = [
    "Run",
    "group_arms",
    "load_run",
    "main",
    "read_metrics",
    "write_comparison",
    "write_report",
]
