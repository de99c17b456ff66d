"""`rlreason-sweep`: a Hydra multirun of `rlreason-train` with the jobs run in parallel.

    rlreason-sweep seed=1,2,3                                   # 3 jobs at once
    rlreason-sweep reward.format.weight=0,0.1 seed=1,2,3 --jobs 3
    rlreason-sweep experiment=ablate_rewards --devices cpu      # its hydra.sweeper.params: 9 jobs
    rlreason-sweep experiment=ablate_rewards --dry-run          # list the jobs, run nothing

The job list is Hydra's own: the config is composed in multirun mode and the sweep is expanded
by `BasicSweeper.split_arguments` over `hydra.sweeper.params` followed by the command line, so a
command gives the same jobs, in the same order and with the same overrides, as
`rlreason-train -m ...`. Each job then runs as a subprocess `rlreason-train <its overrides>`: its
task overrides, hence its arm label and run directory name
(`runs/<experiment>/<time>-<arm>-<hash>-seed<seed>`), its W&B group and what `rlreason-report`
compares, are those of the same job under `-m`. Jobs run `--jobs` at a time (default: one per
GPU on a GPU machine, else one per core, at most the number of jobs), each pinned to one GPU or
to one CPU thread (experiments/launcher.py). Logs and `jobs.json` (per job: command, device,
start/end, exit code, run dir) go to `<log.out_dir>/<name>/sweep-<time>/` (`--logs DIR`).
The tiny base model (`model=base`) is built once before the jobs start, not by each job.
Exit status: 0 when every job succeeded, 1 naming the failed jobs and their logs, 2 when the
sweep itself cannot be expanded.

Why a front end and not `hydra/launcher=rlreason_parallel`: Hydra 1.3 instantiates launchers
only from classes under the `hydra_plugins` namespace package (`Plugins._instantiate` rejects
any other `_target_`, e.g. `experiments.launcher.ParallelLauncher` stored in the ConfigStore,
with "Invalid plugin ...: not the hydra_plugins package"), and this project ships no top-level
`hydra_plugins/`. Running jobs as subprocesses rather than in-process also keeps each job's
torch state, CUDA context and thread settings its own.

Not here: sweepers other than Hydra's basic one (Optuna, Ax), sweeping `hydra.*` keys, retries,
multi-machine scheduling, resuming a half-finished sweep.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from experiments import launcher

CONF = Path(__file__).resolve().parent / "conf"
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
DROPPED_HYDRA = ("hydra.sweeper", "hydra/sweeper", "hydra.launcher", "hydra/launcher", "hydra.mode")


@dataclass
class Sweep:
    """The expanded sweep: one override list per job, the `hydra.*` overrides every job gets,
    and each job's composed config (None where it does not compose: that job will fail, with
    the composition error in `errors`)."""

    jobs: list[list[str]]
    hydra: list[str]
    configs: list
    errors: dict[int, str]


def expand(overrides: list[str], compose_jobs: bool = True) -> Sweep:
    """The jobs of `rlreason-train -m <overrides>`, as Hydra's basic sweeper lists them."""
    from hydra import initialize_config_dir
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.types import RunMode

    from experiments.schema import register

    register()  # the schema rlreason-train registers, so jobs compose as they will there
    with initialize_config_dir(config_dir=str(CONF), version_base=None, job_name="train"):
        loader = GlobalHydra.instance().config_loader()
        cfg = loader.load_configuration("config", list(overrides), run_mode=RunMode.MULTIRUN)
        target = cfg.hydra.sweeper.get("_target_")
        if target != BASIC_SWEEPER:
            raise ValueError(f"hydra/sweeper={target}: rlreason-sweep expands basic sweeps only")
        params = [f"{k}={v}" for k, v in (cfg.hydra.sweeper.params or {}).items()]
        parsed = OverridesParser.create(config_loader=loader).parse_overrides(
            params + list(cfg.hydra.overrides.task)
        )
        jobs = BasicSweeper.split_arguments(parsed, None)[0]
        hydra = [o for o in cfg.hydra.overrides.hydra if not o.startswith(DROPPED_HYDRA)]
        configs, errors = [], {}
        for k, job in enumerate(jobs if compose_jobs else []):
            try:
                configs.append(loader.load_configuration("config", hydra + job, RunMode.RUN))
            except Exception as e:  # the job fails on its own, with the error in its log
                configs.append(None)
                errors[k] = str(e).strip().splitlines()[0]
    return Sweep([list(j) for j in jobs], hydra, configs, errors)


def prebuild_base(configs: list, echo=print) -> None:
    """Build the tiny base model once when some job uses `model.source=base` and it is missing."""
    if not any(c is not None and c.model.source == "base" for c in configs):
        return
    from experiments.demo.pretrain import PretrainConfig, cache_root, ensure_base, is_built

    if not is_built(cache_root() / PretrainConfig().config_hash()):
        echo("[sweep] building the base model once for all jobs")
        ensure_base()


def shared_run_dirs(sweep: Sweep) -> list[list[int]]:
    """Groups of jobs whose run directories would have the same name if they started in the same
    second (same experiment, seed and arm: they differ only in keys the arm leaves out, such as
    `train.*`), or that were given the same `log.run_dir` / `train.resume`."""
    from experiments.build import arm_label
    from experiments.train import arm_name

    groups: dict[tuple, list[int]] = {}
    for k, (job, cfg) in enumerate(zip(sweep.jobs, sweep.configs)):
        if cfg is None:
            continue
        name = (cfg.name, cfg.seed, arm_label(arm_name(job)))
        fixed = cfg.train.resume or cfg.log.run_dir  # a directory given outright
        key = (fixed,) if fixed else name
        groups.setdefault(key, []).append(k)
    return [g for g in groups.values() if len(g) > 1]


def log_directory(sweep: Sweep) -> Path:
    """`<log.out_dir>/<name>/sweep-<time>` of the first job that composes (else `runs/sweep-...`)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    cfg = next((c for c in sweep.configs if c is not None), None)
    if cfg is None:
        return Path("runs") / f"sweep-{stamp}"
    return Path(cfg.log.out_dir) / cfg.name / f"sweep-{stamp}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="rlreason-sweep", description=__doc__.split("\n")[0].split(": ", 1)[1]
    )
    p.add_argument("overrides", nargs="*", help="Hydra overrides, as for rlreason-train -m")
    p.add_argument("-j", "--jobs", type=int, help="jobs at once (default: GPUs, else cores)")
    p.add_argument("--devices", choices=launcher.DEVICES, default="auto", help="default: auto")
    p.add_argument("--threads", type=int, default=1, help="CPU threads per job on cpu (default 1)")
    p.add_argument("--logs", type=Path, help="job logs and jobs.json here")
    p.add_argument("--dry-run", action="store_true", help="print the jobs and exit")
    p.add_argument("-m", "--multirun", action="store_true", help="accepted and ignored")
    args = p.parse_args(argv)
    if args.jobs is not None and args.jobs < 1 or args.threads < 1:
        p.error("--jobs and --threads must be at least 1")
    return args


def check(sweep: Sweep) -> bool:
    """Warn about jobs that will fail or share a run directory; False when no job composes."""
    if sweep.configs and all(c is None for c in sweep.configs):
        print(f"[sweep] no job composes; job 1: {sweep.errors[0]}", file=sys.stderr)
        return False
    for k, error in sweep.errors.items():
        print(f"[sweep] warning: job {k + 1} will fail: {error}", file=sys.stderr)
    for group in shared_run_dirs(sweep):
        print(
            f"[sweep] warning: jobs {', '.join(str(k + 1) for k in group)} get the same run "
            "directory if they start in the same second; give them distinct seeds or log.run_dir",
            file=sys.stderr,
        )
    return True


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        sweep = expand(args.overrides)
        gpus = launcher.visible_gpus() if args.devices != "cpu" else []
        mode = launcher.resolve_devices(args.devices, gpus)
    except Exception as e:
        print(f"[sweep] {e}", file=sys.stderr)
        return 2
    cores = launcher.cpu_cores()
    jobs = args.jobs or launcher.default_jobs(len(sweep.jobs), mode, gpus, cores)
    slots = launcher.plan_slots(jobs, mode, gpus, cores, args.threads)
    print(f"[sweep] {len(sweep.jobs)} jobs, {jobs} at a time on {mode}")
    if not check(sweep):
        return 2
    if args.dry_run:
        for k, job in enumerate(sweep.jobs):
            print(f"  job {k + 1} ({slots[k % jobs].device}): {' '.join(sweep.hydra + job)}")
        return 0
    prebuild_base(sweep.configs)
    log_dir = args.logs or log_directory(sweep)
    print(f"[sweep] logs: {log_dir}")
    base = launcher.python_module("experiments.train")
    records = launcher.launch([sweep.hydra + job for job in sweep.jobs], slots, base, log_dir)
    report = launcher.failure_report(records)
    if report:
        print(report, file=sys.stderr)
        return 1
    print(f"[sweep] all {len(records)} jobs succeeded; records: {log_dir / 'jobs.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
