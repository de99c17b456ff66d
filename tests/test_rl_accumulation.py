"""Micro-batched, accumulated (and simulated multi-rank) gradients equal the full-batch gradient.

A tiny linear "policy" (features @ W -> logits) scores fixed sampled tokens; rows have variable
lengths, one is left-padded and one is empty (a masked-out truncation). For every aggregation mode
the full-batch gradient must equal the sum of micro-batch gradients for several splits, in float64.
A naive per-micro-batch mean is shown NOT to match, so these tests can fail.
"""

import pytest
import torch

from rlreason.rl.losses import AGGREGATIONS, LossSettings, loss_norm, total_loss
from rlreason.rl.value import value_loss

B, T, C, V = 6, 7, 5, 11
MAX_LEN = 8
SPLITS = [[1] * B, [2, 2, 2], [3, 1, 2]]
MODES = sorted(AGGREGATIONS)


def _setup():
    g = torch.Generator().manual_seed(0)

    def rnd(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    lengths = [(0, 7), (0, 3), (2, 5), (0, 1), (0, 0), (0, 4)]  # (start, end) of valid tokens
    mask = torch.zeros(B, T, dtype=torch.float64)
    for b, (s, e) in enumerate(lengths):
        mask[b, s:e] = 1.0
    x = rnd(B, T, C)
    tokens = torch.randint(V, (B, T), generator=g)
    W = (0.5 * rnd(V, C)).requires_grad_()
    with torch.no_grad():
        old, _ = _logp_entropy(W + 0.3 * rnd(V, C), x, tokens)
        ref, _ = _logp_entropy(W + 0.5 * rnd(V, C), x, tokens)
        old = torch.where(mask > 0, old, 1e3)  # padding garbage that would overflow if used
    return dict(
        x=x, tokens=tokens, W=W, mask=mask, old=old, ref=ref, adv_seq=rnd(B), adv_tok=rnd(B, T)
    )


def _logp_entropy(W, x, tokens):
    logits = x @ W.T  # (B, T, V)
    logp_all = torch.log_softmax(logits, -1)  # (B, T, V)
    logp = logp_all.gather(-1, tokens[..., None]).squeeze(-1)  # (B, T)
    return logp, -(logp_all.exp() * logp_all).sum(-1)  # (B, T), (B, T)


def _loss(d, rows, norm, mode, terms, ratio_level, adv_key):
    logp, ent = _logp_entropy(d["W"], d["x"][rows], d["tokens"][rows])
    extra, coefs = {}, {}
    if terms == "all":
        extra = dict(ref_logp=d["ref"][rows], entropy=ent)
        coefs = dict(kl_coef=0.1, kl_kind="k3", entropy_coef=0.01)
    clip = (
        dict(clip_low=0.2, clip_high=0.28)
        if ratio_level == "token"
        else dict(clip_low=0.04, clip_high=0.05)
    )
    return total_loss(
        logp,
        d["old"][rows],
        d[adv_key][rows],
        d["mask"][rows],
        norm,
        LossSettings(aggregation=mode, dual_clip=2.0, ratio_level=ratio_level, **clip, **coefs),
        **extra,
    )


def _chunks(split):
    starts = [sum(split[:i]) for i in range(len(split))]
    return [slice(s, s + n) for s, n in zip(starts, split)]


def _accumulate(d, split, norm_of, mode, terms, ratio_level, adv_key):
    """Sum of micro-batch gradients and stats; norm_of(rows) gives each micro-batch's LossNorm."""
    grad, stats = torch.zeros_like(d["W"]), {}
    for rows in _chunks(split):
        loss, st = _loss(d, rows, norm_of(rows), mode, terms, ratio_level, adv_key)
        grad += torch.autograd.grad(loss, d["W"])[0]
        stats = {k: stats.get(k, 0.0) + v for k, v in st.items()}
    return grad, stats


def _full(d, mode, terms, ratio_level, adv_key):
    norm = AGGREGATIONS[mode].normalizer(d["mask"], MAX_LEN)
    loss, stats = _loss(d, slice(0, B), norm, mode, terms, ratio_level, adv_key)
    return torch.autograd.grad(loss, d["W"])[0], stats, norm


CASES = [
    ("policy", "token", "adv_seq"),
    ("all", "token", "adv_seq"),
    ("all", "token", "adv_tok"),
    ("all", "sequence", "adv_seq"),
]


@pytest.mark.parametrize("terms, ratio_level, adv_key", CASES)
@pytest.mark.parametrize("mode", MODES)
def test_micro_batch_gradients_sum_to_the_full_batch_gradient(mode, terms, ratio_level, adv_key):
    d = _setup()
    g_full, st_full, norm = _full(d, mode, terms, ratio_level, adv_key)
    clipped = sum(
        st_full[f"policy/{k}"] for k in ("clipfrac_low", "clipfrac_high", "dualclip_frac")
    )
    assert 0 < clipped < 1  # clipped and unclipped tokens both occur
    assert g_full.abs().max() > 1e-3
    for split in SPLITS:
        g_acc, st_acc = _accumulate(d, split, lambda rows: norm, mode, terms, ratio_level, adv_key)
        assert torch.allclose(g_acc, g_full, rtol=0, atol=1e-10), f"split {split}"
        for k, v in st_full.items():
            assert st_acc[k] == pytest.approx(v, rel=1e-9, abs=1e-12), f"stat {k}, split {split}"


@pytest.mark.parametrize("mode", MODES)
def test_a_naive_per_micro_batch_mean_does_not_match(mode):
    d = _setup()
    g_full, _, _ = _full(d, mode, "all", "token", "adv_seq")
    split = [3, 1, 2]
    naive = lambda rows: AGGREGATIONS[mode].normalizer(d["mask"][rows], MAX_LEN)
    g_naive, _ = _accumulate(d, split, naive, mode, "all", "token", "adv_seq")
    g_naive = g_naive / len(split)  # mean of the micro-batch means, as naive accumulation does
    assert (g_naive - g_full).abs().max() > 1e-3 * g_full.abs().max()


@pytest.mark.parametrize("mode", MODES)
def test_simulated_ranks_with_summed_counts_match_the_full_batch(mode):
    d = _setup()
    g_full, _, _ = _full(d, mode, "all", "sequence", "adv_seq")
    ranks = [slice(0, 4), slice(4, 6)]  # uneven shards, like a last partial batch
    norm = loss_norm(d["mask"][ranks[0]], MAX_LEN) + loss_norm(
        d["mask"][ranks[1]], MAX_LEN
    )  # all-reduced counts
    per_rank = []
    for shard in ranks:
        grad = torch.zeros_like(d["W"])
        for i in range(shard.start, shard.stop):  # micro-batches of one row on each rank
            loss, _ = _loss(d, slice(i, i + 1), norm, mode, "all", "sequence", "adv_seq")
            grad += torch.autograd.grad(loss * len(ranks), d["W"])[0]  # loss x world size
        per_rank.append(grad)
    g_ddp = sum(per_rank) / len(ranks)  # DDP averages gradients over ranks
    assert torch.allclose(g_ddp, g_full, rtol=0, atol=1e-10)


@pytest.mark.parametrize("mode", MODES)
def test_value_loss_accumulates_exactly(mode):
    d = _setup()
    g = torch.Generator().manual_seed(5)
    w = torch.randn(C, dtype=torch.float64, generator=g).requires_grad_()
    old = torch.randn(B, T, dtype=torch.float64, generator=g)
    ret = torch.randn(B, T, dtype=torch.float64, generator=g)
    norm = AGGREGATIONS[mode].normalizer(d["mask"], MAX_LEN)

    def grad(rows):
        loss, _ = value_loss(
            d["x"][rows] @ w,
            old[rows],
            ret[rows],
            d["mask"][rows],
            norm,
            clip=0.2,
            aggregation=mode,
        )
        return torch.autograd.grad(loss, w)[0]

    g_full = grad(slice(0, B))
    for split in SPLITS:
        assert torch.allclose(
            sum(grad(rows) for rows in _chunks(split)), g_full, rtol=0, atol=1e-10
        )
