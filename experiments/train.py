"""`rlreason-train`: the Hydra app that builds a run from config and hands it to the Trainer.

`rlreason-train` alone runs `experiment=r1_zero_tiny` (the built-in R1-Zero demo on CPU). Every
override is checked against the typed schema (`rlreason.config.Config` with one `env` node per
registered env, experiments/schema.py), then `validate` rejects invalid combinations. Reward
ablations are multiruns: `rlreason-train -m reward.format.weight=0,0.1 seed=1,2,3` puts the arms in
one W&B group (the experiment name) with the arm in each run's name.

This module only composes (builders in experiments/build.py and scorer.py): env, template, model
(+ LoRA), scorer, logger, trainer; then writes `config.yaml`, `model.json` (the model actually
built: for `model.source=base/local/hf` its architecture comes from the checkpoint, not from the
`model.*` shape fields), `summary.json` and `report.md` into the run directory.

Data-parallel: `torchrun --standalone --nproc_per_node=N --no-python rlreason-train <overrides>`
runs N ranks (rlreason/distributed.py) that together compute what one process computes for the
same `train.prompts_per_step` (divisible by N); rank 0 alone prints, logs and writes the run's
files, and an error on any rank prints `[rlreason rank r] <message>` and exits non-zero (torchrun
then stops the others).
"""

from __future__ import annotations

import copy
import json
import random
import sys
import time
from pathlib import Path

import torch

from experiments.build import build_scorer
from rlreason import distributed
from rlreason.config import Config, ConfigError, resolve_schedule, validate
from rlreason.model.gpt import DTYPES
from rlreason.model.precision import mixed_precision, precision_record


def _to_config(cfg) -> Config:
    from omegaconf import OmegaConf

    return OmegaConf.to_object(cfg) if not isinstance(cfg, Config) else cfg


def build_trainer(cfg: Config, arm: str = "", resolved: dict | None = None):
    from experiments.build import arm_label, build_env, build_policy, run_directory
    from experiments.schema import configured_rewards
    from rlreason.checkpoint import latest_checkpoint
    from rlreason.model.lora import count_parameters
    from rlreason.rl import fsdp
    from rlreason.rl.advantages import get_estimator
    from rlreason.rl.trainer import Trainer
    from rlreason.rl.value import ValueHead
    from rlreason.tracking import NullLogger, build_logger

    dist = distributed.init(cfg.model.device)
    say = print if dist.is_main else (lambda *a, **k: None)
    validate(cfg, dist.world)
    fsdp.check(cfg, dist.world, get_estimator(cfg.algo.advantage).needs_value)  # before loading
    for note in resolve_schedule(cfg):
        say(f"[rlreason] {note}")
    wants_teacher = get_estimator(cfg.algo.advantage).needs_teacher
    if wants_teacher and cfg.teacher.source == "none":  # before any model loads
        raise ConfigError(
            f"algo.advantage={cfg.algo.advantage} scores the student's samples with a teacher: "
            "set teacher.source=run teacher.path=<run dir>, or a model (teacher.source=base, "
            "local or hf with teacher.path=<model dir>)"
        )
    if not wants_teacher and cfg.teacher.source != "none":
        say(
            f"[rlreason] note: teacher.source={cfg.teacher.source} is not used by "
            f"algo.advantage={cfg.algo.advantage}; not loading it"
        )
    cfg.reward = configured_rewards(cfg.reward)
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    env, template = build_env(cfg)
    check_splits(cfg, env)  # before the model loads
    scorer = build_scorer(cfg, env, template)
    model, tokenizer = build_policy(cfg.model, cfg.lora)
    set_cpu_threads(cfg.train.threads)
    say(f"[rlreason] {count_parameters(model)}" + (f" x {dist.world} ranks" * (dist.world > 1)))
    render = bind_render(template, tokenizer, env.train[0])
    check_lengths(cfg, model, tokenizer, render, env)
    teacher = build_teacher(cfg, model, tokenizer, render, env, say) if wants_teacher else None
    run_dir = run_directory(cfg, arm, dist)
    run_dir.mkdir(parents=True, exist_ok=True)
    run_id = None
    if cfg.train.resume:
        run_id = json.loads((latest_checkpoint(run_dir) / "state.json").read_text()).get("run_id")
    wandb_cfg = copy.deepcopy(cfg.log.wandb)
    wandb_cfg.group = wandb_cfg.group or cfg.name
    wandb_cfg.name = wandb_cfg.name or f"{arm_label(arm)}-seed{cfg.seed}"
    logger = NullLogger()  # ranks other than 0 log nothing
    if dist.is_main:
        logger = build_logger(run_dir, resolved or {}, wandb_cfg, cfg.log.console_every, run_id)
    reference = None  # under LoRA the reference is the model with its adapters off
    if not cfg.lora.enabled and cfg.algo.kl_coef != 0:  # a copy only when KL is in the loss
        reference = copy.deepcopy(model).eval().requires_grad_(False)
        mixed_precision(reference, DTYPES[cfg.model.dtype])  # frozen: stored in compute dtype
    value_head = None
    if get_estimator(cfg.algo.advantage).needs_value:
        value_head = ValueHead(model.config.d_model).to(next(model.parameters()).device)
    model, reference = fsdp.STRATEGIES[cfg.train.parallel](model, reference, dist)
    if dist.world > 1:  # every rank built the same model; dropout and the like differ per rank
        random.seed(cfg.seed * 1000 + dist.rank)
        torch.manual_seed(cfg.seed * 1000 + dist.rank)
    trainer = Trainer(
        cfg,
        model,
        tokenizer,
        env.train,
        env.eval,
        render,
        scorer,
        template.stop_strings(tokenizer),
        run_dir,
        logger,
        reference=reference,
        value_head=value_head,
        teacher=teacher,
        dist=dist,
    )
    if cfg.train.resume:
        trainer.resume(run_dir)
        say(f"[rlreason] resumed {run_dir} at step {trainer.step}")
    return trainer


def build_teacher(cfg: Config, model, tokenizer, render, env, say=print):
    """The frozen teacher of `teacher.*` on the student's device (experiments/teacher.py), checked
    to tokenize a rendered train prompt plus a completion-like tail as the student does and to
    fit every prompt plus `sampling.max_new_tokens` in its context. Not saved in checkpoints: a
    resumed run loads it again from its config."""
    import dataclasses

    from experiments.teacher import check_same_tokenizer, load_teacher
    from rlreason.model.lora import count_parameters

    device = str(next(model.parameters()).device)
    teacher, teacher_tok, info = load_teacher(
        cfg.teacher, dataclasses.replace(cfg.model, device=device)
    )
    probe = render(env.train[0]) + " <think>1+2</think> <answer>3</answer>"
    check_same_tokenizer(tokenizer, teacher_tok, probe)
    check_lengths(cfg, teacher, tokenizer, render, env)
    where = info.get("run_dir") or info.get("path") or "built-in"
    say(
        f"[rlreason] teacher: {info['source']} ({where}), {info['dtype']}, "
        f"{count_parameters(teacher).total:,} frozen parameters on {device}"
    )
    return teacher


def check_splits(cfg: Config, env) -> None:
    """An env with no train tasks, or no eval tasks while evaluation is on, is a config error."""
    name = cfg.env.name
    if not env.train:
        raise ConfigError(f"env={name}: the train split is empty; check the env's options")
    if cfg.eval.n_problems > 0 and not env.eval:
        raise ConfigError(
            f"env={name} has no eval split, but eval.n_problems={cfg.eval.n_problems}: hold out "
            "problems (env.n_eval=N, or env.eval_path=FILE for jsonl) or set eval.n_problems=0 "
            "to train without evaluation"
        )


CHECK_ALL, CHECK_LONGEST = 20_000, 2_000


def check_lengths(cfg: Config, model, tokenizer, render, env) -> None:
    """Every prompt plus `sampling.max_new_tokens` fits the model's context, checked before the
    first rollout; the error names the longest prompt's task. Data sets over `CHECK_ALL` prompts
    tokenize only their `CHECK_LONGEST` longest rendered prompts (by characters), to keep the
    check to seconds."""
    limit = getattr(getattr(model, "config", None), "max_seq_len", None)
    if limit is None:
        return
    texts = [(render(t), t) for t in list(env.train) + list(env.eval)[: cfg.eval.n_problems]]
    if len(texts) > CHECK_ALL:
        texts = sorted(texts, key=lambda x: len(x[0]), reverse=True)[:CHECK_LONGEST]
    new = max(cfg.sampling.max_new_tokens, cfg.eval.max_new_tokens or 0)
    n, task = max(((len(tokenizer.encode_prompt(x)), t) for x, t in texts), key=lambda x: x[0])
    if n + new > limit:
        raise ConfigError(
            f"the longest prompt ({n} tokens, task {task.meta.get('id') or task.prompt[:40]!r}, "
            f"template {cfg.env.template or env.template}) plus {new} new tokens exceeds the "
            f"model's context of {limit}: lower sampling.max_new_tokens / eval.max_new_tokens, "
            "use a shorter template or drop the longest problems"
        )


def bind_render(template, tokenizer, example):
    """`render(task) -> str` with the tokenizer bound (the `chat` template needs it), tried on
    one task so a template that cannot render fails before training starts."""

    def render(task):
        return template.render(task, tokenizer)

    try:
        render(example)
    except ValueError as e:
        raise ConfigError(f"env.template={template.name}: {e}") from e
    return render


def model_record(cfg: Config, model) -> dict:
    """What was trained: source, checkpoint path, the model's own config and parameter counts."""
    from rlreason.model.lora import count_parameters

    count = count_parameters(model)
    config = getattr(model, "config", None)
    return {
        "source": cfg.model.source,
        "path": cfg.model.path,
        "config": config.to_dict() if hasattr(config, "to_dict") else None,
        "parameters": count.total,
        "trainable": count.trainable,
        "lora": count.lora,
        "precision": precision_record(model),
    }


def set_cpu_threads(threads: int | None) -> None:
    """`train.threads`: a fixed CPU thread count; None: automatic on CPU (rlreason.threads: the
    cores other processes leave free, re-checked every 2 s while the run goes on)."""
    if threads is not None:
        torch.set_num_threads(threads)
    elif not torch.cuda.is_available():
        from rlreason.threads import install

        install()


def resume_config(cfg: Config) -> Config:
    """On resume, the run's saved config wins; only train.resume / train.stop_after come from the CLI."""
    from experiments.build import load_run_config

    old = load_run_config(Path(cfg.train.resume), "train.resume")
    old.train.resume, old.train.stop_after = cfg.train.resume, cfg.train.stop_after
    return old


def run(cfg: Config, arm: str = "") -> dict:
    from omegaconf import OmegaConf

    from experiments.report.summary import finish_run
    from experiments.schema import configured_rewards

    if cfg.train.resume:
        cfg = resume_config(cfg)
    cfg.reward = configured_rewards(cfg.reward)
    resolved = OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)
    t0 = time.perf_counter()
    trainer = build_trainer(cfg, arm, resolved)
    if not cfg.train.resume and trainer.dist.is_main:
        (trainer.run_dir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.structured(cfg)))
        (trainer.run_dir / "model.json").write_text(
            json.dumps(model_record(cfg, trainer.model), indent=1) + "\n"
        )
    try:
        result = trainer.run()
    finally:
        trainer.logger.finish()
    if not trainer.dist.is_main:
        trainer.dist.close()
        return {**result, "rank": trainer.dist.rank}
    summary = finish_run(trainer, result, time.perf_counter() - t0)
    trainer.dist.close()
    return summary


def _overrides() -> list[str]:
    try:
        from hydra.core.hydra_config import HydraConfig

        return list(HydraConfig.get().overrides.task)
    except Exception:
        return []


def arm_name(overrides: list[str]) -> str:
    """The overrides that define an ablation arm (not seed, train.*, log.*, eval.*, experiment)."""
    skip = ("seed=", "train.", "log.", "eval.", "experiment=")
    return ",".join(o for o in overrides if not o.lstrip("+~").startswith(skip))


def _hydra_main(cfg, job: str | None = None) -> None:
    """Run `job` (None: the config's `job`) with errors reported per rank."""
    from experiments.jobs import get_job

    me = distributed.from_env()
    tag = f"[rlreason rank {me.rank}]" if me.world > 1 else "[rlreason]"
    try:
        cfg, overrides = _to_config(cfg), _overrides()
        cfg.job = job or cfg.job
        if not cfg.train.resume:
            cfg.log.overrides = overrides
        get_job(cfg.job)(cfg, arm_name(overrides))
    except ConfigError as e:
        print(f"{tag} {e}", file=sys.stderr)
        sys.exit(2)
    except Exception as e:
        if me.world == 1:
            raise
        import traceback

        traceback.print_exc()
        print(f"{tag} {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        sys.exit(1)


def hydra_app(config_name: str = "config", job: str | None = None) -> None:
    """Run the Hydra app over conf/<config_name>.yaml; `job` fixes the job (else `cfg.job`)."""
    import functools

    import hydra

    from experiments.schema import register

    register()  # the schema: Config and one node per env
    conf = str(Path(__file__).resolve().parent / "conf")  # absolute: works from any cwd
    task = functools.wraps(_hydra_main)(functools.partial(_hydra_main, job=job))
    hydra.main(config_path=conf, config_name=config_name, version_base=None)(task)()


def main() -> None:
    hydra_app()


if __name__ == "__main__":
    main()
