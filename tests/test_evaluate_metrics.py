"""Evaluation metrics: hand-computed values and brute-force references over all k-subsets."""

import itertools
import math
import random
import subprocess
import sys
from fractions import Fraction

import pytest

from rlreason.eval.metrics import (
    ProblemRecord,
    best_of_n,
    bootstrap_ci,
    cluster_answers,
    format_table,
    maj_at_k,
    mean_at_k,
    pass_at_k,
    per_problem_metrics,
    summarize,
)
from rlreason.eval.plots import curve_points, plot_scaling_curve


def as_fraction(a):
    return Fraction(a)


def brute_pass(correct, k):
    subsets = list(itertools.combinations(correct, k))
    return sum(any(s) for s in subsets) / len(subsets)


def brute_maj(answers, correct, k, key=lambda a: a):
    """Reference vote: most votes wins, ties to the cluster seen first in the subset."""
    wins = []
    for idx in itertools.combinations(range(len(answers)), k):
        votes = {}
        for i in idx:
            if answers[i] is not None:
                votes.setdefault(key(answers[i]), []).append(i)
        if not votes:
            wins.append(False)
            continue
        best = max(len(v) for v in votes.values())
        winner = min(v[0] for v in votes.values() if len(v) == best)
        wins.append(correct[winner])
    return sum(wins) / len(wins)


def brute_best(scores, correct, k):
    wins = []
    for idx in itertools.combinations(range(len(scores)), k):
        top = max(scores[i] for i in idx)
        wins.append(correct[next(i for i in idx if scores[i] == top)])
    return sum(wins) / len(wins)


@pytest.mark.parametrize(
    "n,c,k,expected",
    [
        (5, 0, 1, 0.0),
        (5, 5, 3, 1.0),
        (4, 1, 2, 0.5),
        (10, 3, 10, 1.0),
        (10, 3, 1, 0.3),
        (5, 2, 2, 0.7),
        (4, 0, 4, 0.0),
        (4, 4, 4, 1.0),
    ],
)
def test_pass_at_k_matches_hand_computed_values(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_equals_brute_force_over_all_subsets():
    for n in range(1, 8):
        for c in range(n + 1):
            correct = [True] * c + [False] * (n - c)
            for k in range(1, n + 1):
                assert pass_at_k(n, c, k) == pytest.approx(brute_pass(correct, k), abs=1e-12)


def test_pass_at_k_is_stable_where_binomials_are_huge():
    exact = 1 - Fraction(math.comb(600, 500), math.comb(1000, 500))
    assert pass_at_k(1000, 400, 500) == pytest.approx(float(exact), rel=1e-9)
    assert pass_at_k(10000, 1, 1) == pytest.approx(1e-4, rel=1e-9)


@pytest.mark.parametrize(
    "n,c,k,match",
    [
        (4, 1, 5, "k=5"),
        (4, 5, 1, "c=5"),
        (4, 1, 0, "k=0"),
        (0, 0, 1, "n=0"),
        (4, True, 1, "c"),
    ],
)
def test_pass_at_k_rejects_invalid_counts_with_a_named_error(n, c, k, match):
    with pytest.raises((ValueError, TypeError), match=match):
        pass_at_k(n, c, k)


def test_mean_at_k_is_the_fraction_correct_for_every_k():
    assert [mean_at_k(8, 3, k) for k in (1, 4, 8)] == [0.375] * 3
    with pytest.raises(ValueError, match="k=9"):
        mean_at_k(8, 3, 9)


def test_equivalent_answers_vote_together_through_a_key():
    answers, correct = ["0.3", "1/2", "0.5"], [False, True, True]
    assert maj_at_k(answers, correct, 3) == 0.0  # three distinct strings: tie, first wins
    assert maj_at_k(answers, correct, 3, key=as_fraction) == 1.0


def test_equivalent_answers_vote_together_through_a_relation():
    same = lambda a, b: Fraction(a) == Fraction(b)
    assert list(cluster_answers(["0.3", "1/2", None, "0.5"], equivalent=same)) == [0, 1, -1, 1]
    assert maj_at_k(["0.3", "1/2", "0.5"], [False, True, True], 3, equivalent=same) == 1.0


def test_key_and_relation_together_are_rejected():
    with pytest.raises(ValueError, match="either key or equivalent"):
        cluster_answers(["1"], key=str, equivalent=lambda a, b: a == b)


def test_a_failing_key_or_relation_names_the_answer():
    with pytest.raises(ValueError, match="key failed on answer 1"):
        maj_at_k(["1", "oops"], [True, False], 2, key=as_fraction)
    same = lambda a, b: Fraction(a) == Fraction(b)
    with pytest.raises(ValueError, match="equivalent failed on answer 2"):
        maj_at_k(["1", "2", "oops"], [True, False, False], 2, equivalent=same)


def test_majority_tie_goes_to_the_cluster_seen_first():
    assert maj_at_k(["a", "b", "b", "a"], [False, True, True, False], 4) == 0.0
    assert maj_at_k(["b", "a", "a", "b"], [True, False, False, True], 4) == 1.0


def test_missing_answers_never_win_unless_all_are_missing():
    assert maj_at_k([None, None, None, "x"], [False, False, False, True], 4) == 1.0
    assert maj_at_k([None, None], [False, False], 2) == 0.0
    assert maj_at_k([None, "x"], [True, True], 1) == 0.5  # a lone None sample votes for nothing
    # k=2 over [None, "x", "y"]: {None,x} -> x, {None,y} -> y, {x,y} -> x  => 2/3 correct
    assert maj_at_k([None, "x", "y"], [False, True, False], 2) == pytest.approx(2 / 3)


def test_maj_at_k_equals_brute_force_when_subsets_are_enumerated():
    rng = random.Random(0)
    for _ in range(60):
        n = rng.randint(1, 7)
        answers = [rng.choice([None, "1", "2", "3", "0.5", "1/2"]) for _ in range(n)]
        correct = [a is not None and Fraction(a) == Fraction(1, 2) for a in answers]
        for k in range(1, n + 1):
            ref = brute_maj(answers, correct, k, key=as_fraction)
            assert maj_at_k(answers, correct, k, key=as_fraction) == pytest.approx(ref)


def test_maj_at_1_equals_pass_at_1_when_every_sample_has_an_answer():
    correct = [True, False, False, True, False]
    answers = ["4", "3", "5", "4", "3"]
    assert maj_at_k(answers, correct, 1) == pytest.approx(pass_at_k(5, 2, 1))


def test_sampled_maj_at_k_is_seeded_and_close_to_the_exact_value():
    rng = random.Random(1)
    answers = [rng.choice(["7", "7", "8", "9", None]) for _ in range(16)]
    correct = [a == "7" for a in answers]
    exact = maj_at_k(answers, correct, 8, n_resamples=math.comb(16, 8))
    assert exact == pytest.approx(brute_maj(answers, correct, 8))
    sampled = maj_at_k(answers, correct, 8, seed=3, n_resamples=1000)
    assert sampled == maj_at_k(answers, correct, 8, seed=3, n_resamples=1000)
    assert abs(sampled - exact) < 0.05  # > 3 standard errors of a mean of 1000 votes


def test_best_of_n_picks_the_highest_score_and_the_first_on_ties():
    assert best_of_n([0.1, 0.9, 0.5], [False, True, False], 3) == 1.0
    assert best_of_n([0.1, 0.9, 0.5], [True, False, True], 3) == 0.0
    assert best_of_n([1.0, 1.0], [False, True], 2) == 0.0
    # k=2 of [0.1, 0.9, 0.5]: pairs containing 0.9 (2 of 3) win
    assert best_of_n([0.1, 0.9, 0.5], [False, True, False], 2) == pytest.approx(2 / 3)


def test_best_of_n_equals_brute_force_over_all_subsets():
    rng = random.Random(2)
    for _ in range(60):
        n = rng.randint(1, 7)
        scores = [float(rng.randint(0, 3)) for _ in range(n)]
        correct = [rng.random() < 0.5 for _ in range(n)]
        for k in range(1, n + 1):
            ref = brute_best(scores, correct, k)
            assert best_of_n(scores, correct, k) == pytest.approx(ref, abs=1e-12)


def test_best_of_n_scored_by_correctness_is_pass_at_k():
    correct = [False, True, False, False, True, False]
    for k in range(1, 7):
        assert best_of_n([float(c) for c in correct], correct, k) == pytest.approx(
            pass_at_k(6, 2, k)
        )


def test_best_of_n_rejects_nan_scores():
    with pytest.raises(ValueError, match="score 1 is NaN"):
        best_of_n([0.0, math.nan], [True, False], 1)


def test_bootstrap_is_deterministic_for_a_seed_and_brackets_the_mean():
    values = [float(i % 3 == 0) for i in range(200)]
    a = bootstrap_ci(values, n_boot=500, seed=7)
    assert a == bootstrap_ci(values, n_boot=500, seed=7)
    assert a != bootstrap_ci(values, n_boot=500, seed=8)
    mean, lo, hi = a
    assert mean == pytest.approx(67 / 200)
    assert lo < mean < hi


def test_bootstrap_interval_has_the_normal_theory_width():
    values = [float(i % 2) for i in range(400)]  # p = 0.5, standard error 0.025
    _, lo, hi = bootstrap_ci(values, n_boot=2000, alpha=0.05, seed=0)
    assert (hi - lo) / 2 == pytest.approx(1.96 * 0.025, rel=0.15)


def test_bootstrap_of_constant_values_is_a_point():
    assert bootstrap_ci([0.25] * 10) == (0.25, 0.25, 0.25)
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap_ci([])


def make_record(correct, difficulty=None, **extra):
    answers = ["42" if c else "0" for c in correct]
    return dict(
        correct=correct,
        answers=answers,
        format_ok=[True] * len(correct),
        lengths=[10] * len(correct),
        difficulty=difficulty,
        **extra,
    )


def test_summarize_breaks_metrics_down_by_difficulty():
    records = [
        make_record([True, True], "easy"),
        make_record([True, False], "easy"),
        make_record([False, False], "hard"),
        make_record([True, False]),
    ]
    m = summarize(records, [1, 2])
    assert m["eval/pass@1"] == pytest.approx((1 + 0.5 + 0 + 0.5) / 4)
    assert m["eval/pass@2"] == pytest.approx(3 / 4)
    assert m["eval/difficulty/easy/pass@1"] == pytest.approx(0.75)
    assert m["eval/difficulty/easy/pass@2"] == 1.0
    assert m["eval/difficulty/hard/pass@2"] == 0.0
    assert m["eval/difficulty/easy/num_problems"] == 2
    assert m["eval/num_problems"] == 4
    assert not any("difficulty/None" in name for name in m)


def test_summarize_reports_every_metric_with_bounds_and_skips_missing_inputs():
    records = [
        make_record([True, False, True, False], greedy_correct=True, scores=[0.0, 1.0, 0.5, 0.2]),
        make_record([False, False, False, True], greedy_correct=None, scores=[0.0, 0.0, 0.0, 1.0]),
    ]
    records[0]["format_ok"] = [True, False, False, False]
    records[1]["lengths"] = [20, 20, 30, 30]
    m = summarize(records, [1, 4])
    assert m["eval/best_of_4"] == pytest.approx((0.0 + 1.0) / 2)
    assert m["eval/maj@4"] == pytest.approx((1.0 + 0.0) / 2)
    assert m["eval/greedy_acc"] == 1.0  # only the first record has a greedy result
    assert m["eval/format_rate"] == pytest.approx((0.25 + 1.0) / 2)
    assert m["eval/length_mean"] == pytest.approx((10 + 25) / 2)
    for name in ("pass@1", "maj@1", "mean@1", "best_of_1", "greedy_acc", "format_rate"):
        assert m[f"eval/{name}_lo"] <= m[f"eval/{name}"] <= m[f"eval/{name}_hi"]
    no_scores = summarize([make_record([True, False])], [1])
    assert "eval/best_of_1" not in no_scores and "eval/greedy_acc" not in no_scores


def test_summarize_passes_the_answer_key_to_the_vote():
    record = dict(correct=[False, True, True], answers=["0.3", "1/2", "0.5"])
    assert summarize([record], [3])["eval/maj@3"] == 0.0
    assert summarize([record], [3], key=as_fraction)["eval/maj@3"] == 1.0


def test_summarize_is_deterministic_for_a_fixed_seed():
    rng = random.Random(5)
    records = [
        ProblemRecord(
            correct=[rng.random() < 0.4 for _ in range(12)],
            answers=[rng.choice(["1", "2", "3"]) for _ in range(12)],
        )
        for _ in range(20)
    ]
    assert summarize(records, [1, 6, 12], seed=3) == summarize(records, [1, 6, 12], seed=3)


def test_a_problems_values_do_not_depend_on_its_neighbours():
    rng = random.Random(6)
    rec = ProblemRecord(
        correct=[rng.random() < 0.5 for _ in range(16)],
        answers=[rng.choice(["a", "b", "c"]) for _ in range(16)],
    )
    other = ProblemRecord(correct=[True] * 16, answers=["a"] * 16)
    alone = per_problem_metrics([rec], [8])["maj@8"][0]
    assert per_problem_metrics([rec, other], [8])["maj@8"][0] == alone


def test_summarize_names_the_bad_record():
    with pytest.raises(ValueError, match="k=4 exceeds the 3 samples of record 1"):
        summarize([make_record([True] * 4), make_record([True] * 3)], [1, 4])
    with pytest.raises(ValueError, match="record 0: lengths has 1 entries"):
        summarize([dict(correct=[True, False], lengths=[3])], [1])
    with pytest.raises(ValueError, match="record 0: unknown keys"):
        summarize([dict(correct=[True], answer="x")], [1])


def test_format_table_lists_each_metric_with_its_interval():
    table = format_table(
        {
            "eval/pass@1": 0.5,
            "eval/pass@1_lo": 0.25,
            "eval/pass@1_hi": 0.75,
            "eval/num_problems": 4.0,
        }
    )
    lines = table.splitlines()
    assert len(lines) == 3
    assert lines[1].split() == ["eval/pass@1", "0.5000", "[0.2500,", "0.7500]"]
    assert lines[2].split() == ["eval/num_problems", "4"]


def test_scaling_curve_is_saved_as_a_png(tmp_path):
    records = [make_record([i % 3 == 0, i % 2 == 0, True, False]) for i in range(6)]
    m = summarize(records, [1, 2, 4], n_boot=200)
    assert [p[0] for p in curve_points(m, "maj@k")] == [1, 2, 4]
    path = plot_scaling_curve(m, tmp_path / "plots" / "scaling.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="no .* metrics under prefix"):
        plot_scaling_curve(m, tmp_path / "x.png", prefix="eval/difficulty/easy/")


def test_evaluate_imports_no_task_code_nor_hydra():
    code = (
        "import sys, rlreason.eval.metrics, rlreason.eval.plots; "
        "bad = {m.split('.')[0] for m in sys.modules} & {'envs', 'rewards', 'hydra'}; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
