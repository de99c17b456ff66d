"""Advantage estimators against hand-computed values and a hand-unrolled GAE loop."""

import math
from types import SimpleNamespace

import pytest
import torch

from rlreason.rl.advantages import (
    ADVANTAGES,
    dr_grpo,
    gae,
    get_estimator,
    group_stats,
    grpo,
    place_outcome_rewards,
    reinforce_pp,
    reinforce_pp_baseline,
    rloo,
)

GROUP_FNS = {
    "grpo": grpo,
    "dr_grpo": dr_grpo,
    "rloo": rloo,
    "reinforce_pp_baseline": reinforce_pp_baseline,
}

# Three groups of G=4: a tie pair, a zero-spread group, a single winner.
REWARDS = torch.tensor(
    [1.0, 1.0, 0.0, 0.0, 0.5, 0.5, 0.5, 0.5, 3.0, 0.0, 0.0, 0.0], dtype=torch.float64
)


def test_grpo_divides_by_the_unbiased_group_std():
    s = math.sqrt(1 / 3)  # unbiased std of [1, 1, 0, 0]
    want = [
        0.5 / s,
        0.5 / s,
        -0.5 / s,
        -0.5 / s,
        0,
        0,
        0,
        0,
        1.5,
        -0.5,
        -0.5,
        -0.5,
    ]  # last std = 1.5
    assert torch.allclose(grpo(REWARDS, 4, eps=0.0), torch.tensor(want, dtype=torch.float64))


def test_grpo_eps_is_added_to_the_std():
    got = grpo(REWARDS, 4, eps=0.5)
    assert got[8].item() == pytest.approx(2.25 / 2.0)


def test_dr_grpo_only_subtracts_the_group_mean():
    want = [0.5, 0.5, -0.5, -0.5, 0, 0, 0, 0, 2.25, -0.75, -0.75, -0.75]
    assert torch.allclose(dr_grpo(REWARDS, 4), torch.tensor(want, dtype=torch.float64))


def test_rloo_subtracts_the_mean_of_the_other_samples():
    want = [2 / 3, 2 / 3, -2 / 3, -2 / 3, 0, 0, 0, 0, 3.0, -1.0, -1.0, -1.0]
    assert torch.allclose(rloo(REWARDS, 4), torch.tensor(want, dtype=torch.float64))


def test_reinforce_pp_centres_per_group_then_scales_by_the_batch_std():
    centred = torch.tensor(
        [0.5, 0.5, -0.5, -0.5, 0, 0, 0, 0, 2.25, -0.75, -0.75, -0.75], dtype=torch.float64
    )
    std = math.sqrt((4 * 0.25 + 2.25**2 + 3 * 0.75**2) / 11)  # unbiased, batch mean 0
    assert torch.allclose(reinforce_pp_baseline(REWARDS, 4, eps=0.0), centred / std)


def test_group_size_two_gives_plus_minus_values():
    r = torch.tensor([1.0, 0.0, 0.3, 0.3])
    assert torch.allclose(
        grpo(r, 2, eps=0.0), torch.tensor([1 / math.sqrt(2), -1 / math.sqrt(2), 0, 0])
    )
    assert torch.allclose(dr_grpo(r, 2), torch.tensor([0.5, -0.5, 0, 0]))
    assert torch.allclose(rloo(r, 2), torch.tensor([1.0, -1.0, 0, 0]))


@pytest.mark.parametrize("name", ["grpo", "dr_grpo", "rloo", "reinforce_pp_baseline"])
def test_a_zero_spread_group_gets_exact_zeros(name):
    # 0.1 * 3 / 3 != 0.1 in floats: a naive r - mean leaves a residue that eps would blow up.
    r = torch.tensor([0.1, 0.1, 0.1, 1.0, 0.0, 0.0])
    adv = GROUP_FNS[name](r, 3)
    assert torch.equal(adv[:3], torch.zeros(3))
    assert (adv[3:] != 0).all()


@pytest.mark.parametrize("name", ["grpo", "dr_grpo", "rloo", "reinforce_pp_baseline"])
def test_an_all_flat_batch_gives_zeros_not_nan(name):
    adv = GROUP_FNS[name](
        torch.ones(6), 3, **({"eps": 0.0} if name in ("grpo", "reinforce_pp_baseline") else {})
    )
    assert torch.equal(adv, torch.zeros(6))


@pytest.mark.parametrize("name", ["grpo", "dr_grpo", "rloo", "reinforce_pp_baseline"])
def test_bad_group_inputs_are_rejected_with_the_reason(name):
    fn = GROUP_FNS[name]
    with pytest.raises(ValueError, match="G must be"):
        fn(torch.ones(4), 1)
    with pytest.raises(ValueError, match="not a positive multiple"):
        fn(torch.ones(5), 2)
    with pytest.raises(ValueError, match="1-D"):
        fn(torch.ones(2, 2), 2)
    with pytest.raises(ValueError, match="float"):
        fn(torch.ones(4, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="non-finite values at rows \\[1\\]"):
        fn(torch.tensor([0.0, float("nan")]), 2)


def test_group_stats_flags_zero_spread_groups():
    st = group_stats(REWARDS, 4)
    assert st.zero_std.tolist() == [False, True, False]
    assert st.zero_std_rows.tolist() == [False] * 4 + [True] * 4 + [False] * 4
    assert st.zero_std_frac == pytest.approx(1 / 3)
    assert torch.allclose(st.mean, torch.tensor([0.5, 0.5, 0.75], dtype=torch.float64))
    assert torch.allclose(st.std, torch.tensor([math.sqrt(1 / 3), 0.0, 1.5], dtype=torch.float64))


def test_every_registry_entry_takes_rewards_mask_values_and_algo_and_gae_places_the_reward():
    algo = SimpleNamespace(group_size=2, gamma=1.0, lam=1.0)
    rewards, mask = torch.tensor([1.0, 0.0]), torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    values = torch.zeros(2, 3)
    logps = {"teacher": torch.zeros(2, 3), "student": torch.zeros(2, 3)}
    for name, est in ADVANTAGES.items():
        value, logp = values if est.needs_value else None, logps if est.needs_teacher else None
        adv, returns = est(rewards, mask, value, algo, logp)
        assert adv.shape[0] == 2 and torch.isfinite(adv).all(), name
    adv, returns = get_estimator("gae")(rewards, mask, values, algo)
    # gamma = lam = 1, values 0: every valid token's advantage is the outcome reward
    assert torch.equal(adv, torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]))
    assert torch.equal(returns, adv)
    with pytest.raises(KeyError, match="known"):
        get_estimator("ppo")


def test_plain_reinforce_pp_whitens_over_the_batch_without_groups():
    r = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    c = r - 0.25
    assert torch.allclose(reinforce_pp(r, eps=0.0), c / c.std())
    assert torch.equal(reinforce_pp(torch.ones(3)), torch.zeros(3))


def test_outcome_rewards_sit_on_the_last_valid_token():
    mask = torch.tensor(
        [[1, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 1, 1, 0]], dtype=torch.float32
    )
    got = place_outcome_rewards(torch.tensor([2.0, 3.0, 4.0, 5.0]), mask)
    want = torch.tensor(
        [[0, 0, 2, 0], [3, 0, 0, 0], [0, 0, 0, 0], [0, 0, 5, 0]], dtype=torch.float32
    )
    assert torch.equal(got, want)


def test_gae_matches_a_hand_computed_three_token_example():
    r = torch.tensor([[0.0, 0.0, 1.0]])
    v = torch.tensor([[0.5, 0.6, 0.7]])
    adv, ret = gae(r, v, torch.ones(1, 3), gamma=0.9, lam=0.8)
    # t=2: 1 - 0.7 = 0.3; t=1: 0.9*0.7 - 0.6 + 0.72*0.3 = 0.246; t=0: 0.9*0.6 - 0.5 + 0.72*0.246
    assert torch.allclose(adv, torch.tensor([[0.21712, 0.246, 0.3]]))
    assert torch.allclose(ret, torch.tensor([[0.71712, 0.846, 1.0]]))


def _gae_reference(r, v, m, gamma, lam):
    """Per row, pull out the valid positions and run the textbook backward recursion in floats."""
    adv = torch.zeros_like(r)
    for b in range(r.shape[0]):
        idx = [t for t in range(r.shape[1]) if m[b, t] > 0]
        a_next, v_next = 0.0, 0.0
        for t in reversed(idx):
            delta = r[b, t].item() + gamma * v_next - v[b, t].item()
            a_next = delta + gamma * lam * a_next
            v_next = v[b, t].item()
            adv[b, t] = a_next
    return adv, (adv + v) * m


def test_gae_matches_an_unrolled_loop_on_variable_length_rows():
    g = torch.Generator().manual_seed(0)
    mask = torch.tensor(
        [
            [1, 1, 1, 1, 1, 1],
            [1, 1, 1, 0, 0, 0],
            [0, 0, 1, 1, 1, 0],
            [1, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0],
            [1, 0, 0, 1, 1, 0],
        ],  # last row: a masked gap (e.g. tool output) is skipped, not a terminal
        dtype=torch.float64,
    )
    r = torch.randn(6, 6, generator=g, dtype=torch.float64) * mask
    r[0, 2] = 3.0  # token rewards may sit mid-sequence, not only on the last token
    v = torch.randn(6, 6, generator=g, dtype=torch.float64)
    for gamma, lam in [(1.0, 1.0), (0.99, 0.95), (0.5, 0.0)]:
        adv, ret = gae(r, v, mask, gamma=gamma, lam=lam)
        want_adv, want_ret = _gae_reference(r, v, mask, gamma, lam)
        assert torch.allclose(adv, want_adv) and torch.allclose(ret, want_ret)
        assert torch.equal(adv * (1 - mask), torch.zeros_like(adv))


def test_gae_with_gamma_and_lambda_one_gives_reward_to_go_returns():
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    r = place_outcome_rewards(torch.tensor([2.0]), mask)
    _, ret = gae(r, torch.tensor([[0.3, -0.2, 0.9, 5.0]]), mask, gamma=1.0, lam=1.0)
    assert torch.allclose(ret, torch.tensor([[2.0, 2.0, 2.0, 0.0]]))


def test_gae_rejects_bad_shapes_and_discounts():
    m = torch.ones(2, 3)
    with pytest.raises(ValueError, match="values has shape"):
        gae(torch.zeros(2, 3), torch.zeros(2, 4), m)
    with pytest.raises(ValueError, match="gamma and lam"):
        gae(torch.zeros(2, 3), torch.zeros(2, 3), m, gamma=1.5)
