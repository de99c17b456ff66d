"""The Hydra schema of the commands: `rlreason.config`, `EvalAppConfig`, one `env` node per env.

Each entry of `envs.base.ENVS` becomes a structured node in the ConfigStore group `env` under its
name, generated from the env's own config dataclass: `env=countdown` selects it, its options are
flat (`env.digits=3`, `env.path=...`) next to `env.name` and `env.template`, and a typo in an
option fails when Hydra composes the config. A new env needs no YAML file here.

Not here: building the env (experiments/build.py), validating option values (the env's config).
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any, Optional, Union

from rlreason.config import (
    Config,
    EnvConfig,
    EvalConfig,
    LogConfig,
    ModelConfig,
    RewardTerm,
)


@dataclasses.dataclass
class EvalAppConfig:
    """`rlreason-eval`'s root: the policy (`model`), the task (`env`, `reward`) and `eval.*`."""

    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    env: EnvConfig = dataclasses.field(default_factory=EnvConfig)
    reward: dict[str, RewardTerm] = dataclasses.field(default_factory=dict)
    reward_gate: Optional[str] = None
    eval: EvalConfig = dataclasses.field(
        default_factory=lambda: EvalConfig(samples=16, n_problems=100, max_new_tokens=64)
    )
    log: LogConfig = dataclasses.field(default_factory=LogConfig)
    seed: int = 0  # torch seed before building the model (scratch init)
    name: str = "eval"


def _field_type(tp: Any) -> Any:
    """The OmegaConf-supported spelling of a field type: tuples as lists, `X | None` Optional."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        return Optional[_field_type(rest[0])] if len(rest) == 1 else Any
    if origin in (tuple, list):
        return list[_field_type(args[0])] if args and args[0] is not Ellipsis else list[Any]
    if origin is dict:
        return dict[str, Any]
    return tp if tp in (int, float, str, bool) else Any


def _default(f: dataclasses.Field) -> dataclasses.Field:
    if f.default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=f.default_factory)
    if isinstance(f.default, tuple | list):
        return dataclasses.field(default_factory=functools.partial(list, f.default))
    return dataclasses.field(default=f.default)


@functools.cache
def env_node(name: str) -> type:
    """The structured `env` node of env `name`: EnvConfig plus the env config's fields, flat."""
    from envs.base import env_spec

    config = env_spec(name).config
    hints = typing.get_type_hints(config)
    own = [
        (f.name, _field_type(hints[f.name]), _default(f))
        for f in dataclasses.fields(config)
        if f.name not in ("name", "template")
    ]
    template = next((f.default for f in dataclasses.fields(config) if f.name == "template"), None)
    own.append(("template", Optional[str], dataclasses.field(default=template)))
    own.insert(0, ("name", str, dataclasses.field(default=name)))
    cls_name = "".join(p.capitalize() for p in name.split("_")) + "Env"
    node = dataclasses.make_dataclass(cls_name, own, bases=(EnvConfig,))
    node.__module__ = __name__
    return node


def env_config(name: str, **options: Any) -> EnvConfig:
    """The typed env config of `name` with `options` set (for Python callers and tests)."""
    return env_node(name)(**options)


def env_options(env: EnvConfig) -> dict[str, Any]:
    """The keyword arguments of `envs.base.build_env`: the fields the env's config declares."""
    from envs.base import env_spec

    declared = {f.name for f in dataclasses.fields(env_spec(env.name).config)}
    out = {f.name: getattr(env, f.name) for f in dataclasses.fields(env) if f.name in declared}
    if out.get("template", "") is None:
        del out["template"]
    return out


def configured_rewards(reward: dict[str, RewardTerm]) -> dict[str, RewardTerm]:
    """`reward.*` without the terms left unset (weight None, no options) in the composed config."""
    from rlreason.config import ConfigError

    unset = [k for k, t in reward.items() if t.weight is None and t.options]
    if unset:
        raise ConfigError(f"reward.{unset[0]}.options set but no reward.{unset[0]}.weight")
    return {k: t for k, t in reward.items() if t.weight is not None}


def register() -> None:
    """Store the roots (`base_config`, `eval_base_config`) and every env's node in group `env`.

    Both roots list every registered reward under `reward` (weight None: unset), so
    `reward.format.weight=0` needs no `+` and a misspelt reward name fails at compose time.
    """
    from hydra.core.config_store import ConfigStore

    from envs.base import ENVS
    from rewards.registry import reward_names

    unset = {name: RewardTerm() for name in reward_names()}
    store = ConfigStore.instance()
    store.store(name="base_config", node=Config(reward=dict(unset)))
    store.store(name="eval_base_config", node=EvalAppConfig(reward=dict(unset)))
    for name in list(ENVS):
        store.store(group="env", name=name, node=env_node(name))
