import subprocess
import sys

import pytest

from envs.base import Task
from rewards import registry
from rewards.base import ComposedReward
from rewards.format import strict_format_reward
from rewards.registry import REWARDS, build_composed, build_reward, register_reward, resolve_reward

PREFILLED = "r</think><answer>5</answer>"
GOOD = "<think>r</think><answer>5</answer>"
TASKS = [Task("Add 2 and 3"), Task("Add 2 and 3")]


@pytest.fixture(autouse=True)
def restore_registry(monkeypatch):
    monkeypatch.setattr(registry, "REWARDS", dict(REWARDS))


def make_constant(value=1.0):
    def constant(completions, tasks):
        return [value] * len(completions)

    return constant


def test_plain_reward_without_options_is_returned_as_is():
    assert build_reward("format") is strict_format_reward


def test_options_of_a_plain_reward_are_bound_as_keywords():
    reward = build_reward("format", prefilled=True)
    assert reward([PREFILLED, GOOD], TASKS) == [1.0, 0.0]


def test_factory_entries_are_called_with_the_options():
    register_reward("const", make_constant)
    assert build_reward("const", value=0.25)(["a"], TASKS[:1]) == [0.25]


def test_unknown_reward_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown reward 'nope'; known rewards: \[.*'format'"):
        build_reward("nope")


def test_options_that_do_not_fit_are_an_error_naming_the_reward():
    with pytest.raises(ValueError, match=r"reward 'format': options \['prefiled'\] do not fit"):
        build_reward("format", prefiled=True)
    with pytest.raises(ValueError, match=r"reward 'cosine_length': options \[\] do not fit"):
        build_reward("cosine_length")  # max_len is required


def test_register_same_target_twice_is_a_noop_but_a_new_target_needs_overwrite():
    register_reward("format", "rewards.format:strict_format_reward")
    with pytest.raises(ValueError, match="already registered"):
        register_reward("format", "rewards.format:soft_format_reward")
    register_reward("format", "rewards.format:soft_format_reward", overwrite=True)
    assert build_reward("format")(["<think></think><answer></answer>"], TASKS[:1]) == [1.0]


@pytest.mark.parametrize(
    "target, message",
    [
        ("rewards.format", "must look like 'module:attr'"),
        (":attr", "must look like 'module:attr'"),
        ("a:b:c", "must look like 'module:attr'"),
        (42, "must be 'module:attr' or a callable"),
    ],
)
def test_bad_targets_are_rejected_when_registered(target, message):
    with pytest.raises(ValueError, match=message):
        register_reward("bad", target)


def test_registering_a_path_imports_nothing_until_built():
    register_reward("ghost", "rewards.no_such_module:reward")
    with pytest.raises(ImportError, match="reward 'ghost': cannot import 'rewards.no_such_module'"):
        build_reward("ghost")
    register_reward("hollow", "rewards.format:no_such_attr")
    with pytest.raises(ImportError, match="names no callable"):
        resolve_reward("hollow")


def test_importing_the_registry_imports_no_reward_or_env_module():
    code = (
        "import sys, rewards, rewards.registry; "
        "print(sorted(m for m in sys.modules if m.startswith(('envs', 'rewards.', 'torch'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['rewards.base', 'rewards.registry']"


def test_every_builtin_entry_resolves_to_a_callable():
    for name in REWARDS:
        assert callable(resolve_reward(name)), name


def test_build_composed_reads_weights_options_and_aliases():
    spec = {
        "strict": {"reward": "format", "weight": 0.0},
        "format": {"weight": 0.5, "prefilled": True},
        "tag_count": 0.2,
        "format_soft": {},
    }
    reward = build_composed(spec, gate="strict")
    assert isinstance(reward, ComposedReward)
    out = reward([GOOD, PREFILLED], TASKS)
    assert out.components == {
        "strict": [1.0, 0.0],
        "format": [0.0, 1.0],
        "tag_count": [1.0, 0.75],
        "format_soft": [1.0, 0.0],
    }
    assert out.weights == {"strict": 0.0, "format": 0.5, "tag_count": 0.2, "format_soft": 1.0}
    assert out.total == pytest.approx([0.2 + 1.0, 0.0])  # sample 1 is gated off by "strict"


def test_build_composed_accepts_an_env_default_weight_mapping():
    out = build_composed({"format": 0.1, "language": 0.1})([GOOD], TASKS[:1])
    assert out.total == pytest.approx([0.2])


@pytest.mark.parametrize(
    "spec, message",
    [
        ({}, "non-empty mapping"),
        ({"format": "heavy"}, "expected a weight or a mapping"),
        ({"format": {"weight": "1"}}, "weight must be a number"),
        ({"format": {"weight": True}}, "weight must be a number"),
        ({"mystery": 1.0}, "unknown reward 'mystery'"),
    ],
)
def test_bad_specs_are_clear_errors(spec, message):
    with pytest.raises(ValueError, match=message):
        build_composed(spec)


def test_gated_names_are_passed_through():
    reward = build_composed(
        {"format": 0.0, "tag_count": 1.0, "format_soft": 1.0}, gate="format", gated=["tag_count"]
    )
    # empty blocks: strict fails, so tag_count (1.0) is gated off; format_soft (1.0) is not
    assert reward(["<think></think><answer></answer>"], TASKS[:1]).total == [1.0]
    assert reward.gated == ("tag_count",)


def test_a_reward_an_env_defines_itself_is_found_by_name_not_listed_in_the_registry():
    from rewards.registry import REWARDS, env_rewards, resolve_reward, reward_names

    assert "countdown" not in REWARDS and "countdown" in reward_names()
    assert env_rewards()["countdown"] == "envs.countdown:countdown_reward"
    assert resolve_reward("countdown").__name__ == "countdown_reward"


def test_a_bad_option_value_is_an_error_when_the_reward_is_built_not_when_it_scores():
    from rewards.registry import build_reward

    with pytest.raises(ValueError, match=r"reward 'math'.*'lenint'.*strict"):
        build_reward("math", mode="lenint")
    assert build_reward("math", mode="lenient")(["<answer>4</answer>"], [Task("2+2", "4")])
