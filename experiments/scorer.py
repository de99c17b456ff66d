"""The scorer of a run, shared by `rlreason-train` and `rlreason-eval`: the env's rewards with
the config's `reward.*` overrides and `reward_gate` (see rewards.scoring)."""

from __future__ import annotations

from rlreason.config import ConfigError


def build_scorer(cfg, env, template):
    """The env's rewards with the config's overrides, as a scorer (rewards.scoring)."""
    from rewards.scoring import build_scorer as build

    overrides = {name: (t.weight, dict(t.options)) for name, t in cfg.reward.items()}
    try:
        return build(env, template, overrides, cfg.reward_gate)
    except ValueError as e:
        raise ConfigError(str(e)) from e
