"""Policy loss, KL estimators, aggregation modes and total loss against hand-computed values."""

import math

import pytest
import torch

from rlreason.rl.losses import (
    AGGREGATIONS,
    KL_ESTIMATORS,
    LossSettings,
    get_aggregation,
    kl_penalty,
    loss_norm,
    policy_loss,
    total_loss,
    truncation_mask,
)


def _tokens(ratios, advs, **kw):
    """One row whose token ratios are given; returns loss (T,), d loss / d logp (T,), stats."""
    old = torch.full((1, len(ratios)), -1.0, dtype=torch.float64)
    logp = (old + torch.log(torch.tensor([ratios], dtype=torch.float64))).requires_grad_()
    adv = torch.tensor([advs], dtype=torch.float64)
    loss, st = policy_loss(logp, old, adv, torch.ones_like(old), **kw)
    (grad,) = torch.autograd.grad(loss.sum(), logp)
    return loss[0], grad[0], st


def test_symmetric_clip_matches_hand_values_for_both_advantage_signs():
    loss, grad, st = _tokens([1.5, 0.5, 0.5, 1.5, 1.1], [2.0, 2.0, -1.0, -1.0, 1.0])
    # A>0 r=1.5: clipped to 1.2; A>0 r=0.5: not clipped; A<0 r=0.5: clipped to 0.8; A<0 r=1.5: not
    assert torch.allclose(loss, torch.tensor([-2.4, -1.0, 0.8, 1.5, -1.1], dtype=torch.float64))
    assert torch.allclose(
        grad, torch.tensor([0.0, -1.0, 0.0, 1.5, -1.1], dtype=torch.float64)
    )  # -A r
    assert st.clipped_high[0].tolist() == [1, 0, 0, 0, 0]
    assert st.clipped_low[0].tolist() == [0, 0, 1, 0, 0]


def test_clip_higher_widens_only_the_upper_side():
    loss, grad, st = _tokens([1.25, 0.75, 1.3], [1.0, -1.0, 1.0], clip_low=0.2, clip_high=0.28)
    assert torch.allclose(loss, torch.tensor([-1.25, 0.8, -1.28], dtype=torch.float64))
    assert grad.tolist()[:2] == pytest.approx([-1.25, 0.0]) and grad[2].item() == 0.0
    sym, _, _ = _tokens([1.25], [1.0], clip_low=0.2, clip_high=0.2)
    assert sym.item() == pytest.approx(-1.2)  # the same token is clipped under symmetric 0.2


def test_dual_clip_caps_the_loss_of_negative_advantages_only():
    loss, grad, st = _tokens([5.0, 2.0, 5.0], [-1.0, -1.0, 1.0], dual_clip=3.0)
    assert torch.allclose(loss, torch.tensor([3.0, 2.0, -1.2], dtype=torch.float64))
    assert torch.allclose(grad, torch.tensor([0.0, 2.0, 0.0], dtype=torch.float64))
    assert st.dual_clipped[0].tolist() == [1, 0, 0]
    no_dual, _, _ = _tokens([5.0], [-1.0])
    assert no_dual.item() == pytest.approx(5.0)


def test_bad_clip_settings_are_rejected():
    with pytest.raises(ValueError, match="dual_clip must be > 1"):
        _tokens([1.0], [1.0], dual_clip=0.5)
    with pytest.raises(ValueError, match="ratio_level"):
        _tokens([1.0], [1.0], ratio_level="seq")
    with pytest.raises(ValueError, match="adv must be"):
        policy_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(3), torch.ones(2, 3))


def test_padding_garbage_never_reaches_loss_or_gradient():
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    logp = torch.tensor([[-1.0, -2.0, float("nan")]], requires_grad=True)
    old = torch.tensor([[-1.0, -2.0, -1e4]])
    norm = loss_norm(mask)
    settings = LossSettings(kl_coef=0.1, kl_kind="k3")
    loss, stats = total_loss(logp, old, torch.ones(1), mask, norm, settings, ref_logp=old)
    loss.backward()
    assert math.isfinite(loss.item()) and torch.isfinite(logp.grad).all()
    assert stats["policy/ratio_mean"] == pytest.approx(1.0)


def test_sequence_ratio_is_the_length_normalised_geometric_mean():
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]], dtype=torch.float64)
    old = torch.zeros(1, 4, dtype=torch.float64)
    logp = torch.tensor([[0.3, -0.1, 0.1, 50.0]], dtype=torch.float64)
    _, st = policy_loss(
        logp, old, torch.ones(1, dtype=torch.float64), mask, ratio_level="sequence", clip_high=1.0
    )
    assert torch.allclose(
        st.ratio, torch.tensor([[math.exp(0.1)] * 3 + [0.0]], dtype=torch.float64)
    )


def test_sequence_ratio_gradient_equals_the_gspo_sequence_objective():
    g = torch.Generator().manual_seed(1)
    mask = torch.tensor(
        [[1, 1, 1, 1, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=torch.float64
    )
    old = -torch.rand(4, 5, generator=g, dtype=torch.float64)
    logp = (old + 0.2 * torch.randn(4, 5, generator=g, dtype=torch.float64)).requires_grad_()
    adv = torch.tensor([1.0, -0.5, 2.0, -1.5], dtype=torch.float64)
    lo, hi = 0.03, 0.05
    loss_tok, st = policy_loss(
        logp, old, adv, mask, clip_low=lo, clip_high=hi, ratio_level="sequence"
    )
    agg = AGGREGATIONS["seq_mean_token_mean"]
    (g_ours,) = torch.autograd.grad(agg.aggregate(loss_tok, mask, agg.normalizer(mask)), logp)
    # GSPO written directly on sequences: s_i = exp(mean log ratio), J = mean_i min(s A, clip(s) A)
    s = torch.exp(((logp - old) * mask).sum(1) / mask.sum(1))
    j = torch.minimum(s * adv, s.clamp(1 - lo, 1 + hi) * adv).mean()
    (g_ref,) = torch.autograd.grad(-j, logp)
    assert torch.allclose(g_ours, g_ref, atol=1e-12)
    assert 0 < (st.clipped_low + st.clipped_high).sum() < mask.sum()  # some rows clipped, some not


def test_kl_estimators_match_hand_values():
    logp = torch.tensor([[-1.0, -2.0, -0.5]], dtype=torch.float64)
    ref = torch.tensor([[-2.0, -1.0, -0.5]], dtype=torch.float64)
    assert kl_penalty(logp, ref, "k1").tolist() == [[1.0, -1.0, 0.0]]
    assert kl_penalty(logp, ref, "k2").tolist() == [[0.5, 0.5, 0.0]]
    assert torch.allclose(
        kl_penalty(logp, ref, "k3"),
        torch.tensor([[math.exp(-1), math.e - 2, 0.0]], dtype=torch.float64),
    )
    with pytest.raises(KeyError, match="known"):
        kl_penalty(logp, ref, "k4")


def _categorical():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(6, generator=g, dtype=torch.float64).requires_grad_()
    logq = torch.log_softmax(torch.randn(6, generator=g, dtype=torch.float64), 0)
    return logits, logq


@pytest.mark.parametrize("kind", ["k1", "k3"])
def test_k1_and_k3_are_unbiased_for_the_exact_kl(kind):
    logits, logq = _categorical()
    logp = torch.log_softmax(logits, 0)
    exact = (logp.exp() * (logp - logq)).sum()
    expected = (
        logp.exp() * KL_ESTIMATORS[kind](logp, logq)
    ).sum()  # E over x ~ p, computed exactly
    assert expected.item() == pytest.approx(exact.item(), rel=1e-12)


def test_k1_and_k3_sample_means_approach_the_exact_kl():
    logits, logq = _categorical()
    logp = torch.log_softmax(logits.detach(), 0)
    exact = (logp.exp() * (logp - logq)).sum().item()
    x = torch.multinomial(
        logp.exp(), 200_000, replacement=True, generator=torch.Generator().manual_seed(3)
    )
    for kind in ("k1", "k3"):
        k = KL_ESTIMATORS[kind](logp[x], logq[x])
        assert abs(k.mean().item() - exact) < 4 * k.std().item() / math.sqrt(len(x))


def test_kl_loss_gradients_are_as_documented():
    logits, logq = _categorical()
    logp = torch.log_softmax(logits, 0)
    p = logp.exp().detach()  # the sampling distribution does not carry gradient

    def grad(f):
        return torch.autograd.grad(f, logits, retain_graph=True)[0]

    expected_grad = {k: grad((p * KL_ESTIMATORS[k](logp, logq)).sum()) for k in KL_ESTIMATORS}
    reverse = grad((logp.exp() * (logp - logq)).sum())  # grad KL(pi || ref)
    forward = grad((logq.exp() * (logq - logp)).sum())  # grad KL(ref || pi)
    assert torch.allclose(expected_grad["k1"], torch.zeros(6, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(expected_grad["k2"], reverse)
    assert torch.allclose(expected_grad["k3"], forward)


LOSS = torch.tensor([[1.0, 2.0, 3.0, 0.0], [4.0, 0.0, 0.0, 0.0], [9.0, 9.0, 9.0, 9.0]])
MASK = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])


@pytest.mark.parametrize(
    "mode, want",
    [
        ("token_mean", 10 / 4),
        ("seq_mean_token_mean", (2 + 4) / 2),
        ("seq_mean_token_sum_norm", 10 / (2 * 5)),
    ],
)
def test_aggregations_match_hand_values_and_skip_empty_rows(mode, want):
    agg = AGGREGATIONS[mode]
    norm = agg.normalizer(MASK, max_len=5)
    assert (norm.n_tokens, norm.n_seqs) == (4.0, 2.0)
    assert agg.aggregate(LOSS, MASK, norm).item() == pytest.approx(want)


def test_an_all_masked_batch_gives_zero_loss():
    agg = AGGREGATIONS["seq_mean_token_mean"]
    zero = torch.zeros(2, 3)
    assert agg.aggregate(torch.ones(2, 3), zero, agg.normalizer(zero)).item() == 0.0


def test_aggregation_errors_name_the_problem():
    with pytest.raises(ValueError, match="needs LossNorm.max_len"):
        AGGREGATIONS["seq_mean_token_sum_norm"].normalizer(MASK)
    with pytest.raises(ValueError, match="row 0 has 3 valid tokens, more than max_len=2"):
        loss_norm(MASK, max_len=2)
    with pytest.raises(ValueError, match="float \\(B, T\\)"):
        loss_norm(MASK.long())
    with pytest.raises(KeyError, match="known"):
        get_aggregation("sum")


def test_total_loss_composes_policy_kl_and_entropy_terms():
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    old = torch.tensor([[-1.0, -1.0, 0.0], [-2.0, -1.0, -0.5]])
    logp = old + torch.tensor([[0.5, 0.0, 0.0], [0.0, -0.5, 0.1]])
    ref = old - 0.3
    ent = torch.tensor([[1.0, 2.0, 0.0], [3.0, 4.0, 5.0]])
    adv = torch.tensor([1.0, -1.0])
    norm = loss_norm(mask)
    loss, st = total_loss(
        logp,
        old,
        adv,
        mask,
        norm,
        LossSettings(kl_coef=0.1, kl_kind="k2", entropy_coef=0.01),
        ref_logp=ref,
        entropy=ent,
    )
    # policy per token: r=e^.5 clipped 1.2 -> -1.2; r=1 -> -1; A=-1: r=1 -> 1; r=e^-.5 -> 0.8; r=e^.1
    pol = (-1.2 - 1.0 + 1.0 + 0.8 + math.exp(0.1)) / 5
    kl = sum(0.5 * d * d for d in [0.8, 0.3, 0.3, -0.2, 0.4]) / 5
    assert st["loss/policy"] == pytest.approx(pol)
    assert st["loss/kl"] == pytest.approx(kl) and st["policy/kl"] == pytest.approx(kl)
    assert st["loss/entropy"] == pytest.approx(15 / 5)
    assert loss.item() == pytest.approx(pol + 0.1 * kl - 0.01 * 3.0) == st["loss/total"]
    assert st["policy/clipfrac_high"] == pytest.approx(1 / 5) and st[
        "policy/clipfrac_low"
    ] == pytest.approx(1 / 5)
    assert st["policy/ratio_mean"] == pytest.approx(
        (2 + math.exp(0.5) + math.exp(-0.5) + math.exp(0.1)) / 5
    )


def test_kl_is_logged_at_zero_coefficient_and_required_when_weighted():
    mask = torch.ones(1, 2)
    lp = torch.tensor([[-1.0, -1.0]])
    loss0, st = total_loss(lp, lp, torch.ones(1), mask, loss_norm(mask), ref_logp=lp - 1.0)
    assert st["loss/kl"] == pytest.approx(math.exp(-1)) and loss0.item() == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="needs ref_logp"):
        total_loss(lp, lp, torch.ones(1), mask, loss_norm(mask), LossSettings(kl_coef=0.1))
    with pytest.raises(ValueError, match="needs entropy"):
        total_loss(lp, lp, torch.ones(1), mask, loss_norm(mask), LossSettings(entropy_coef=0.1))


def test_truncated_rows_are_masked_only_when_configured():
    mask = torch.ones(3, 2)
    got = truncation_mask(["stop", "length", "stop_string"], mask)
    assert got.tolist() == [[1, 1], [0, 0], [1, 1]]
    assert truncation_mask(["length"] * 3, mask, mask_truncated=False) is mask
    with pytest.raises(ValueError, match="2 finish reasons for 3 rows"):
        truncation_mask(["stop", "stop"], mask)
