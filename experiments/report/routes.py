"""Routes across seeds: `routes_comparison.md` / `.json` from the `routes.json` of several runs.

`rlreason-report` calls `write_routes_comparison` when the folders it is given hold routes runs
(`experiment=r1_routes_tiny -m seed=1,2,3`): per route and metric, the mean over seeds with a 95%
Student-t half-width (seeds as independent replicates), and for `rl_steps_to_*` the mean over the
seeds that reached the target with the count that did.

Not here: one seed's table (experiments/routes/table.py), the per-run comparison (build.py).
"""

from __future__ import annotations

import json
from pathlib import Path

from experiments.report.plots import mean_ci

COMPUTE = ("tokens", "optimizer_steps", "seconds")
NOT_METRICS = ("stages", "trained_tokens", *COMPUTE)


def _metric_keys(runs) -> list[str]:
    """Accuracy-like keys in first-seen order (greedy, pass@1, maj@k, ...), steps-to excluded."""
    keys = (k for run in runs for m in run["routes"].values() for k in m)
    return [
        k for k in dict.fromkeys(keys) if k not in NOT_METRICS and not k.startswith("rl_steps_to_")
    ]


def find_routes(paths) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        found = (
            [p / "routes.json"] if (p / "routes.json").is_file() else sorted(p.rglob("routes.json"))
        )
        out += [f for f in found if f not in out]
    return out


def routes_comparison(files: list[Path]) -> dict:
    runs = [json.loads(f.read_text()) for f in files]
    names = list(dict.fromkeys(r for run in runs for r in run["routes"]))
    steps_keys = sorted(
        {
            k
            for run in runs
            for m in run["routes"].values()
            for k in m
            if k.startswith("rl_steps_to_")
        }
    )
    metrics, table = _metric_keys(runs), {}
    for name in names:
        per = [run["routes"][name] for run in runs if name in run["routes"]]
        row = {}
        for key in (*metrics, *COMPUTE):
            mean, half, n = mean_ci([m.get(key) for m in per])
            row[key] = {"mean": mean, "ci": half, "n": n}
        for key in steps_keys:
            reached = [m[key] for m in per if m.get(key) is not None]
            mean, half, n = mean_ci(reached)
            row[key] = {"mean": mean, "ci": half, "reached": n, "runs": len(per)}
        table[name] = row
    return {
        "metrics": metrics,
        "routes": table,
        "seeds": [run.get("seed") for run in runs],
        "files": [str(f) for f in files],
    }


def _pm(stat: dict, digits: int = 3) -> str:
    mean, ci = stat["mean"], stat["ci"]
    if mean != mean:  # NaN
        return "-"
    return f"{mean:.{digits}f}" + (f" ± {ci:.{digits}f}" if ci == ci else "")


def routes_markdown(result: dict) -> str:
    routes = result["routes"]
    steps_keys = sorted({k for row in routes.values() for k in row if k.startswith("rl_steps_to_")})
    head = [*result["metrics"], *steps_keys, *COMPUTE]
    lines = [
        "# Routes across seeds",
        "",
        f"Seeds {result['seeds']}: mean ± 95% t-interval half-width; steps-to columns average the "
        "seeds that reached the target (reached/runs in brackets).",
        "",
        "| route | " + " | ".join(head) + " |",
        "|---|" + "---:|" * len(head),
    ]
    for name, row in routes.items():
        cells = []
        for key in head:
            s = row[key]
            digits = 0 if key in COMPUTE or key in steps_keys else 3
            cell = _pm(s, digits)
            if "reached" in s:
                cell += f" ({s['reached']}/{s['runs']})"
            cells.append(cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_routes_comparison(paths, out: Path) -> dict | None:
    files = find_routes(paths)
    if not files:
        return None
    result = routes_comparison(files)
    out.mkdir(parents=True, exist_ok=True)
    (out / "routes_comparison.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / "routes_comparison.md").write_text(routes_markdown(result))
    return result
