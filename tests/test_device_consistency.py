"""Device consistency of the training batch and the loss path, checked without a GPU.

Tensors on the `meta` device carry shapes and dtypes but no data; an op that mixes a meta tensor
with a CPU tensor raises "Tensor on device cpu is not on the expected device meta", just as a CUDA
run raises when a CPU tensor slips in. So the loss path run on meta inputs fails here whenever a
function builds a tensor on the default device instead of its inputs' device.
"""

import pytest
import torch

from rlreason.rl.batch import RolloutBatch, concat
from rlreason.rl.losses import (
    AGGREGATIONS,
    KL_ESTIMATORS,
    RATIO_LEVELS,
    LossNorm,
    LossSettings,
    loss_terms,
    truncation_mask,
)
from rlreason.rl.update import prepare
from rlreason.rl.value import value_loss_tok

META = torch.device("meta")


def _batch(device, B=4, T=5, **fields):
    kw = dict(
        prompt_ids=[[1, 2]] * B,
        tokens=torch.zeros(B, T, dtype=torch.long, device=device),
        mask=torch.ones(B, T, device=device),
        sampler_logp=torch.zeros(B, T, device=device),
        rewards=torch.zeros(B, device=device),
        finish_reasons=["eos"] * B,
        texts=[""] * B,
        tasks=[None] * B,
        components={"accuracy": [0.0] * B},
    )
    kw.update(fields)
    return RolloutBatch(**kw)


def test_a_rollout_batch_with_a_field_on_another_device_is_refused_and_the_field_named():
    with pytest.raises(ValueError, match=r"rewards.*meta"):
        _batch("cpu", rewards=torch.zeros(4, device=META))


def test_a_batch_built_on_the_meta_device_keeps_every_field_there_through_rows_crop_and_concat():
    b = _batch(META, adv=torch.zeros(4, device=META))
    assert b.device == META
    for out in (b.rows([2, 0]), b.crop(3), concat([b, b], pad_id=0), b.rows([1]).crop(2)):
        out.check_devices(META)
        assert out.tokens.device == META and out.rewards.device == META
    assert b.rows([2, 0]).tokens.shape == (2, 5) and b.crop(3).mask.shape == (4, 3)


def test_moving_a_batch_moves_every_tensor_field_together():
    b = _batch("cpu", adv=torch.ones(4)).to(META)
    b.check_devices(META)
    assert b.adv.device == META and b.sampler_logp.device == META


@pytest.mark.parametrize("aggregation", sorted(AGGREGATIONS))
@pytest.mark.parametrize("ratio_level", list(RATIO_LEVELS))
def test_the_loss_with_kl_and_entropy_builds_no_tensor_off_the_inputs_device(
    aggregation, ratio_level
):
    B, T = 4, 6
    logp = torch.zeros(B, T, device=META, requires_grad=True)
    like = lambda: torch.zeros(B, T, device=META)
    norm = LossNorm(n_tokens=20.0, n_seqs=4.0, max_len=T)
    for kl_kind in sorted(KL_ESTIMATORS):
        settings = LossSettings(
            aggregation=aggregation,
            ratio_level=ratio_level,
            dual_clip=3.0,
            kl_coef=0.1,
            kl_kind=kl_kind,
            entropy_coef=0.01,
        )
        loss, stats = loss_terms(
            logp,
            like(),
            torch.zeros(B, device=META),
            like(),
            norm,
            settings,
            ref_logp=like(),
            entropy=like(),
        )
        assert loss.device == META and loss.dim() == 0
        assert all(v.device == META for v in stats.values()), stats.keys()
        loss.backward()  # the backward graph stays on the device too


def test_the_value_loss_and_the_truncation_mask_stay_on_the_inputs_device():
    z = torch.zeros(3, 4, device=META)
    loss_tok, clipped = value_loss_tok(z, z, z, z, clip=0.2)
    assert loss_tok.device == META and clipped.device == META
    assert truncation_mask(["eos", "length", "stop"], z).device == META


def test_prepare_refuses_a_batch_on_another_device_than_the_model():
    from types import SimpleNamespace

    from rlreason.rl.update import Forward, Policy

    model = torch.nn.Linear(2, 2)  # on the CPU
    algo = SimpleNamespace(epochs=1, minibatches=1, kl_coef=0.0, log_kl=False)
    with pytest.raises(ValueError, match="must be on cpu"):
        prepare(
            Policy(model), _batch(META), algo, Forward(pad_id=0, temperature=1.0, max_new_tokens=5)
        )
