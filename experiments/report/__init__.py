"""Run reports: `report.md` and plots of one run, comparisons of arms (build.py, plots.py), and the
end-of-run summary (summary.py). `rlreason-report` is `build.main`."""

from experiments.report.build import (
    Run,
    group_arms,
    load_run,
    main,
    read_metrics,
    write_comparison,
    write_report,
)

__all__ = [
    "Run",
    "group_arms",
    "load_run",
    "main",
    "read_metrics",
    "write_comparison",
    "write_report",
]
