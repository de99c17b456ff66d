"""How good the demo base model is: accuracy, format and thinking statistics of its completions.

`evaluate_base` samples completions of the arithmetic env's eval split with the engine and scores
them with the rewards: accuracy (`rewards.math`), strict format rate (`rewards.format`), the
share of completions that open `<think>`, the accuracy of thinking vs direct completions and the
mean completion length. `evaluate_default` runs it greedy and at T=1 with the `BaseEvalConfig` settings.

Not here: training the base or caching it (`experiments.demo.pretrain`).
"""

from __future__ import annotations

from dataclasses import dataclass

from envs.base import build_env
from envs.templates import get_template
from rewards.format import is_strict_format
from rewards.math import math_reward
from rlreason.sampling.engine import generate


@dataclass(frozen=True)
class BaseEvalConfig:
    n_problems: int = 500  # first n of the env's eval split
    samples: int = 2  # sampled completions per problem at temperature 1
    max_new_tokens: int = 96
    seed: int = 0


def _completion_stats(texts: list[str], scores: list[float]) -> dict:
    think = [i for i, t in enumerate(texts) if "<think>" in t]
    direct = [i for i, t in enumerate(texts) if "<think>" not in t]
    mean = lambda idx: sum(scores[i] for i in idx) / len(idx) if idx else None
    return {
        "accuracy": sum(scores) / len(scores),
        "think_share": len(think) / len(texts),
        "think_accuracy": mean(think),
        "direct_accuracy": mean(direct),
        "format_rate": sum(map(is_strict_format, texts)) / len(texts),
        "n": len(texts),
    }


def evaluate_base(
    model,
    tokenizer,
    tasks,
    *,
    temperature: float,
    samples: int = 1,
    max_new_tokens: int = 96,
    seed: int = 0,
    template: str = "tiny",
) -> dict:
    """Accuracy, format rate, think share/accuracy and mean length of completions of `tasks`."""
    tmpl = get_template(template)
    prompts = [tokenizer.encode_prompt(tmpl.render(t)) for t in tasks]
    out = generate(
        model,
        prompts,
        n=samples,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        seed=seed,
        tokenizer=tokenizer,
        stop_strings=tmpl.stop_strings(tokenizer),
    )
    expanded = [t for t in tasks for _ in range(samples)]  # prompt-major, like the engine
    scores = list(math_reward(out.texts, expanded))
    stats = _completion_stats(out.texts, scores)
    stats["mean_length"] = sum(len(c) for c in out.completion_ids) / len(out.completion_ids)
    return stats


def evaluate_default(model, tokenizer, env_kwargs: dict, e: BaseEvalConfig) -> dict:
    """Greedy and T=1 results on the first `e.n_problems` problems of the arithmetic eval split
    built with `env_kwargs` (`PretrainConfig.env_kwargs()`)."""
    tasks = list(build_env("arithmetic", **env_kwargs).eval)[: e.n_problems]
    return {
        "greedy": evaluate_base(
            model, tokenizer, tasks, temperature=0.0, max_new_tokens=e.max_new_tokens, seed=e.seed
        ),
        "sampled": evaluate_base(
            model,
            tokenizer,
            tasks,
            temperature=1.0,
            samples=e.samples,
            max_new_tokens=e.max_new_tokens,
            seed=e.seed,
        ),
    }


def summary_line(results: dict) -> str:
    g, s = results["greedy"], results["sampled"]
    pct = lambda x: "n/a" if x is None else f"{x:.1%}"
    return (
        f"greedy acc {pct(g['accuracy'])} | sampled acc {pct(s['accuracy'])}, think "
        f"{pct(s['think_share'])} (right {pct(s['think_accuracy'])}), direct right "
        f"{pct(s['direct_accuracy'])}, format {pct(s['format_rate'])}, "
        f"length {s['mean_length']:.1f}"
    )
