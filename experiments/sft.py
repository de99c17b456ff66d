"""`rlreason-sft sft.data=FILE.jsonl`: supervised fine-tuning of the policy on prompt/completion
pairs (the `sft` job; `rlreason-sft` alone composes conf/sft.yaml, i.e. `experiment=sft_tiny`).

`run(cfg)` checks `sft.*` and the whole data file (every bad line named `file:line`) before any
model loads, sets `train.steps` from `sft.epochs` when given, then builds the policy
(`model.*` + `lora.*`), the env's evaluation (`eval.n_problems` > 0: its eval split, template and
rewards, sampled at `sampling.*` as the RL trainer's evals), the run directory and logger, and
hands them to `rlreason.sft.trainer.SFTTrainer`. The run directory gets `config.yaml`,
`model.json`, `metrics.jsonl`, the checkpoints (the RL run's layout: `experiments.teacher.
load_run_policy` and `rlreason-eval eval.run_dir=` load an SFT run) and `summary.json`.
`train.resume=<run dir>` continues a run under its saved config (the data file must be unchanged).
Data and config errors exit with one `[rlreason] ...` message and code 2.

Not here: the loop (rlreason/sft/trainer.py), the data format (rlreason/sft/data.py). One
process only (no torchrun).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from rlreason import distributed
from rlreason.config import Config, ConfigError, resolve_schedule, validate
from rlreason.sft.checks import validate_sft
from rlreason.sft.data import (
    SFTDataError,
    SFTExample,
    epoch_steps,
    load_examples,
    split_examples,
    tokenize_examples,
)


@dataclass
class SFTData:
    train: list[SFTExample]
    eval: list[SFTExample]
    record: dict  # paths, sha256 and line counts, for summary.json


def sha256_of(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_data(cfg: Config) -> SFTData:
    """Train and held-out examples of `sft.data` / `sft.eval_data` (or `sft.eval_fraction`)."""
    s = cfg.sft
    try:
        examples = load_examples(s.data)
        if s.eval_data:
            train, held = examples, load_examples(s.eval_data)
        else:
            train, held = split_examples(examples, s.eval_fraction, cfg.seed)
    except SFTDataError as e:
        raise ConfigError(str(e)) from e
    record = {
        "path": str(s.data),
        "sha256": sha256_of(s.data),
        "eval_path": str(s.eval_data) if s.eval_data else None,
        "eval_sha256": sha256_of(s.eval_data) if s.eval_data else None,
        "n_train": len(train),
        "n_eval": len(held),
    }
    return SFTData(train, held, record)


def tokenize_data(cfg: Config, data: SFTData, model, tokenizer):
    """(train, held-out) sequences; an example longer than the model's context is a ConfigError."""
    limit = getattr(getattr(model, "config", None), "max_seq_len", None)
    try:
        train = tokenize_examples(data.train, tokenizer, cfg.sft.add_eos, limit)
        return train, tokenize_examples(data.eval, tokenizer, cfg.sft.add_eos, limit)
    except SFTDataError as e:
        raise ConfigError(str(e)) from e


def env_evaluator(c: Config, model, tokenizer):
    """The env's evaluation as the RL trainer's `evaluate` runs it (same arguments), or None when
    `eval.n_problems` is 0."""
    from experiments.build import build_env, build_scorer
    from experiments.train import bind_render, check_splits
    from rlreason.eval.runner import evaluate_policy

    if c.eval.n_problems <= 0:
        return None
    env, template = build_env(c)
    check_splits(c, env)
    scorer = build_scorer(c, env, template)
    render = bind_render(template, tokenizer, env.eval[0])
    tasks = list(env.eval)[: c.eval.n_problems]
    new_tokens = c.eval.max_new_tokens or c.sampling.max_new_tokens
    check_eval_lengths(model, tokenizer, [render(t) for t in tasks], new_tokens)
    return functools.partial(
        evaluate_policy,
        model,
        tokenizer,
        tasks,
        render,
        scorer,
        samples=c.eval.samples,
        temperature=c.sampling.temperature,
        top_k=c.sampling.top_k,
        top_p=c.sampling.top_p,
        max_new_tokens=new_tokens,
        stop_strings=template.stop_strings(tokenizer),
        seed=c.eval.seed,
    )


def check_eval_lengths(model, tokenizer, prompts: list[str], new_tokens: int) -> None:
    """The longest eval prompt plus the eval's new tokens fits the model's context."""
    limit = getattr(getattr(model, "config", None), "max_seq_len", None)
    n = max(len(tokenizer.encode_prompt(p)) for p in prompts)
    if limit is not None and n + new_tokens > limit:
        raise ConfigError(
            f"the longest eval prompt ({n} tokens) plus {new_tokens} new tokens exceeds the "
            f"model's context of {limit}: lower eval.max_new_tokens (or sampling.max_new_tokens), "
            "or set eval.n_problems=0 to train without the env's evaluation"
        )


def prepare_config(cfg: Config) -> Config:
    """The `sft.*` checks, on the run's saved config when resuming (only train.resume and
    train.stop_after come from the command line)."""
    from experiments.schema import configured_rewards
    from experiments.train import resume_config

    if distributed.from_env().world > 1:
        raise ConfigError("rlreason-sft runs in one process: launch it without torchrun")
    if cfg.train.resume:
        cfg = resume_config(cfg)
    cfg.job = "sft"
    validate_sft(cfg)
    cfg.reward = configured_rewards(cfg.reward)
    return cfg


def apply_epochs(cfg: Config, n_train: int) -> None:
    """`sft.epochs` -> `train.steps`, then the shared checks and the warmup schedule."""
    if cfg.sft.epochs is not None:
        cfg.train.steps = epoch_steps(cfg.sft.epochs, n_train, cfg.sft.batch_size)
        print(f"[rlreason] sft.epochs={cfg.sft.epochs}: train.steps={cfg.train.steps}")
    validate(cfg)
    for note in resolve_schedule(cfg):
        print(f"[rlreason] {note}")


def check_same_data(run_dir: Path, record: dict) -> None:
    """A resumed run must train on the data it started with (exact continuation)."""
    path = run_dir / "summary.json"
    if not path.is_file():
        return
    before = json.loads(path.read_text()).get("data", {})
    for key in ("sha256", "eval_sha256"):
        if before.get(key, record[key]) != record[key]:
            raise ConfigError(
                f"train.resume={run_dir}: the data changed since the run started ({key} "
                f"{before[key][:12]}... then, {record[key][:12]}... now); resume with the same "
                "sft.data / sft.eval_data files"
            )


def build_sft_trainer(cfg: Config, arm: str, data: SFTData, resolved: dict):
    """Model, sequences, evaluation, run directory and logger around an SFTTrainer."""
    from omegaconf import OmegaConf

    from experiments.build import arm_label, build_policy, run_directory
    from experiments.train import model_record, set_cpu_threads
    from rlreason.checkpoint import latest_checkpoint
    from rlreason.model.lora import count_parameters
    from rlreason.sft.trainer import SFTTrainer
    from rlreason.tracking import build_logger

    set_cpu_threads(cfg.train.threads)
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)  # as experiments.teacher.load_run_policy: the same base weights
    model, tokenizer = build_policy(cfg.model, cfg.lora)
    print(f"[rlreason] {count_parameters(model)}")
    train_seqs, eval_seqs = tokenize_data(cfg, data, model, tokenizer)
    evaluate = env_evaluator(cfg, model, tokenizer)
    run_dir = run_directory(cfg, arm)
    run_dir.mkdir(parents=True, exist_ok=True)
    run_id = None
    if cfg.train.resume:
        check_same_data(run_dir, data.record)
        run_id = json.loads((latest_checkpoint(run_dir) / "state.json").read_text()).get("run_id")
    wandb_cfg = copy.deepcopy(cfg.log.wandb)
    wandb_cfg.group = wandb_cfg.group or cfg.name
    wandb_cfg.name = wandb_cfg.name or f"{arm_label(arm)}-seed{cfg.seed}"
    logger = build_logger(run_dir, resolved, wandb_cfg, cfg.log.console_every, run_id)
    if not cfg.train.resume:
        (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.structured(cfg)))
        record = json.dumps(model_record(cfg, model), indent=1)
        (run_dir / "model.json").write_text(record + "\n")
    trainer = SFTTrainer(
        cfg, model, train_seqs, eval_seqs, tokenizer.pad_id, run_dir, logger, evaluate
    )
    if cfg.train.resume:
        trainer.resume(run_dir)
        print(f"[rlreason] resumed {run_dir} at step {trainer.step}")
    return trainer


def _split_eval(metrics: dict) -> tuple[dict, float | None]:
    """(the env's eval metrics, the held-out loss) of one evaluation."""
    rest = {k: v for k, v in metrics.items() if k != "sft/eval_loss"}
    return rest, metrics.get("sft/eval_loss")


def last_train_metrics(run_dir: Path) -> dict:
    path, last = run_dir / "metrics.jsonl", {}
    if path.is_file():
        for line in path.read_text().splitlines():
            row = json.loads(line)
            last = row if "sft/loss" in row else last
    return last


def write_summary(trainer, result: dict, data: SFTData, wall_s: float) -> dict:
    run_dir = Path(trainer.run_dir)
    before, loss_before = _split_eval(result.get("before", {}))
    after, loss_after = _split_eval(result.get("after", {}))
    summary = {
        "run_dir": str(run_dir),
        "step": result["step"],
        "wall_seconds": wall_s,
        "interrupted": result.get("interrupted", False),
        "seconds": result["seconds"],
        "tokens": result["tokens"],
        "optimizer_steps": result["optimizer_steps"],
        "before": before,
        "after": after,
        "eval_loss": {"before": loss_before, "after": loss_after},
        "n_train": data.record["n_train"],
        "n_eval": data.record["n_eval"],
        "data": data.record,
        "last_train_metrics": last_train_metrics(run_dir),
    }
    path = run_dir / "summary.json"
    if path.is_file() and "before" not in result:  # a resumed run keeps its "before"
        old = json.loads(path.read_text())
        summary["before"] = old.get("before", {})
        summary["eval_loss"]["before"] = old.get("eval_loss", {}).get("before")
    path.write_text(json.dumps(summary, indent=1, default=str))
    _report(summary)
    return summary


def _report(s: dict) -> None:
    loss = s["eval_loss"]
    if loss["before"] is not None and loss["after"] is not None:
        print(f"[rlreason] held-out loss {loss['before']:.4f} -> {loss['after']:.4f}")
    for key in ("eval/greedy_acc", "eval/pass@1"):
        if key in s["before"] and key in s["after"]:
            print(f"[rlreason] {key} {s['before'][key]:.3f} -> {s['after'][key]:.3f}")
    split = " ".join(f"{k}={v:.1f}s" for k, v in s["seconds"].items())
    print(
        f"[rlreason] {s['step']} SFT steps, {s['tokens']} completion tokens ({split}); "
        f"{s['wall_seconds']:.1f}s wall; run dir: {s['run_dir']}"
    )


def run(cfg: Config, arm: str = "") -> dict:
    """The `sft` job: train on `sft.data`, return the summary (also in summary.json)."""
    from omegaconf import OmegaConf

    t0 = time.perf_counter()
    cfg = prepare_config(cfg)
    data = load_data(cfg)
    apply_epochs(cfg, len(data.train))
    resolved = OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)
    trainer = build_sft_trainer(cfg, arm, data, resolved)
    try:
        result = trainer.run()
    finally:
        trainer.logger.finish()
    return write_summary(trainer, result, data, time.perf_counter() - t0)


def main() -> None:
    from experiments.train import hydra_app

    hydra_app("sft", job="sft")


if __name__ == "__main__":
    main()
