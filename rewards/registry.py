"""Reward registry: names picked from config -> reward callables, and composition from a spec.

`REWARDS` maps a name to a lazy `"module:attr"` (or a callable registered at run time), so this
module imports no reward module and no env. A reward an env module defines itself is declared in
its `EnvSpec.rewards` and found by name (`env_rewards`, `reward_names`): the registry names no env.

`build_reward(name, **options)`: a target named `make_*` is a factory called once with the
options; any other target is a plain reward whose keyword options are bound with
`functools.partial`. Options are checked against the signature first (a clear error otherwise),
then by the reward's own `check_options(**options)` when it has one.
`build_composed(spec)`: `{"math": {"weight": 1.0}, "format": 0.1}` -> `ComposedReward`; a bare
number is a weight, a missing weight 1.0, `"reward": "<name>"` lets one reward appear twice.
Not here: discovering rewards by scanning packages, or config dataclasses (the config owns them).
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from rewards.base import ComposedReward, RewardFn

REWARDS: dict[str, str | Callable[..., Any]] = {
    "format": "rewards.format:strict_format_reward",
    "format_soft": "rewards.format:soft_format_reward",
    "tag_count": "rewards.format:tag_count_reward",
    "language": "rewards.language:language_reward",
    "overlong": "rewards.length:overlong_reward",
    "cosine_length": "rewards.length:make_cosine_length_reward",
    "math": "rewards.math:math_reward",
    "code": "rewards.code:code_reward",
}


def _check_path(name: str, path: str) -> None:
    module, sep, attr = path.partition(":")
    if not (module and sep and attr) or ":" in attr:
        raise ValueError(f"reward {name!r}: import path {path!r} must look like 'module:attr'")


def register_reward(
    name: str, target: str | Callable[..., Any], *, overwrite: bool = False
) -> None:
    """Add `name` -> `target` ("module:attr" or a callable). Re-registering the same target is a
    no-op; a different target for a taken name needs `overwrite=True`."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"register_reward: name must be a non-empty string, got {name!r}")
    if isinstance(target, str):
        _check_path(name, target)
    elif not callable(target):
        raise ValueError(
            f"register_reward({name!r}): target must be 'module:attr' or a"
            f" callable, got {type(target).__name__}"
        )
    if name in REWARDS and REWARDS[name] != target and not overwrite:
        raise ValueError(
            f"register_reward: {name!r} is already registered as"
            f" {REWARDS[name]!r}; pass overwrite=True to replace it"
        )
    REWARDS[name] = target


def env_rewards() -> dict[str, str]:
    """name -> "module:attr" of the rewards envs define themselves (`EnvSpec.rewards` of every
    registered env; importing the env modules, which are pure Python)."""
    from envs.base import ENVS, env_spec

    found: dict[str, str] = {}
    for env in list(ENVS):
        found.update(env_spec(env).rewards)
    return found


def reward_names() -> list[str]:
    """Every name `build_reward` accepts: the registry's and the envs' own rewards."""
    return sorted({*REWARDS, *env_rewards()})


def resolve_reward(name: str) -> Callable[..., Any]:
    """The object registered under `name` (else an env's own reward of that name, else a
    "module:attr" path), importing its module if needed."""
    target = REWARDS.get(name) or env_rewards().get(name) or (name if ":" in name else None)
    if target is None:
        raise ValueError(f"unknown reward {name!r}; known rewards: {reward_names()}")
    if callable(target):
        return target
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(
            f"reward {name!r}: cannot import {module_name!r} for {target!r}"
            f" ({type(exc).__name__}: {exc})"
        ) from exc
    obj = getattr(module, attr, None)
    if not callable(obj):
        raise ImportError(f"reward {name!r}: {target!r} names no callable in {module_name!r}")
    return obj


def _check_options(name: str, fn: Callable[..., Any], placeholders: tuple, kwargs: dict) -> None:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return  # builtins without a signature: let the call itself complain
    try:
        sig.bind(*placeholders, **kwargs)
    except TypeError as exc:
        raise ValueError(
            f"reward {name!r}: options {sorted(kwargs)} do not fit"
            f" {getattr(fn, '__name__', fn)}{sig} ({exc})"
        ) from None


def build_reward(name: str, **kwargs: Any) -> RewardFn:
    """A ready reward callable for `name` with options `kwargs` (see the module convention)."""
    obj = resolve_reward(name)
    if getattr(obj, "__name__", "").startswith("make_"):
        _check_options(name, obj, (), kwargs)
        reward = obj(**kwargs)
        if not callable(reward):
            raise ValueError(
                f"reward {name!r}: factory {obj.__name__} returned"
                f" {type(reward).__name__}, not a callable"
            )
        return reward
    _check_options(name, obj, ([], []), kwargs)
    check = getattr(obj, "check_options", None)  # option values, checked before any scoring
    if check is not None:
        try:
            check(**kwargs)
        except ValueError as e:
            raise ValueError(f"reward {name!r}: {e}") from None
    return functools.partial(obj, **kwargs) if kwargs else obj


def _component(key: str, entry: Any) -> tuple[str, float, dict[str, Any]]:
    """(registry name, weight, options) for one spec entry."""
    if isinstance(entry, (int, float)) and not isinstance(entry, bool):
        return key, float(entry), {}
    if not isinstance(entry, Mapping):
        raise ValueError(
            f"reward spec {key!r}: expected a weight or a mapping like"
            f" {{'weight': 1.0, ...options}}, got {entry!r}"
        )
    options = dict(entry)
    weight = options.pop("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)):
        raise ValueError(f"reward spec {key!r}: weight must be a number, got {weight!r}")
    return str(options.pop("reward", key)), float(weight), options


def build_composed(
    spec: Mapping[str, Any],
    gate: str | None = None,
    gated: tuple[str, ...] | None = None,
    error_value: float = 0.0,
) -> ComposedReward:
    """`ComposedReward` from `{component name: weight | {"weight": w, "reward": n, **opts}}`."""
    if not isinstance(spec, Mapping) or not spec:
        raise ValueError(f"reward spec must be a non-empty mapping, got {spec!r}")
    components = {}
    for key, entry in spec.items():
        reward_name, weight, options = _component(str(key), entry)
        components[str(key)] = (build_reward(reward_name, **options), weight)
    return ComposedReward(
        components,
        gate=gate,
        gated=None if gated is None else tuple(gated),
        error_value=error_value,
    )
