"""The routes job: check the config, run the stages, evaluate every route, write the tables.

Not here: the stage plan (stages.py), the evaluation (evaluate.py), the tables (table.py).
"""

from __future__ import annotations

import time
from pathlib import Path

from experiments.routes.evaluate import evaluate_routes
from experiments.routes.stages import check, run_stages
from experiments.routes.table import write_routes
from rlreason.config import Config


def run(cfg: Config, arm: str = "") -> dict:
    """The job: every stage, one evaluation per route, then routes.md / routes.json."""
    from experiments.build import run_directory

    check(cfg)
    root = run_directory(cfg, arm)
    root.mkdir(parents=True, exist_ok=True)
    _write_config(cfg, root)
    t0 = time.perf_counter()
    stages = run_stages(cfg, root)
    evals = evaluate_routes(cfg, root)
    result = write_routes(cfg, root, stages, evals)
    print(f"[rlreason] routes in {time.perf_counter() - t0:.0f}s: {root / 'routes.md'}")
    return result


def _write_config(cfg: Config, root: Path) -> None:
    from omegaconf import OmegaConf

    path = root / "config.yaml"
    if not path.is_file():
        path.write_text(OmegaConf.to_yaml(OmegaConf.structured(cfg)))
