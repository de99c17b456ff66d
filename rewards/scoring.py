"""The scorer: rewards, verdicts and text diagnostics for a batch of completions.

`build_scorer(env, template, overrides, gate)` composes the env's default rewards (declared once,
in the env module) with config overrides `{name: (weight, options)}`. The env also says which
reward decides correctness (`env.accuracy`; default: its first reward) and how answers vote
(`env.vote`: lazy "module:attr" paths of an answer extractor and an answer key, or None); a
reward the env defines itself is found by name through `rewards.registry`. When the template
pre-fills `<think>`, every reward whose signature accepts `prefilled` gets `prefilled=True`, and
the format and reasoning checks read completions that way too. `Scorer(texts, tasks)` returns
`Verdicts`, the shape `rlreason.scoring.Scored` describes.
Not here: the reward functions (registry), metrics over problems (rlreason.eval).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from envs.tags import has_reasoning, is_strict_format
from rewards.diagnostics import text_diagnostics
from rewards.registry import build_composed, resolve_reward

CORRECT_AT = 1.0 - 1e-6  # a component value at or above this counts as a correct answer


@dataclass
class Verdicts:
    total: list[float]
    components: dict[str, list[float]]
    correct: list[bool]
    format_ok: list[bool]
    answers: list[Any]
    has_reasoning: list[bool]
    metrics: dict[str, float]


@dataclass
class Scorer:
    """Scores completions with `reward_fn` (a `ComposedReward`) and reads their structure.

    `correct`: the `accuracy_key` component is >= 1 (up to rounding); `format_ok`: the strict
    `<think>…</think><answer>…</answer>` structure; `answers`: `answer_fn` of each completion
    (None where it raises); `metrics`: `reward/*`, `accuracy` and the `rollout/*` diagnostics.
    """

    reward_fn: Callable[[list[str], list], Any]
    accuracy_key: str
    prefilled: bool = False
    answer_fn: Callable[[str], Any] | None = None
    answer_key: Callable[[Any], Any] | None = None

    def __call__(self, texts: list[str], tasks: list) -> Verdicts:
        out = self.reward_fn(texts, tasks)
        if self.accuracy_key not in out.components:
            raise KeyError(
                f"Scorer: accuracy component {self.accuracy_key!r} not among "
                f"{sorted(out.components)}"
            )
        correct = [v >= CORRECT_AT for v in out.components[self.accuracy_key]]
        metrics = {
            **out.metrics(),
            "accuracy": sum(correct) / max(len(texts), 1),
            **text_diagnostics(texts, self.prefilled),
        }
        return Verdicts(
            total=list(out.total),
            components=dict(out.components),
            correct=correct,
            format_ok=[is_strict_format(t, self.prefilled) for t in texts],
            answers=[self._answer(t) for t in texts],
            has_reasoning=[has_reasoning(t, self.prefilled) for t in texts],
            metrics=metrics,
        )

    def _answer(self, text: str) -> Any:
        if self.answer_fn is None:
            return None
        try:
            return self.answer_fn(text)
        except Exception:  # a hostile completion must not stop scoring
            return None


def _resolve(path: str | Callable | None) -> Callable | None:
    """A callable, or the object a "module:attr" path names (imported now)."""
    if path is None or callable(path):
        return path
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def _accepts(reward: str, option: str) -> bool:
    """Whether the reward (or its `make_` factory) takes a keyword `option`."""
    try:
        return option in inspect.signature(resolve_reward(reward)).parameters
    except (TypeError, ValueError):
        return False


def reward_spec(
    env, template, overrides: Mapping[str, tuple[float, Mapping]], gate: str | None
) -> dict[str, dict]:
    """{component: {"weight": w, **options}}: the env's defaults updated by `overrides`.

    A zero-weight term the env does not use by default is dropped (an ablation arm that zeroes
    `language` must not add a language check to an env without one); a gate is always kept.
    """
    terms = {name: (float(w), {}) for name, w in env.rewards.items()}
    for name, (weight, options) in overrides.items():
        if weight == 0 and name not in terms and name != gate:
            continue
        terms[name] = (weight, dict(options))
    spec = {}
    for name, (weight, options) in terms.items():
        if getattr(template, "prefilled", False) and _accepts(
            options.get("reward", name), "prefilled"
        ):
            options.setdefault("prefilled", True)
        spec[name] = {"weight": weight, **options}
    if gate and gate not in spec:
        raise ValueError(
            f"reward_gate={gate!r} names no reward component; add reward.{gate}.weight=0"
        )
    return spec


def build_scorer(
    env,
    template,
    overrides: Mapping[str, tuple[float, Mapping]] | None = None,
    gate: str | None = None,
) -> Scorer:
    """The reward composition and verdict logic for `env` rendered with `template`."""
    spec = reward_spec(env, template, overrides or {}, gate)
    accuracy = getattr(env, "accuracy", None) or next(iter(env.rewards))
    if accuracy not in spec:
        raise ValueError(
            f"env {env.name!r}: accuracy reward {accuracy!r} is not among {list(spec)}"
        )
    vote = getattr(env, "vote", None)
    extract, key = (_resolve(vote[0]), _resolve(vote[1])) if vote else (None, None)
    prefilled = bool(getattr(template, "prefilled", False))
    return Scorer(build_composed(spec, gate=gate), accuracy, prefilled, extract, key)
