"""The scorer (rewards.scoring): env-declared rewards, overrides, prefilled templates, verdicts."""

import pytest

from envs.base import Task, TaskSet, build_env
from envs.templates import get_template
from rewards.scoring import build_scorer, reward_spec

TINY = get_template("tiny")
PREFILL = get_template("r1_zero_prefill")


def arithmetic():
    return build_env("arithmetic", n_train=10, n_eval=2)


def test_the_demo_scorer_sums_math_and_a_tenth_of_format():
    tasks = [Task("2+3=", "5")] * 4
    texts = [
        "<think>2+3</think><answer>5</answer>",  # right, well formed
        "<answer>5</answer>",  # right, no reasoning
        "<think>2+3</think><answer>6</answer>",  # wrong, well formed
        "5",  # right but bare: strict extraction reads only <answer> or \boxed{}
    ]
    v = build_scorer(arithmetic(), TINY)(texts, tasks)
    assert v.total == pytest.approx([1.1, 1.0, 0.1, 0.0])
    assert v.components == {"math": [1.0, 1.0, 0.0, 0.0], "format": [1.0, 0.0, 1.0, 0.0]}
    assert v.correct == [True, True, False, False]
    assert v.format_ok == [True, False, True, False]
    assert v.has_reasoning == [True, False, True, False]
    assert v.answers == ["5", "5", "6", "5"]
    assert v.metrics["accuracy"] == 0.5 and v.metrics["rollout/think_rate"] == 0.5
    assert v.metrics["reward/math/mean"] == 0.5 and "rollout/repetition" in v.metrics


def test_overrides_replace_weights_and_unused_zero_terms_are_dropped():
    spec = reward_spec(arithmetic(), TINY, {"format": (0.5, {}), "language": (0.0, {})}, None)
    assert spec == {"math": {"weight": 1.0}, "format": {"weight": 0.5}}
    spec = reward_spec(arithmetic(), TINY, {"tag_count": (0.2, {})}, None)
    assert spec["tag_count"] == {"weight": 0.2}


def test_a_prefilled_template_reaches_every_reward_that_accepts_it():
    overrides = {"tag_count": (0.1, {}), "language": (0.1, {})}
    spec = reward_spec(arithmetic(), PREFILL, overrides, None)
    assert spec["format"]["prefilled"] and spec["tag_count"]["prefilled"]
    assert spec["language"]["prefilled"] and spec["math"]["prefilled"]
    v = build_scorer(arithmetic(), PREFILL)(["2+3</think><answer>5</answer>"], [Task("q", "5")])
    assert v.format_ok == [True] and v.has_reasoning == [True] and v.total == [pytest.approx(1.1)]


def test_a_gate_must_be_a_component():
    with pytest.raises(ValueError, match="reward_gate='tag_count'"):
        build_scorer(arithmetic(), TINY, {}, "tag_count")
    v = build_scorer(arithmetic(), TINY, {"format": (0.0, {})}, "format")(
        ["<answer>5</answer>"], [Task("q", "5")]
    )
    assert v.total == [0.0] and v.correct == [True]


def test_an_env_names_its_own_reward_its_accuracy_and_its_vote():
    env = build_env("countdown", n_numbers=3, n_train=5, n_eval=2)
    task = env.eval[0]
    solution = task.meta["solution"]
    v = build_scorer(env, get_template("r1_zero"))(
        [f"<think>t</think><answer>{solution}</answer>", "<answer>1+1</answer>"], [task, task]
    )
    assert v.components["countdown"] == [1.0, 0.0] and v.correct == [True, False]
    scorer = build_scorer(env, get_template("r1_zero"))
    assert scorer.answer_key(v.answers[0]) == solution.replace(" ", "")


def test_an_env_without_a_vote_gives_no_answers():
    env = TaskSet("t", (Task("q", "1"),), (Task("q", "1"),), {"format": 1.0}, "tiny")
    v = build_scorer(env, TINY)(["<think>a</think><answer>1</answer>"], [Task("q", "1")])
    assert v.answers == [None] and v.correct == [True]
    assert build_scorer(env, TINY).answer_key is None


def test_an_accuracy_reward_that_is_not_a_component_is_an_error():
    env = TaskSet("t", (), (), {"format": 1.0}, "tiny", accuracy="math")
    with pytest.raises(ValueError, match="accuracy reward 'math'"):
        build_scorer(env, TINY)
