import logging
import math

import pytest

from envs.base import Task
from rewards.base import ComposedReward, RewardOutput, Scores

TASKS = [Task("p0"), Task("p1"), Task("p2")]
COMPLETIONS = ["a", "bb", "ccc"]


def length_reward(completions, tasks):
    return [float(len(c)) for c in completions]


def half(completions, tasks):
    return [0.5] * len(completions)


def crashes_on_bb(completions, tasks):
    if "bb" in completions:
        raise RuntimeError("boom on bb")
    return [1.0] * len(completions)


def test_total_is_weighted_sum_and_components_stay_raw():
    reward = ComposedReward({"len": (length_reward, 2.0), "half": (half, -1.0)})
    out = reward(COMPLETIONS, TASKS)
    assert out.components == {"len": [1.0, 2.0, 3.0], "half": [0.5, 0.5, 0.5]}
    assert out.total == [1.5, 3.5, 5.5]
    assert out.weights == {"len": 2.0, "half": -1.0}
    assert out.errors == {"len": 0, "half": 0} and out.timeouts == {"len": 0, "half": 0}


def test_raising_sample_is_isolated_scored_error_value_and_counted():
    reward = ComposedReward(
        {"crash": (crashes_on_bb, 1.0), "len": (length_reward, 1.0)}, error_value=-0.25
    )
    out = reward(COMPLETIONS, TASKS)
    assert out.components["crash"] == [1.0, -0.25, 1.0]
    assert out.errors["crash"] == 1 and out.timeouts["crash"] == 0
    assert out.components["len"] == [1.0, 2.0, 3.0]
    assert out.total == [2.0, 1.75, 4.0]


def test_timeout_error_on_a_sample_counts_as_timeout_not_error():
    def slow_on_a(completions, tasks):
        if "a" in completions:
            raise TimeoutError("too slow")
        return [1.0] * len(completions)

    out = ComposedReward({"slow": (slow_on_a, 1.0)})(COMPLETIONS, TASKS)
    assert out.components["slow"] == [0.0, 1.0, 1.0]
    assert out.timeouts["slow"] == 1 and out.errors["slow"] == 0


def test_reward_that_always_raises_never_stops_the_batch():
    def broken(completions, tasks):
        raise KeyError("missing")

    out = ComposedReward({"broken": (broken, 1.0), "half": (half, 1.0)})(COMPLETIONS, TASKS)
    assert out.components["broken"] == [0.0, 0.0, 0.0]
    assert out.errors["broken"] == 3
    assert out.total == [0.5, 0.5, 0.5]


def test_counts_reported_in_scores_are_summed_in():
    def self_isolating(completions, tasks):
        return Scores([0.0] * len(completions), errors=2, timeouts=1)

    out = ComposedReward({"code": (self_isolating, 1.0)})(COMPLETIONS, TASKS)
    assert out.errors["code"] == 2 and out.timeouts["code"] == 1


def test_scores_counts_from_per_sample_retries_are_summed():
    def flaky(completions, tasks):
        if len(completions) > 1:
            raise RuntimeError("batch path broken")
        return Scores([1.0], timeouts=1)

    out = ComposedReward({"flaky": (flaky, 1.0)})(COMPLETIONS, TASKS)
    assert out.components["flaky"] == [1.0, 1.0, 1.0]
    assert out.timeouts["flaky"] == 3 and out.errors["flaky"] == 0


def test_non_finite_or_non_numeric_scores_become_errors():
    def bad_values(completions, tasks):
        return [math.nan, "1.0", math.inf][: len(completions)]

    out = ComposedReward({"bad": (bad_values, 1.0)}, error_value=-1.0)(COMPLETIONS, TASKS)
    assert out.components["bad"] == [-1.0, -1.0, -1.0]
    assert out.errors["bad"] == 3


def test_booleans_and_integers_are_accepted_as_scores():
    def bools(completions, tasks):
        return [True, False, 2][: len(completions)]

    out = ComposedReward({"b": (bools, 1.0)})(COMPLETIONS, TASKS)
    assert out.components["b"] == [1.0, 0.0, 2.0] and out.errors["b"] == 0


def test_wrong_number_of_scores_is_an_error_naming_the_reward():
    def short(completions, tasks):
        return [1.0]

    with pytest.raises(ValueError, match="'short_one' returned 1 scores for 3"):
        ComposedReward({"short_one": (short, 1.0)})(COMPLETIONS, TASKS)


def test_mismatched_completions_and_tasks_are_rejected():
    with pytest.raises(ValueError, match="3 completions but 2 tasks"):
        ComposedReward({"half": (half, 1.0)})(COMPLETIONS, TASKS[:2])


def test_gated_components_count_only_where_gate_is_positive():
    def gate(completions, tasks):
        return [1.0, 0.0, 1.0]

    reward = ComposedReward(
        {"fmt": (gate, 0.1), "len": (length_reward, 1.0), "half": (half, 2.0)},
        gate="fmt",
        gated=("len",),
    )
    out = reward(COMPLETIONS, TASKS)
    # sample 0: 0.1*1 + 1 + 1 ; sample 1: 0 + (len gated off) + 1 ; sample 2: 0.1 + 3 + 1
    assert out.total == pytest.approx([2.1, 1.0, 4.1])
    assert out.components["len"] == [1.0, 2.0, 3.0]  # logged ungated


def test_gate_gates_every_other_component_by_default():
    def gate(completions, tasks):
        return [0.0, 1.0, -1.0]

    out = ComposedReward(
        {"fmt": (gate, 0.0), "len": (length_reward, 1.0), "half": (half, 1.0)}, gate="fmt"
    )(COMPLETIONS, TASKS)
    assert out.total == [0.0, 2.5, 0.0]


def test_a_gate_that_errors_closes_the_gate():
    out = ComposedReward({"fmt": (crashes_on_bb, 0.0), "len": (length_reward, 1.0)}, gate="fmt")(
        COMPLETIONS, TASKS
    )
    assert out.total == [1.0, 0.0, 3.0] and out.errors["fmt"] == 1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(gate="nope"), "gate 'nope' is not a component"),
        (dict(gate="half", gated=("ghost",)), r"gated names \['ghost'\]"),
        (dict(gated=("half",)), "needs a gate"),
        (dict(gate="half", gated=("half",)), "cannot gate itself"),
    ],
)
def test_bad_gate_settings_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ComposedReward({"half": (half, 1.0), "len": (length_reward, 1.0)}, **kwargs)


@pytest.mark.parametrize(
    "components, message",
    [
        ({}, "at least one"),
        ({"x": (half, math.nan)}, "weight of 'x' must be a finite number"),
        ({"x": (half, "1")}, "weight of 'x'"),
        ({"x": ("half", 1.0)}, "'x' must be \\(callable, weight\\)"),
    ],
)
def test_bad_components_are_rejected(components, message):
    with pytest.raises(ValueError, match=message):
        ComposedReward(components)


def test_metrics_are_namespaced_and_hand_computed():
    out = RewardOutput(
        total=[1.0, 3.0],
        components={"acc": [0.0, 1.0]},
        weights={"acc": 1.0},
        errors={"acc": 2},
        timeouts={"acc": 1},
    )
    assert out.metrics() == {
        "reward/acc/mean": 0.5,
        "reward/acc/std": 0.5,
        "reward/acc/errors": 2.0,
        "reward/acc/timeouts": 1.0,
        "reward/total/mean": 2.0,
        "reward/total/std": 1.0,
    }


def test_empty_batch_gives_empty_lists_and_nan_means():
    out = ComposedReward({"half": (half, 1.0)})([], [])
    assert out.total == [] and out.components == {"half": []}
    metrics = out.metrics()
    assert math.isnan(metrics["reward/half/mean"]) and metrics["reward/half/errors"] == 0.0


def test_failures_are_logged_with_the_reward_name(caplog):
    with caplog.at_level(logging.WARNING, logger="rewards.base"):
        ComposedReward({"crashy": (crashes_on_bb, 1.0)})(COMPLETIONS, TASKS)
    assert "crashy" in caplog.text and "boom on bb" in caplog.text


def test_scores_keeps_values_and_counts():
    s = Scores([1, 0.5], errors=1, timeouts=2)
    assert s == [1.0, 0.5] and s.errors == 1 and s.timeouts == 2
