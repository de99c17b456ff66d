"""Experiment tracking behind one `Logger` protocol: JSONL (always), W&B, console, null.

The trainer holds exactly one Logger (a `MultiLogger` fans out), so no code path branches on
whether W&B is on. W&B runs offline by default (`mode="offline"`, files under the run directory),
online only when the user configures it; its run id is kept so a resumed run continues the same
W&B run. JSONL lines are `{"step": N, ...metrics}` in `<run_dir>/metrics.jsonl`.
In a data-parallel run only rank 0 builds one; the other ranks hold a `NullLogger` (no files,
no W&B run, no console lines).

Not here: what to log (the trainer decides), plots (experiments/report/build.py).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any, Protocol


class Logger(Protocol):
    run_id: str | None

    def log(self, metrics: dict[str, float], step: int) -> None: ...
    def log_table(
        self, name: str, columns: list[str], rows: list[list[Any]], step: int
    ) -> None: ...
    def finish(self) -> None: ...


class NullLogger:
    run_id = None

    def log(self, metrics, step):
        pass

    def log_table(self, name, columns, rows, step):
        pass

    def finish(self):
        pass


def _jsonable(v):
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


class JSONLLogger(NullLogger):
    """Appends one JSON object per `log` call; tables go to `<name>.jsonl` beside it."""

    def __init__(self, run_dir: str | Path):
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / "metrics.jsonl"

    def log(self, metrics, step):
        with self.path.open("a") as f:
            f.write(
                json.dumps({"step": step, **{k: _jsonable(v) for k, v in metrics.items()}}) + "\n"
            )

    def log_table(self, name, columns, rows, step):
        with (self.dir / f"{name.replace('/', '_')}.jsonl").open("a", encoding="utf-8") as f:
            for row in rows:
                f.write(
                    json.dumps({"step": step, **dict(zip(columns, row))}, ensure_ascii=False) + "\n"
                )


class ConsoleLogger(NullLogger):
    """Prints a compact line of selected metrics every `every` steps (and for eval metrics)."""

    KEYS = (
        "reward/total/mean",
        "accuracy",
        "rollout/length_mean",
        "policy/kl",
        "policy/entropy",
        "policy/grad_norm",
        "sft/loss",
        "distill/reverse_kl",
        "lr",
        "perf/tokens_per_s",
    )

    def __init__(self, every: int = 10, stream=None):
        self.every, self.stream = max(every, 1), stream or sys.stdout

    def log(self, metrics, step):
        evals = {
            k: v
            for k, v in metrics.items()
            if (k.startswith("eval/") or k == "sft/eval_loss")
            and "/difficulty/" not in k
            and not k.endswith(("_lo", "_hi"))
        }
        if evals:
            body = " ".join(
                f"{k.removeprefix('eval/').removeprefix('sft/')}={v:.3f}"
                for k, v in sorted(evals.items())
            )
            print(f"[eval step {step}] {body}", file=self.stream, flush=True)
        if step % self.every == 0 and any(k in metrics for k in self.KEYS):
            body = " ".join(
                f"{k.split('/')[-2] if k.endswith('/mean') else k.split('/')[-1]}={metrics[k]:.4g}"
                for k in self.KEYS
                if k in metrics
            )
            print(f"[step {step}] {body}", file=self.stream, flush=True)


class WandbLogger(NullLogger):
    def __init__(
        self,
        run_dir: str | Path,
        config: dict,
        *,
        mode: str = "offline",
        project: str = "rlreason",
        entity=None,
        group=None,
        name=None,
        tags=(),
        run_id: str | None = None,
    ):
        import wandb

        self._wandb = wandb
        self.run = wandb.init(
            project=project,
            entity=entity,
            group=group,
            name=name,
            tags=list(tags),
            config=config,
            dir=str(run_dir),
            mode=mode,
            id=run_id,
            resume="allow" if run_id else None,
            settings=wandb.Settings(console="off", silent=True),
        )
        self.run_id = self.run.id

    def log(self, metrics, step):
        self.run.log(dict(metrics), step=step)

    def log_table(self, name, columns, rows, step):
        self.run.log({name: self._wandb.Table(columns=columns, data=rows)}, step=step)

    def finish(self):
        self.run.finish()


class MultiLogger(NullLogger):
    def __init__(self, *loggers):
        self.loggers = list(loggers)
        self.run_id = next((lg.run_id for lg in self.loggers if lg.run_id), None)

    def log(self, metrics, step):
        for lg in self.loggers:
            lg.log(metrics, step)

    def log_table(self, name, columns, rows, step):
        for lg in self.loggers:
            lg.log_table(name, columns, rows, step)

    def finish(self):
        for lg in self.loggers:
            lg.finish()


def build_logger(
    run_dir: str | Path, config: dict, wandb_cfg, console_every: int = 10, run_id: str | None = None
) -> MultiLogger:
    """JSONL + console, plus W&B unless its mode is "disabled"."""
    loggers: list = [JSONLLogger(run_dir), ConsoleLogger(console_every)]
    if wandb_cfg.mode != "disabled":
        loggers.append(
            WandbLogger(
                run_dir,
                config,
                mode=wandb_cfg.mode,
                project=wandb_cfg.project,
                entity=wandb_cfg.entity,
                group=wandb_cfg.group,
                name=wandb_cfg.name,
                tags=wandb_cfg.tags,
                run_id=run_id,
            )
        )
    return MultiLogger(*loggers)
