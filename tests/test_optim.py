import math

import pytest
import torch

from rlreason.optim import build_adamw, clip_gradients, lr_at, plot_schedule

S = dict(warmup_steps=10, total_steps=110, initial_lr=1e-4, peak_lr=1e-2, min_lr=1e-3)


def test_lr_at_matches_hand_computed_values():
    assert lr_at(0, **S) == pytest.approx(1e-4)  # first step: initial_lr
    assert lr_at(5, **S) == pytest.approx(1e-4 + 5 * (1e-2 - 1e-4) / 10)
    assert lr_at(10, **S) == pytest.approx(1e-2)  # end of warmup: peak
    assert lr_at(60, **S) == pytest.approx(1e-3 + 9e-3 * 0.5)  # mid-cosine: halfway
    assert lr_at(35, **S) == pytest.approx(1e-3 + 9e-3 * 0.5 * (1 + math.cos(math.pi / 4)))
    assert lr_at(110, **S) == pytest.approx(1e-3)  # end: min_lr
    assert lr_at(500, **S) == pytest.approx(1e-3)


def test_no_warmup_starts_at_peak_and_invalid_schedules_are_errors():
    assert lr_at(0, warmup_steps=0, total_steps=10, initial_lr=0, peak_lr=1.0, min_lr=0) == 1.0
    # a warmup as long as the run: linear to the peak, no decay phase
    full = dict(warmup_steps=4, total_steps=4, initial_lr=0, peak_lr=1.0, min_lr=0.1)
    assert [lr_at(s, **full) for s in (1, 2, 4, 6)] == [0.25, 0.5, 1.0, 1.0]
    with pytest.raises(ValueError, match="warmup_steps"):
        lr_at(0, warmup_steps=20, total_steps=10, initial_lr=0, peak_lr=1, min_lr=0)
    with pytest.raises(ValueError, match="step"):
        lr_at(-1, **S)


def test_adamw_puts_no_weight_decay_on_norms_and_biases():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    opt = build_adamw(model, lr=1e-3, weight_decay=0.1)
    by_decay = {g["weight_decay"]: sum(p.numel() for p in g["params"]) for g in opt.param_groups}
    assert by_decay == {0.1: 16, 0.0: 4 + 4 + 4}


def _grads(norm):
    p = torch.nn.Parameter(torch.zeros(4))
    p.grad = torch.full((4,), norm / 2.0)  # ||g|| = norm
    return p


def test_clipping_returns_the_preclip_norm_and_respects_the_warmup_option():
    p = _grads(10.0)
    assert clip_gradients([p], 1.0) == pytest.approx(10.0)
    assert p.grad.norm().item() == pytest.approx(1.0, rel=1e-4)
    q = _grads(10.0)
    clip_gradients([q], 1.0, step=3, warmup_steps=5, after_warmup_only=True)
    assert q.grad.norm().item() == pytest.approx(10.0)
    clip_gradients([q], 1.0, step=5, warmup_steps=5, after_warmup_only=True)
    assert q.grad.norm().item() == pytest.approx(1.0, rel=1e-4)


def test_schedule_plot_is_a_png(tmp_path):
    path = plot_schedule(tmp_path / "lr.png", **S)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
