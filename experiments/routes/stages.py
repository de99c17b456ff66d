"""The stages of the routes experiment and the order they run in, each a job on a derived config.

Every stage gets the routes config with a few keys changed (`STAGES`: job and dotted overrides)
and its own directory `<root>/<stage>`; a stage whose summary file already exists is not run
again, so an interrupted routes run continues by running the same command with
`log.run_dir=<root>`. Stages run in dependency order: pure_rl, traces (rejection sampling from
pure_rl), sft_cold (the base on the traces), sft_rl (RL from sft_cold), distill_sft (the student
on the traces), distill_onpolicy (the student, taught token by token by pure_rl); for the opt-in
`r1` route DeepSeek-R1's second round after sft_rl: traces_r1 (rejection sampling from sft_rl),
sft_r1 (the base on those traces) and r1 (RL from sft_r1); then one evaluation per route.

Not here: what a stage does (its job), the job that runs the routes (job.py), the tables
(table.py), compute accounting (compute.py).
"""

from __future__ import annotations

import copy
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from rlreason.config import Config, ConfigError


@dataclass(frozen=True)
class Stage:
    name: str
    job: str  # experiments/jobs.py JOBS key
    overrides: dict = field(default_factory=dict)  # dotted keys on the routes config
    needs: tuple[str, ...] = ()  # stages that must have run first
    summary: str = "summary.json"  # the file a finished stage leaves in its directory


def plan(cfg: Config, root: Path) -> list[Stage]:
    """The stages the configured routes need, in order, with their overrides."""
    r, lr = cfg.routes, cfg.routes.sft_lr
    student = {"model.source": r.student, "model.path": None}
    sft = {
        "sft.data": str(root / "traces" / "samples.jsonl"),
        "train.steps": r.sft_steps,
        "optim.lr": lr,
        "optim.min_lr": lr / 10,
        "optim.warmup_steps": min(10, r.sft_steps),
        "eval.every": max(r.sft_steps // 5, 1),
    }
    rl, rl_steps = {"eval.every": r.rl_eval_every}, r.sft_rl_steps or cfg.train.steps
    teacher = {"teacher.source": "run", "teacher.path": str(root / "pure_rl")}
    distill = {
        **rl,
        **student,
        **teacher,
        "algo.advantage": "onpolicy_distill",
        "algo.kl_coef": 0.0,
        "algo.log_kl": False,
        "train.steps": r.distill_steps,
        "optim.lr": r.distill_lr,
        "optim.min_lr": r.distill_lr / 10,
    }
    sample = {
        **teacher,
        "sample.n": r.sample_n,
        "sample.n_problems": r.sample_problems,
        "sample.split": "train",
        "sample.out": None,
    }
    stages = [
        Stage("pure_rl", "rl", rl),
        Stage("traces", "sample", sample, ("pure_rl",), summary="sample.json"),
        Stage("sft_cold", "sft", sft, ("traces",)),
        Stage(
            "sft_rl",
            "rl",
            {
                **rl,
                "model.source": "run",
                "model.path": str(root / "sft_cold"),
                "train.steps": rl_steps,
            },
            ("sft_cold",),
        ),
        Stage("distill_sft", "sft", {**sft, **student}, ("traces",)),
        Stage("distill_onpolicy", "rl", distill, ("pure_rl",)),
        # DeepSeek-R1's second round: traces of the SFT+RL policy, SFT of the base on them, RL
        Stage(
            "traces_r1",
            "sample",
            {**sample, "teacher.path": str(root / "sft_rl")},
            ("sft_rl",),
            summary="sample.json",
        ),
        Stage(
            "sft_r1",
            "sft",
            {**sft, "sft.data": str(root / "traces_r1" / "samples.jsonl")},
            ("traces_r1",),
        ),
        Stage(
            "r1",
            "rl",
            {
                **rl,
                "model.source": "run",
                "model.path": str(root / "sft_r1"),
                "train.steps": rl_steps,
            },
            ("sft_r1",),
        ),
    ]
    wanted = set(_needed(stages, ROUTE_STAGES, r.routes))
    return [s for s in stages if s.name in wanted]


# the stage whose policy is each route's result (None: the route is a starting point)
ROUTE_STAGES: dict[str, str | None] = {
    "base": None,
    "student_base": None,
    "pure_rl": "pure_rl",
    "sft_rl": "sft_rl",
    "distill_sft": "distill_sft",
    "distill_onpolicy": "distill_onpolicy",
    "r1": "r1",  # opt-in (not in the default routes): R1's second SFT round and final RL
}


def _needed(stages: list[Stage], route_stages: dict, routes) -> list[str]:
    by_name = {s.name: s for s in stages}
    out: list[str] = []

    def visit(name: str) -> None:
        if name in out:
            return
        for dep in by_name[name].needs:
            visit(dep)
        out.append(name)

    for route in routes:
        if route_stages[route] is not None:
            visit(route_stages[route])
    return out


def derive(cfg: Config, stage: Stage, root: Path) -> Config:
    """The config one stage runs with: the routes config, the stage's job and overrides, its
    directory, its W&B name in the routes' group."""
    c = copy.deepcopy(cfg)
    c.job, c.name = stage.job, f"{cfg.name}-{stage.name}"
    c.log.run_dir = str(root / stage.name)
    c.log.wandb.group = cfg.log.wandb.group or cfg.name
    c.log.wandb.name = f"{stage.name}-seed{cfg.seed}"
    c.log.wandb.tags = [*cfg.log.wandb.tags, "routes", stage.name]
    for key, value in stage.overrides.items():
        _set(c, key, value)
    return c


def _set(cfg, dotted: str, value) -> None:
    *path, leaf = dotted.split(".")
    node = cfg
    for part in path:
        node = getattr(node, part)
    if not hasattr(node, leaf):
        raise ConfigError(f"routes: no config key {dotted}")
    setattr(node, leaf, value)


def check(cfg: Config) -> None:
    """Routes settings that cannot work, before any stage runs."""
    r, e = cfg.routes, []
    unknown = [x for x in r.routes if x not in ROUTE_STAGES]
    if unknown:
        e.append(f"routes.routes: unknown {unknown}; choose from {list(ROUTE_STAGES)}")
    if cfg.train.resume:
        e.append("train.resume: a routes run continues by re-running it with log.run_dir=<root>")
    for key in ("rl_eval_every", "sample_n", "sft_steps", "distill_steps"):
        if getattr(r, key) < 1:
            e.append(f"routes.{key}={getattr(r, key)}: must be >= 1")
    if not 0 < r.target <= 1:
        e.append(f"routes.target={r.target}: must lie in (0, 1]")
    if cfg.eval.n_problems < 1:
        e.append("eval.n_problems: the routes are compared on held-out problems; set >= 1")
    if e:
        raise ConfigError("invalid routes configuration:\n  - " + "\n  - ".join(e))


def run_stages(cfg: Config, root: Path, say=print) -> dict[str, dict]:
    """Run (or reuse) every planned stage; returns each stage's summary plus `wall_seconds`."""
    from experiments.jobs import get_job

    done: dict[str, dict] = {}
    for stage in plan(cfg, root):
        path = root / stage.name / stage.summary
        if path.is_file():
            say(f"[rlreason] routes: {stage.name} already ran ({path})")
            done[stage.name] = json.loads(path.read_text())
            continue
        shutil.rmtree(root / stage.name, ignore_errors=True)  # a stage cut short starts over
        say(f"[rlreason] routes: stage {stage.name} ({stage.job})")
        t0 = time.perf_counter()
        summary = get_job(stage.job)(derive(cfg, stage, root), stage.name)
        summary = dict(summary or {})
        summary.setdefault("wall_seconds", time.perf_counter() - t0)
        done[stage.name] = summary
    return done
