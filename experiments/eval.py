"""`rlreason-eval`: evaluate a policy with several inference-time strategies; table, JSON, PNG, W&B.

    rlreason-eval model=base env=arithmetic eval.n=16 eval.k=[1,4,16]
    rlreason-eval eval.run_dir=runs/r1_zero_tiny/<run>           # the run's latest checkpoint
    rlreason-eval model=local model.path=<dir> eval.adapter=<dir>  # base model + saved adapter
    rlreason-eval eval.templates=[tiny+cot,tiny+direct]            # chain of thought vs direct

What is evaluated:
- the model: the `model` group (base, scratch, local, hf), plus `eval.adapter` (a directory
  written by `rlreason.model.lora.save_adapter`); or, with `eval.run_dir`, the model rebuilt from
  the run's `config.yaml` (torch seeded with the run's seed first, as training did, so a scratch
  base under LoRA comes back identical) with its latest `trainable.safetensors` loaded. The env
  (name, options, template) and the rewards are then the run's own, as saved in its
  `config.yaml`; `eval.run_env=false` evaluates on this command's `env`/`reward` instead (a
  mismatch with the run's env is printed).
- arms: one per `eval.templates` entry, `<template>` or `<template>+<prefill>`. A prefill
  (`PREFILLS`: `cot` opens `<think>`, `direct` opens `<answer>`) is appended to the rendered prompt
  and put back in front of each completion before scoring, so "think first" and "answer at once"
  are compared on the same verifier (prompt engineering as inference-time scaling). Empty list:
  the env's default template.
- strategies (`STRATEGIES`): `sample` = greedy + `eval.n` samples at `eval.temperature` through
  `rlreason.eval.runner.evaluate_policy` (pass@k, maj@k = self-consistency, best_of_k by total
  reward, mean@k, greedy accuracy, per difficulty); `beam` = `rlreason.sampling.beam.beam_search` with
  `eval.beam_width` / `eval.length_penalty` (accuracy of the best beam, "any beam correct",
  format rate, length).
Metric keys are `eval/<arm>/<metric>` with `_lo`/`_hi` percentile-bootstrap bounds over problems.

Outputs in `eval.out` (default `<run_dir>/eval` or `runs/eval/<time>`): `eval.json` (metrics,
resolved config, model source), `scaling.png` (pass@k and maj@k vs k of the first arm;
`scaling_<arm>.png` for the others) and `metrics.jsonl`; the metrics also go to W&B (offline by
default, `log.wandb.mode=disabled` turns it off). The schema is `EvalAppConfig` below, registered
in Hydra's ConfigStore, so a typo in an override is an error.

Not here: metric definitions (rlreason.eval.metrics), sampling (rlreason.sampling.engine), training.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch

from rlreason.config import ConfigError, EnvConfig, LogConfig, ModelConfig, RewardTerm

PREFILLS: dict[str, str] = {"cot": "<think>", "direct": "<answer>"}


@dataclass
class EvalSettings:
    n: int = 16  # sampled completions per problem
    k: list[int] = field(default_factory=lambda: [1, 4, 16])
    n_problems: int = 100  # first N tasks of the env's eval split
    temperature: float = 1.0
    top_k: Optional[int] = None
    top_p: Optional[float] = None
    max_new_tokens: int = 64
    strategies: list[str] = field(default_factory=lambda: ["sample", "beam"])
    beam_width: int = 4
    length_penalty: float = 1.0
    length_norm: str = "simple"  # rlreason.sampling.beam.LENGTH_PENALTIES key
    templates: list[str] = field(default_factory=list)  # [] → the env's template
    run_dir: Optional[str] = None  # evaluate this run's latest checkpoint
    run_env: bool = True  # with run_dir: the run's env, template and rewards
    adapter: Optional[str] = None  # a save_adapter directory applied to `model`
    out: Optional[str] = None
    seed: int = 1234  # sampling and bootstrap seed
    batch_prompts: int = 64
    n_boot: int = 1000


@dataclass
class EvalAppConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    env: EnvConfig = field(default_factory=EnvConfig)
    reward: dict[str, RewardTerm] = field(default_factory=dict)
    reward_gate: Optional[str] = None
    eval: EvalSettings = field(default_factory=EvalSettings)
    log: LogConfig = field(default_factory=LogConfig)
    seed: int = 0  # torch seed before building the model (scratch init)
    name: str = "eval"


@dataclass
class Arm:
    name: str  # "<template>" or "<template>+<prefill>"
    render: Callable[[Any], str]
    prefix: str  # the prefill, put back in front of completions
    stop_ids: list[list[int]]
    scorer: Any  # rlreason.eval.runner.Scorer


def check(cfg: EvalAppConfig) -> EvalAppConfig:
    """Raise ConfigError naming every invalid `eval.*` setting before any work starts."""
    from rlreason.sampling.beam import LENGTH_PENALTIES

    s, e = cfg.eval, []
    rules = [
        (s.n >= 1, f"eval.n={s.n}: must be >= 1"),
        (
            bool(s.k) and all(1 <= k <= s.n for k in s.k),
            f"eval.k={list(s.k)}: each k in [1, eval.n={s.n}]",
        ),
        (s.n_problems >= 1, f"eval.n_problems={s.n_problems}: must be >= 1"),
        (s.temperature >= 0, f"eval.temperature={s.temperature}: must be >= 0"),
        (s.max_new_tokens >= 1, f"eval.max_new_tokens={s.max_new_tokens}: must be >= 1"),
        (
            bool(s.strategies) and set(s.strategies) <= set(STRATEGIES),
            f"eval.strategies={list(s.strategies)}: choose from {sorted(STRATEGIES)}",
        ),
        (s.beam_width >= 1, f"eval.beam_width={s.beam_width}: must be >= 1"),
        (
            s.length_norm in LENGTH_PENALTIES,
            f"eval.length_norm={s.length_norm!r}: one of {sorted(LENGTH_PENALTIES)}",
        ),
        (not (s.run_dir and s.adapter), "eval.run_dir and eval.adapter: set one, not both"),
        (
            cfg.log.wandb.mode in ("offline", "online", "disabled"),
            f"log.wandb.mode={cfg.log.wandb.mode!r}: offline, online or disabled",
        ),
    ]
    e += [msg for ok, msg in rules if not ok]
    e += [
        f"eval.templates entry {t!r}: prefill {t.partition('+')[2]!r} is not one of {sorted(PREFILLS)}"
        for t in s.templates
        if "+" in t and t.partition("+")[2] not in PREFILLS
    ]
    if e:
        raise ConfigError("invalid eval configuration:\n  - " + "\n  - ".join(e))
    return cfg


# --------------------------------------------------------------------------- the model


def _run_config(run_dir: Path):
    """The run's saved training `Config` (its config.yaml merged onto the schema)."""
    from omegaconf import OmegaConf

    from rlreason.config import Config

    saved_path = run_dir / "config.yaml"
    if not saved_path.is_file():
        raise ConfigError(f"eval.run_dir={run_dir}: no config.yaml there (not a run directory?)")
    return OmegaConf.to_object(
        OmegaConf.merge(OmegaConf.structured(Config), OmegaConf.load(saved_path))
    )


def with_run_task(cfg: EvalAppConfig) -> EvalAppConfig:
    """With `eval.run_dir` and `eval.run_env`: cfg with the run's env, rewards and reward gate."""
    if not (cfg.eval.run_dir and cfg.eval.run_env):
        return cfg
    saved = _run_config(Path(cfg.eval.run_dir))
    return dataclasses.replace(
        cfg, env=saved.env, reward=dict(saved.reward), reward_gate=saved.reward_gate
    )


def _from_run(run_dir: Path):
    from experiments.models import build_model
    from rlreason.checkpoint import latest_checkpoint, load_trainable
    from rlreason.model.lora import apply_lora

    saved = _run_config(run_dir)
    torch.manual_seed(saved.seed)  # as build_trainer does: same scratch base weights
    model, tokenizer = build_model(saved.model)
    if saved.lora.enabled:
        lo = saved.lora
        apply_lora(model, lo.rank, lo.alpha, tuple(lo.targets), lo.dropout, lo.rslora)
    ckpt = latest_checkpoint(run_dir)
    load_trainable(model, ckpt / "trainable.safetensors")
    step = json.loads((ckpt / "state.json").read_text()).get("step", 0)
    return (
        model.eval(),
        tokenizer,
        {
            "run_dir": str(run_dir),
            "checkpoint": str(ckpt),
            "step": step,
            "env": saved.env.name,
            "env_options": dict(saved.env.options),
        },
    )


def load_policy(cfg: EvalAppConfig):
    """(model, tokenizer, info) for the configured source; info describes where it came from."""
    from experiments.models import build_model
    from rlreason.model.lora import load_adapter

    if cfg.eval.run_dir:
        return _from_run(Path(cfg.eval.run_dir))
    torch.manual_seed(cfg.seed)
    model, tokenizer = build_model(cfg.model)
    info = {"source": cfg.model.source, "path": cfg.model.path, "step": 0}
    if cfg.eval.adapter:
        load_adapter(model, cfg.eval.adapter)
        info["adapter"] = cfg.eval.adapter
    return model.eval(), tokenizer, info


# --------------------------------------------------------------------------- arms and strategies


def build_arms(cfg: EvalAppConfig, env, tokenizer) -> list[Arm]:
    from envs.templates import get_template
    from experiments.train import build_scorer

    arms = []
    for spec in cfg.eval.templates or [cfg.env.template or env.template]:
        name, _, prefill = spec.partition("+")
        try:
            template = get_template(name)
        except KeyError as e:
            raise ConfigError(f"eval.templates entry {spec!r}: {e.args[0]}") from e
        scorer = build_scorer(cfg, env, template)
        prefix = PREFILLS.get(prefill, "")
        arms.append(
            Arm(
                spec,
                lambda t, tp=template, p=prefix: tp.render(t, tokenizer) + p,
                prefix,
                [tokenizer.encode(s) for s in template.stop],
                scorer,
            )
        )
    return arms


def _sample(model, tokenizer, tasks, arm: Arm, s: EvalSettings) -> dict[str, float]:
    from rlreason.eval.runner import evaluate_policy

    return evaluate_policy(
        model,
        tokenizer,
        tasks,
        arm.render,
        arm.scorer,
        samples=s.n,
        temperature=s.temperature,
        max_new_tokens=s.max_new_tokens,
        stop_ids=arm.stop_ids,
        seed=s.seed,
        top_k=s.top_k,
        top_p=s.top_p,
        ks=list(s.k),
        batch_prompts=s.batch_prompts,
        n_boot=s.n_boot,
        completion_prefix=arm.prefix,
    )


def _beam(model, tokenizer, tasks, arm: Arm, s: EvalSettings) -> dict[str, float]:
    from rlreason.eval.metrics import bootstrap_ci
    from rlreason.sampling.beam import beam_search

    prompts = [tokenizer.encode(arm.render(t)) for t in tasks]
    hyps = []  # per problem, best first
    for i in range(0, len(prompts), s.batch_prompts):
        hyps += beam_search(
            model,
            prompts[i : i + s.batch_prompts],
            beam_width=s.beam_width,
            max_new_tokens=s.max_new_tokens,
            length_penalty=s.length_penalty,
            length_norm=s.length_norm,
            stop_ids=arm.stop_ids,
            tokenizer=tokenizer,
        ).hypotheses
    starts = [sum(len(per) for per in hyps[:i]) for i in range(len(hyps))]  # first beam of each
    texts = [arm.prefix + h.text for per in hyps for h in per]
    v = arm.scorer(texts, [t for t, per in zip(tasks, hyps) for _ in per])
    spans = [range(a, a + len(per)) for a, per in zip(starts, hyps)]
    per_problem = {
        "beam_acc": [float(v.correct[a]) for a in starts],
        "beam_any_acc": [float(any(v.correct[j] for j in span)) for span in spans],
        "beam_format_rate": [float(v.format_ok[a]) for a in starts],
        "beam_length_mean": [float(len(per[0].ids)) for per in hyps],
    }
    out = {}
    for name, values in per_problem.items():
        mean, lo, hi = bootstrap_ci(values, n_boot=s.n_boot, seed=s.seed)
        out[f"eval/{name}"], out[f"eval/{name}_lo"], out[f"eval/{name}_hi"] = mean, lo, hi
    return out


STRATEGIES: dict[str, Callable[..., dict[str, float]]] = {"sample": _sample, "beam": _beam}


# --------------------------------------------------------------------------- the run


def evaluate_arms(model, tokenizer, tasks, arms: list[Arm], s: EvalSettings) -> dict[str, float]:
    """Every strategy on every arm; keys `eval/<metric>` become `eval/<arm>/<metric>`."""
    metrics: dict[str, float] = {}
    for arm in arms:
        for strategy in s.strategies:
            out = STRATEGIES[strategy](model, tokenizer, tasks, arm, s)
            metrics.update({f"eval/{arm.name}/{k[len('eval/') :]}": v for k, v in out.items()})
    return metrics


def _plots(metrics: dict[str, float], arms: list[Arm], out: Path) -> dict[str, str]:
    from rlreason.eval.plots import plot_scaling_curve

    plots = {}
    for i, arm in enumerate(arms):
        if not any(k.startswith(f"eval/{arm.name}/pass@") for k in metrics):
            continue  # no `sample` strategy: nothing to plot
        path = out / ("scaling.png" if i == 0 else f"scaling_{arm.name}.png")
        plot_scaling_curve(
            metrics, path, prefix=f"eval/{arm.name}/", title=f"inference-time scaling: {arm.name}"
        )
        plots[arm.name] = str(path)
    return plots


def _out_dir(cfg: EvalAppConfig) -> Path:
    if cfg.eval.out:
        return Path(cfg.eval.out)
    if cfg.eval.run_dir:
        return Path(cfg.eval.run_dir) / "eval"
    return Path(cfg.log.out_dir) / "eval" / time.strftime("%Y%m%d-%H%M%S")


def _log(cfg: EvalAppConfig, out: Path, resolved: dict, metrics: dict, step: int) -> None:
    from rlreason.tracking import ConsoleLogger, build_logger

    wandb_cfg = copy.deepcopy(cfg.log.wandb)
    wandb_cfg.name = wandb_cfg.name or cfg.name
    logger = build_logger(out, resolved, wandb_cfg, cfg.log.console_every)
    logger.loggers = [
        lg for lg in logger.loggers if not isinstance(lg, ConsoleLogger)
    ]  # table instead
    try:
        logger.log(metrics, step=step)
    finally:
        logger.finish()


def _note_env_mismatch(info: dict, env_cfg: EnvConfig) -> None:
    """Print (never fail) when a run dir's training env differs from the env evaluated."""
    if "env" not in info:
        return
    mine, theirs = dict(env_cfg.options), info["env_options"]
    differ = sorted(k for k in set(mine) & set(theirs) if mine[k] != theirs[k])
    if info["env"] != env_cfg.name or differ:
        print(
            f"[rlreason] note: the run trained on env={info['env']}, evaluating env={env_cfg.name}"
            + (f"; options differ: {differ}" if differ else "")
        )


def run(cfg: EvalAppConfig) -> dict:
    """Evaluate, print the table, write eval.json + scaling.png, log; return the JSON dict."""
    from omegaconf import OmegaConf

    from envs.base import build_env
    from rlreason.eval.metrics import format_table

    check(cfg)
    cfg = with_run_task(cfg)
    t0 = time.perf_counter()
    env = build_env(cfg.env.name, **dict(cfg.env.options))
    tasks = list(env.eval)[: cfg.eval.n_problems]
    if not tasks:
        raise ConfigError(f"env {cfg.env.name!r} has no eval tasks (env.options.n_eval?)")
    model, tokenizer, info = load_policy(cfg)
    _note_env_mismatch(info, cfg.env)
    arms = build_arms(cfg, env, tokenizer)
    metrics = evaluate_arms(model, tokenizer, tasks, arms, cfg.eval)
    out = _out_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    plots = _plots(metrics, arms, out)
    resolved = OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)
    result = {
        "metrics": metrics,
        "model": info,
        "plots": plots,
        "num_problems": len(tasks),
        "seconds": time.perf_counter() - t0,
        "config": resolved,
    }
    (out / "eval.json").write_text(json.dumps(result, indent=1, default=str))
    for arm in arms:
        head = f"eval/{arm.name}/"
        print(
            f"== {arm.name}\n"
            + format_table(
                {
                    k[len(head) :]: v
                    for k, v in metrics.items()
                    if k.startswith(head) and "/difficulty/" not in k
                }
            )
        )
    _log(cfg, out, resolved, metrics, info.get("step", 0))
    print(
        f"[rlreason] eval of {len(tasks)} problems in {result['seconds']:.1f}s; "
        f"wrote {out / 'eval.json'}"
    )
    return result


def register() -> None:
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="eval_base_config", node=EvalAppConfig)


def _hydra_main(cfg) -> None:
    from omegaconf import OmegaConf

    try:
        run(OmegaConf.to_object(cfg))
    except ConfigError as e:
        print(f"[rlreason] {e}", file=sys.stderr)
        sys.exit(2)


def main() -> None:
    import hydra

    register()
    conf = str(Path(__file__).resolve().parent / "conf")  # absolute: works from any cwd
    hydra.main(config_path=conf, config_name="eval", version_base=None)(_hydra_main)()


if __name__ == "__main__":
    main()
