"""One evaluation per route, the same for all: `rlreason-eval`'s sample and beam strategies on the
first `eval.n_problems` held-out problems (greedy, `eval.samples` draws for pass@1 / maj@k /
best-of-k, beam search of width `eval.beam_width`), each written to `<root>/eval/<route>/`.

A route's policy is its stage's run directory (its latest checkpoint); the starting points are
the model sources themselves (`base`, and `routes.student` for `student_base`). A route whose
eval.json exists is not evaluated again.

Not here: the strategies (experiments/eval.py), the tables (table.py).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from rlreason.config import Config, EvalConfig, WandbConfig


def eval_config(cfg: Config, route: str, root: Path):
    """The `rlreason-eval` config that evaluates `route` (experiments.schema.EvalAppConfig)."""
    from experiments.routes.stages import ROUTE_STAGES
    from experiments.schema import EvalAppConfig

    stage = ROUTE_STAGES[route]
    # the starting points are built as their stages build them (shape fields included)
    student = dataclasses.replace(cfg.model, source=cfg.routes.student, path=None)
    model = student if route == "student_base" else dataclasses.replace(cfg.model)
    e = cfg.eval
    return EvalAppConfig(
        model=model,
        env=cfg.env,
        reward=dict(cfg.reward),
        reward_gate=cfg.reward_gate,
        eval=EvalConfig(
            samples=e.samples,
            n_problems=e.n_problems,
            max_new_tokens=e.max_new_tokens or cfg.sampling.max_new_tokens,
            seed=e.seed,
            k=[k for k in (1, e.samples) if k <= e.samples],
            temperature=cfg.sampling.temperature,
            top_k=cfg.sampling.top_k,
            top_p=cfg.sampling.top_p,
            strategies=["sample", "beam"] if cfg.routes.scaling else ["sample"],
            beam_width=e.beam_width,
            run_dir=str(root / stage) if stage else None,
            run_env=False,  # every route on the routes' own env and rewards
            out=str(root / "eval" / route),
            batch_prompts=e.batch_prompts,
            n_boot=e.n_boot,
        ),
        log=type(cfg.log)(wandb=WandbConfig(mode="disabled")),
        seed=cfg.seed,
        name=f"{cfg.name}-eval-{route}",
    )


def evaluate_routes(cfg: Config, root: Path, say=print) -> dict[str, dict]:
    """{route: eval.json's `metrics`} for every configured route."""
    from experiments.eval import run as run_eval

    out = {}
    for route in cfg.routes.routes:
        path = root / "eval" / route / "eval.json"
        if not path.is_file():
            say(f"[rlreason] routes: evaluating {route}")
            run_eval(eval_config(cfg, route, root))
        out[route] = json.loads(path.read_text())["metrics"]
    return out
