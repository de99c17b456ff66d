"""`rlreason-eval`: evaluate a policy with several inference-time strategies; table, JSON, PNG, W&B.

    rlreason-eval model=base env=arithmetic eval.samples=16 eval.k=[1,4,16]
    rlreason-eval eval.run_dir=runs/r1_zero_tiny/<run>           # the run's latest checkpoint
    rlreason-eval model=local model.path=<dir> eval.adapter=<dir>  # base model + saved adapter
    rlreason-eval eval.templates=[tiny+cot,tiny+direct]            # chain of thought vs direct

The policy is the `model` group plus `eval.adapter`, or with `eval.run_dir` the run's own model
(rebuilt from its config.yaml, seeded as training was) with its latest trainable weights, env,
template and rewards (`eval.run_env=false`: this command's). Arms are `eval.templates` entries,
`<template>[+<prefill>]` (`PREFILLS`, put back in front of completions before scoring).
Strategies (`STRATEGIES`): `sample` (greedy + `eval.samples` draws: pass@k, maj@k, best_of_k) and
`beam`. Metrics `eval/<arm>/<metric>` with bootstrap `_lo`/`_hi`, written to `eval.out`
(eval.json, scaling*.png, metrics.jsonl) and W&B. The schema is `EvalAppConfig`.

Not here: metric definitions (rlreason.eval.metrics), sampling (rlreason.sampling.engine), training.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from experiments.build import load_run_config
from experiments.schema import EvalAppConfig, configured_rewards, env_options, register
from rlreason.config import (
    WANDB_MODES,
    ConfigError,
    EnvConfig,
    EvalConfig,
)

PREFILLS: dict[str, str] = {"cot": "<think>", "direct": "<answer>"}


@dataclass
class Arm:
    name: str  # "<template>" or "<template>+<prefill>"
    render: Callable[[Any], str]
    prefix: str  # the prefill, put back in front of completions
    stop_strings: tuple[str, ...]  # matched on decoded text
    scorer: Any  # rlreason.eval.runner.Scorer


def check(cfg: EvalAppConfig) -> EvalAppConfig:
    """Raise ConfigError naming every invalid `eval.*` setting before any work starts."""
    from rlreason.sampling.beam import LENGTH_PENALTIES

    s, e = cfg.eval, []
    rules = [
        (s.samples >= 1, f"eval.samples={s.samples}: must be >= 1"),
        (
            bool(s.k) and all(1 <= k <= s.samples for k in s.k),
            f"eval.k={list(s.k)}: each k in [1, eval.samples={s.samples}]",
        ),
        (s.n_problems >= 1, f"eval.n_problems={s.n_problems}: must be >= 1"),
        (s.temperature >= 0, f"eval.temperature={s.temperature}: must be >= 0"),
        (
            s.max_new_tokens is not None and s.max_new_tokens >= 1,
            f"eval.max_new_tokens={s.max_new_tokens}: must be >= 1",
        ),
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
            cfg.log.wandb.mode in WANDB_MODES,
            f"log.wandb.mode={cfg.log.wandb.mode!r}: choose one of {list(WANDB_MODES)}",
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


def with_run_task(cfg: EvalAppConfig) -> EvalAppConfig:
    """With `eval.run_dir` and `eval.run_env`: cfg with the run's env, rewards and reward gate."""
    if not (cfg.eval.run_dir and cfg.eval.run_env):
        return cfg
    saved = load_run_config(Path(cfg.eval.run_dir), "eval.run_dir")
    return dataclasses.replace(
        cfg, env=saved.env, reward=dict(saved.reward), reward_gate=saved.reward_gate
    )


def load_policy(cfg: EvalAppConfig):
    """(model, tokenizer, info) for the configured source; info describes where it came from."""
    from experiments.models import build_model
    from rlreason.model.hf.peft import load_adapter_dir

    if cfg.eval.run_dir:
        from experiments.teacher import load_run_policy

        return load_run_policy(Path(cfg.eval.run_dir), key="eval.run_dir")
    torch.manual_seed(cfg.seed)
    model, tokenizer = build_model(cfg.model)
    info = {"source": cfg.model.source, "path": cfg.model.path, "step": 0}
    if cfg.eval.adapter:  # a PEFT directory (rlreason-export --peft) or lora.save_adapter's
        try:
            info["adapter_format"] = load_adapter_dir(model, cfg.eval.adapter)
        except (FileNotFoundError, ValueError) as e:  # CheckpointError is a ValueError
            raise ConfigError(f"eval.adapter={cfg.eval.adapter}: {e}") from e
        info["adapter"] = cfg.eval.adapter
    return model.eval(), tokenizer, info


# --------------------------------------------------------------------------- arms and strategies


def build_arms(cfg: EvalAppConfig, env, tokenizer) -> list[Arm]:
    from envs.templates import get_template
    from experiments.build import build_scorer

    arms, cfg = [], dataclasses.replace(cfg, reward=configured_rewards(cfg.reward))
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
                template.stop_strings(tokenizer),
                scorer,
            )
        )
    return arms


def _sample(model, tokenizer, tasks, arm: Arm, s: EvalConfig) -> dict[str, float]:
    from rlreason.eval.runner import evaluate_policy

    return evaluate_policy(
        model,
        tokenizer,
        tasks,
        arm.render,
        arm.scorer,
        samples=s.samples,
        temperature=s.temperature,
        max_new_tokens=s.max_new_tokens,
        stop_strings=arm.stop_strings,
        seed=s.seed,
        top_k=s.top_k,
        top_p=s.top_p,
        ks=list(s.k),
        batch_prompts=s.batch_prompts,
        n_boot=s.n_boot,
        completion_prefix=arm.prefix,
    )


def _beam(model, tokenizer, tasks, arm: Arm, s: EvalConfig) -> dict[str, float]:
    from rlreason.eval.metrics import bootstrap_ci
    from rlreason.sampling.beam import beam_search

    prompts = [tokenizer.encode_prompt(arm.render(t)) for t in tasks]
    hyps = []  # per problem, best first
    for i in range(0, len(prompts), s.batch_prompts):
        hyps += beam_search(
            model,
            prompts[i : i + s.batch_prompts],
            beam_width=s.beam_width,
            max_new_tokens=s.max_new_tokens,
            length_penalty=s.length_penalty,
            length_norm=s.length_norm,
            stop_strings=arm.stop_strings,
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


def evaluate_arms(model, tokenizer, tasks, arms: list[Arm], s: EvalConfig) -> dict[str, float]:
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
    mine, theirs = env_options(env_cfg), info["env_options"]
    differ = sorted(k for k in set(mine) & set(theirs) if mine[k] != theirs[k])
    if info["env"] != env_cfg.name or differ:
        print(
            f"[rlreason] note: the run trained on env={info['env']}, evaluating env={env_cfg.name}"
            + (f"; options differ: {differ}" if differ else "")
        )


def run(cfg: EvalAppConfig) -> dict:
    """Evaluate, print the table, write eval.json + scaling.png, log; return the JSON dict."""
    from omegaconf import OmegaConf

    from experiments.build import build_env
    from rlreason.eval.metrics import format_table

    check(cfg)
    cfg = with_run_task(dataclasses.replace(cfg, reward=configured_rewards(cfg.reward)))
    t0 = time.perf_counter()
    env, _ = build_env(cfg)
    tasks = list(env.eval)[: cfg.eval.n_problems]
    if not tasks:
        raise ConfigError(f"env {cfg.env.name!r} has no eval tasks (env.n_eval?)")
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


def _hydra_main(cfg) -> None:
    from omegaconf import OmegaConf

    try:
        run(OmegaConf.to_object(cfg))
    except ConfigError as e:
        print(f"[rlreason] {e}", file=sys.stderr)
        sys.exit(2)


def main() -> None:
    import hydra

    register()  # the schema: rlreason-eval's EvalAppConfig and one node per env
    conf = str(Path(__file__).resolve().parent / "conf")  # absolute: works from any cwd
    hydra.main(config_path=conf, config_name="eval", version_base=None)(_hydra_main)()


if __name__ == "__main__":
    main()
