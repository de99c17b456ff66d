"""`routes.json`, `routes.md` and `routes_compute.png` of a routes run.

`routes.json`: `{"routes": {route: {"greedy", "pass@1", "maj@k", "best_of_k", "beam", "format",
"length", "rl_steps_to_<target>", "rl_steps_to_pure_rl", "tokens", "optimizer_steps", "seconds",
"trained_tokens", "stages"}}, "target": ..., "pure_rl_final_greedy": ..., "stages": {...}}` with
k = `eval.samples`. Accuracy metrics come from the per-route evaluation (evaluate.py); compute is
inclusive (the route's stages and every stage they need, compute.py); `rl_steps_to_*` is the first
RL step of the route's own RL stage whose greedy accuracy reaches the target (None: never, or no
RL in the route). The plot draws held-out greedy accuracy against generated tokens and against
training seconds, each route's curve offset by the compute of the stages it builds on.

Not here: running stages or evaluations.
"""

from __future__ import annotations

import json
from pathlib import Path

from experiments.routes.compute import Spent, stage_spent, steps_to
from experiments.routes.stages import ROUTE_STAGES, plan
from rlreason.config import Config

ARM = "eval/{arm}/"


def _route_metrics(metrics: dict, k: int) -> dict:
    arm = next(
        (key.split("/")[1] for key in metrics if key.endswith("/greedy_acc")), None
    )  # the template's name
    head = ARM.format(arm=arm)

    def get(name):
        v = metrics.get(head + name)
        return None if v is None else float(v)

    return {
        "greedy": get("greedy_acc"),
        "pass@1": get("pass@1"),
        f"maj@{k}": get(f"maj@{k}"),
        f"best_of_{k}": get(f"best_of_{k}"),
        "beam": get("beam_acc"),
        "format": get("format_rate"),
        "length": get("length_mean"),
    }


def _chain(stages_by_name: dict, name: str) -> list[str]:
    """`name` and every stage it needs, dependencies first."""
    out: list[str] = []

    def visit(n):
        for dep in stages_by_name[n].needs:
            visit(dep)
        if n not in out:
            out.append(n)

    visit(name)
    return out


def build(cfg: Config, root: Path, summaries: dict, evals: dict) -> dict:
    stages = {s.name: s for s in plan(cfg, root)}
    spent = {n: stage_spent(root / n, stages[n].job, summaries[n]) for n in stages}
    target, k = cfg.routes.target, cfg.eval.samples
    pure_final = evals.get("pure_rl") and _route_metrics(evals["pure_rl"], k)["greedy"]
    routes = {}
    for route in cfg.routes.routes:
        stage = ROUTE_STAGES[route]
        chain = _chain(stages, stage) if stage else []
        total = Spent()
        for n in chain:
            total = total.plus(spent[n])
        rl = spent[stage].curve if stage and stages[stage].job == "rl" else None
        routes[route] = {
            **_route_metrics(evals[route], k),
            f"rl_steps_to_{target:g}": steps_to(rl, target) if rl is not None else None,
            "rl_steps_to_pure_rl": (
                steps_to(rl, pure_final) if rl is not None and pure_final is not None else None
            ),
            "tokens": int(round(total.tokens)),
            "optimizer_steps": int(round(total.optimizer_steps)),
            "seconds": round(total.seconds, 2),
            "trained_tokens": int(round(total.trained_tokens)),
            "stages": chain,
        }
    return {
        "routes": routes,
        "target": target,
        "pure_rl_final_greedy": pure_final,
        "seed": cfg.seed,
        "stages": {
            n: {
                "job": stages[n].job,
                "tokens": int(round(s.tokens)),
                "optimizer_steps": int(round(s.optimizer_steps)),
                "seconds": round(s.seconds, 2),
                "trained_tokens": int(round(s.trained_tokens)),
                "curve": [list(c) for c in s.curve],
            }
            for n, s in spent.items()
        },
    }


DIGITS = {"length": 1, "seconds": 1}  # accuracies: 3


def _fmt(v, key: str = "") -> str:
    if v is None:
        return "-"
    return f"{v:.{DIGITS.get(key, 3)}f}" if isinstance(v, float) else str(v)


def markdown(result: dict, k: int, plot: str | None) -> str:
    target = result["target"]
    cols = [
        ("greedy", "greedy"),
        ("pass@1", "pass@1"),
        (f"maj@{k}", f"maj@{k}"),
        (f"best-of-{k}", f"best_of_{k}"),
        (f"beam {k}", "beam"),
        ("format", "format"),
        ("length", "length"),
        (f"RL steps to {target:g}", f"rl_steps_to_{target:g}"),
        ("RL steps to pure_rl", "rl_steps_to_pure_rl"),
        ("gen tokens", "tokens"),
        ("opt steps", "optimizer_steps"),
        ("seconds", "seconds"),
    ]
    lines = [
        "# Routes to a reasoning model",
        "",
        f"Seed {result['seed']}. Held-out accuracy of every route's final policy (same problems, "
        "same evaluation); compute is inclusive: a route is charged for every stage it needs.",
        "",
        "| route | " + " | ".join(c for c, _ in cols) + " |",
        "|---|" + "---:|" * len(cols),
    ]
    for route, m in result["routes"].items():
        lines.append(f"| {route} | " + " | ".join(_fmt(m[key], key) for _, key in cols) + " |")
    lines += ["", "## Stages", "", "| stage | job | gen tokens | opt steps | seconds |"]
    lines.append("|---|---|---:|---:|---:|")
    for n, s in result["stages"].items():
        lines.append(
            f"| {n} | {s['job']} | {s['tokens']} | {s['optimizer_steps']} | {s['seconds']} |"
        )
    if plot:
        lines += ["", f"![accuracy vs compute]({plot})"]
    return "\n".join(lines) + "\n"


def _own_start(chain: list[str], route: str) -> int:
    """Where a route's own stages begin in its chain: after the last stage that is another
    route's result (`sft_rl`: after `pure_rl`, so its curve shows the cold start, then RL)."""
    others = {v for k, v in ROUTE_STAGES.items() if v is not None and k != route}
    return max((i + 1 for i, n in enumerate(chain) if n in others), default=0)


def plot(result: dict, out: Path) -> str | None:
    """Greedy accuracy vs generated tokens and vs seconds, one line per trained route."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    stages = result["stages"]
    for route, m in result["routes"].items():
        chain = m["stages"]
        if not chain:
            axes[0].axhline(m["greedy"] or 0, ls=":", lw=1, label=route, color="grey")
            axes[1].axhline(m["greedy"] or 0, ls=":", lw=1, color="grey")
            continue
        xs_t, xs_s, ys = [], [], []
        for i, n in enumerate(chain):
            if i < _own_start(chain, route):
                continue
            base_t = sum(stages[m]["tokens"] for m in chain[:i])
            base_s = sum(stages[m]["seconds"] for m in chain[:i])
            for _, t, sec, acc in stages[n]["curve"]:
                xs_t.append(base_t + t)
                xs_s.append(base_s + sec)
                ys.append(acc)
        axes[0].plot(xs_t, ys, marker=".", label=route)
        axes[1].plot(xs_s, ys, marker=".", label=route)
    axes[0].set_xlabel("generated tokens (inclusive)")
    axes[1].set_xlabel("training seconds (inclusive)")
    for ax in axes:
        ax.set_ylabel("held-out greedy accuracy")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "routes_compute.png", dpi=110)
    plt.close(fig)
    return "routes_compute.png"


def write_routes(cfg: Config, root: Path, summaries: dict, evals: dict) -> dict:
    result = build(cfg, root, summaries, evals)
    (root / "routes.json").write_text(json.dumps(result, indent=1) + "\n")
    drawn = plot(result, root)
    (root / "routes.md").write_text(markdown(result, cfg.eval.samples, drawn))
    return result
