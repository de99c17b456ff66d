"""Verifiable rewards: pure-Python callables `(completions, tasks) -> list[float]`, no torch.

`rewards.base` holds the contract and the weighted composition (`ComposedReward`, `RewardOutput`,
`Scores`); `rewards.registry` maps config names to lazily imported rewards (`build_reward`,
`build_composed`); `rewards.scoring` builds an env's scorer (`build_scorer`). Individual rewards
live in their own modules (format, language, length, math, code) and are imported only when used;
this package imports nothing heavy; tags are read with the parser in `envs.tags`.
"""

from rewards.base import ComposedReward, RewardFn, RewardOutput, Scores
from rewards.registry import REWARDS, build_composed, build_reward, register_reward

__all__ = [
    "ComposedReward",
    "RewardFn",
    "RewardOutput",
    "Scores",
    "REWARDS",
    "build_composed",
    "build_reward",
    "register_reward",
]
