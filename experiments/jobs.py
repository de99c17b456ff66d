"""The jobs one config can run (`job=`): a registry from name to `run(cfg, arm) -> summary`.

`rlreason-train` runs `cfg.job` (default `rl`; `experiment=r1_routes_tiny` sets `routes`);
`rlreason-sft` and `rlreason-sample` are the same Hydra schema with their own defaults
(conf/sft.yaml, conf/sample.yaml) and their job fixed. Entries import their module lazily, so a
job's dependencies load only when it runs.

Not here: what a job does (experiments/train.py, sft.py, sample.py, routes/).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from rlreason.config import Config, ConfigError

JOBS: dict[str, str] = {
    "rl": "experiments.train:run",
    "sft": "experiments.sft:run",
    "sample": "experiments.sample:run",
    "routes": "experiments.routes:run",
}


def get_job(name: str) -> Callable[[Config, str], dict]:
    if name not in JOBS:
        raise ConfigError(f"job={name!r}: choose one of {sorted(JOBS)}")
    module, fn = JOBS[name].split(":")
    return getattr(importlib.import_module(module), fn)
