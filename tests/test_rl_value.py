"""Value head shapes and init, clipped value loss against hand values."""

import pytest
import torch

from rlreason.rl.losses import loss_norm
from rlreason.rl.value import ValueHead, value_loss, value_loss_tok


def test_value_head_maps_hidden_states_to_one_value_per_position():
    torch.manual_seed(0)
    head = ValueHead(8)
    hidden = torch.randn(3, 5, 8)
    v = head(hidden)
    assert v.shape == (3, 5) and v.dtype == torch.float32
    assert v.abs().max().item() < 0.05  # small init: values start near 0
    assert torch.allclose(v, hidden @ head.proj.weight[0])  # bias starts at 0
    assert head(hidden.to(torch.bfloat16)).dtype == torch.float32
    with pytest.raises(ValueError, match="expected hidden \\(B, T, 8\\)"):
        head(torch.randn(3, 5, 7))


def test_value_head_gradient_reaches_the_trunk():
    head = ValueHead(4)
    hidden = torch.randn(2, 3, 4, requires_grad=True)
    head(hidden).sum().backward()
    assert hidden.grad is not None and hidden.grad.abs().sum() > 0


def _one_row(values):
    v = torch.tensor([values], dtype=torch.float64, requires_grad=True)
    old = torch.ones_like(v).detach()
    ret = torch.full_like(old, 2.0)
    return v, old, ret, torch.ones_like(old)


def test_clipped_value_loss_takes_the_larger_error_as_in_ppo2():
    v, old, ret, mask = _one_row([1.5, 0.9, 3.0])
    loss, bound = value_loss_tok(v, old, ret, mask, clip=0.2)
    # 1.5: clipped to 1.2 -> 0.5*0.8^2 (no grad); 0.9: inside -> 0.5*1.1^2; 3.0: clip 1.2 error 0.8 < 1.0
    assert torch.allclose(loss, torch.tensor([[0.32, 0.605, 0.5]], dtype=torch.float64))
    assert bound.tolist() == [[1.0, 0.0, 0.0]]
    (grad,) = torch.autograd.grad(loss.sum(), v)
    assert torch.allclose(grad, torch.tensor([[0.0, -1.1, 1.0]], dtype=torch.float64))


def test_unclipped_value_loss_is_half_squared_error():
    v, old, ret, mask = _one_row([1.5, 0.9, 3.0])
    loss, bound = value_loss_tok(v, old, ret, mask, clip=None)
    assert torch.allclose(loss, torch.tensor([[0.125, 0.605, 0.5]], dtype=torch.float64))
    assert bound.sum() == 0
    with pytest.raises(ValueError, match="clip must be > 0"):
        value_loss_tok(v, old, ret, mask, clip=0.0)


def test_value_loss_is_aggregated_over_valid_tokens_with_stats():
    v = torch.tensor([[1.5, 0.9, 7.0], [3.0, 0.0, 0.0]])
    old, ret = torch.ones(2, 3), torch.full((2, 3), 2.0)
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    loss, st = value_loss(
        v, old, ret, mask, loss_norm(mask), clip=0.2, aggregation="seq_mean_token_mean"
    )
    assert loss.item() == pytest.approx(((0.32 + 0.605) / 2 + 0.5) / 2)
    assert st["loss/value"] == pytest.approx(loss.item())
    assert st["value/clipfrac"] == pytest.approx(1 / 3)
    assert st["value/mean"] == pytest.approx((1.5 + 0.9 + 3.0) / 3)
    assert st["value/returns_mean"] == pytest.approx(2.0)
