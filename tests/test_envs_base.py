"""Env registry, protocol, seeded splits: invariants shared by every built-in env."""

import pytest

from envs.base import ENVS, Env, Task, build_env, sample_unique_splits, shuffle_split

# Smaller splits (or required options) for speed; any other registered env runs its defaults.
SMALL = {
    "arithmetic": dict(n_train=300, n_eval=50),
    "countdown": dict(n_train=200, n_eval=40),
    "multilingual": dict(n_train=300, n_eval=50),
    "code": dict(n_eval=8),
    "jsonl": dict(path="envs/data/gsm8k_sample.jsonl", format="gsm8k", n_eval=2),
}
GENERATED = ["arithmetic", "countdown", "multilingual"]
EVERY = sorted(ENVS)


def small(name: str):
    return build_env(name, **SMALL.get(name, {}))


@pytest.mark.parametrize("name", EVERY)
def test_every_env_satisfies_the_protocol_with_default_reward_and_template(name):
    from envs.templates import TEMPLATES

    env = small(name)
    assert isinstance(env, Env)
    assert len(env.train) > 0 and len(env.eval) > 0
    assert all(isinstance(t, Task) for t in env.train[:5])
    assert env.rewards and all(isinstance(w, float) for w in env.rewards.values())
    assert env.template in TEMPLATES


@pytest.mark.parametrize("name", EVERY)
def test_train_and_eval_never_share_a_prompt(name):
    env = small(name)
    train, eval_ = [t.prompt for t in env.train], [t.prompt for t in env.eval]
    assert not set(train) & set(eval_)
    assert len(set(train)) == len(train) and len(set(eval_)) == len(eval_)


@pytest.mark.parametrize("name", EVERY)
def test_building_twice_with_one_seed_gives_identical_tasks(name):
    a, b = small(name), small(name)
    assert [t.to_json() for t in a.train + a.eval] == [t.to_json() for t in b.train + b.eval]


@pytest.mark.parametrize("name", GENERATED + ["code"])
def test_another_seed_gives_other_splits(name):
    a = build_env(name, **SMALL[name], seed=1)
    b = build_env(name, **SMALL[name], seed=2)
    assert [t.prompt for t in a.eval] != [t.prompt for t in b.eval]


@pytest.mark.parametrize("name", GENERATED)
def test_eval_split_does_not_move_when_n_train_changes(name):
    small = build_env(name, **{**SMALL[name], "n_train": 10})
    big = build_env(name, **SMALL[name])
    assert [t.to_json() for t in small.eval] == [t.to_json() for t in big.eval]


@pytest.mark.parametrize("name", GENERATED + ["code"])
def test_every_builtin_task_has_an_integer_difficulty_and_a_unique_id(name):
    env = build_env(name, **SMALL[name])
    tasks = env.train + env.eval
    assert all(isinstance(t.meta["difficulty"], int) for t in tasks)
    assert len({t.meta["id"] for t in tasks}) == len(tasks)


def test_unknown_env_name_lists_the_valid_names():
    with pytest.raises(KeyError, match="valid envs: .*arithmetic.*countdown"):
        build_env("arithmetik")


def test_unknown_option_lists_the_valid_options():
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['digitz'\].*'digits'"):
        build_env("arithmetic", digitz=3)


def test_a_task_space_too_small_for_the_request_is_an_error_not_a_hang():
    with pytest.raises(ValueError, match="found only 200 distinct tasks"):
        build_env("arithmetic", digits=1, ops=("+", "*"), n_train=300, n_eval=10)


def test_sample_unique_splits_draws_eval_first_and_numbers_ids():
    counter = iter(range(1000))
    train, eval_ = sample_unique_splits(
        lambda rng: Task(prompt=str(next(counter) // 2)), n_train=3, n_eval=2, seed=0, name="t"
    )
    assert [t.prompt for t in eval_] == ["0", "1"]  # every prompt is drawn twice; dupes dropped
    assert [t.prompt for t in train] == ["2", "3", "4"]
    assert [t.meta["id"] for t in train] == ["t/train/0", "t/train/1", "t/train/2"]


def test_shuffle_split_partitions_the_pool():
    pool = [Task(prompt=str(i)) for i in range(10)]
    train, eval_ = shuffle_split(pool, 3, seed=5)
    assert len(eval_) == 3 and sorted(t.prompt for t in train + eval_) == sorted(
        map(str, range(10))
    )
    with pytest.raises(ValueError, match="n_eval=11"):
        shuffle_split(pool, 11, seed=5)


def test_task_round_trips_through_json():
    t = Task(
        prompt="1+1=",
        answer="2",
        tests=[{"call": "f()", "expected": "1"}],
        meta={"difficulty": 1, "numbers": [1, 2]},
    )
    assert Task.from_json(t.to_json()) == t


@pytest.mark.parametrize("name", EVERY)
def test_every_env_declares_rewards_it_can_build_and_an_accuracy_among_them(name):
    from rewards.registry import resolve_reward

    env = small(name)
    assert all(callable(resolve_reward(reward)) for reward in env.rewards)
    assert (getattr(env, "accuracy", None) or next(iter(env.rewards))) in env.rewards
