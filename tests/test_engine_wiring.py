"""`sampling.engine` and `model.attn_padding` reach the trainer's generation and the policy."""

import pytest
import torch

import rlreason.rl.trainer as trainer_mod
from rlreason.config import ConfigError, validate
from tests.test_wiring import make_trainer


def test_the_static_engine_setting_reaches_generate_and_gives_the_eager_batch(
    tmp_path, monkeypatch
):
    seen, real = [], trainer_mod.generate

    def spy(*args, **kw):
        seen.append(kw.get("static", False))
        return real(*args, **kw)

    monkeypatch.setattr(trainer_mod, "generate", spy)
    batches = {}
    for engine in ("eager", "static"):
        trainer = make_trainer(tmp_path / engine)
        trainer.cfg.sampling.engine = engine
        batches[engine], _ = trainer.collect(1)
    assert seen == [False, True]
    a, b = batches["eager"], batches["static"]
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.mask, b.mask)
    torch.testing.assert_close(a.sampler_logp, b.sampler_logp, atol=1e-5, rtol=1e-5)
    assert a.texts == b.texts and a.finish_reasons == b.finish_reasons


def test_an_unknown_engine_is_a_config_error():
    from rlreason.config import Config

    cfg = Config()
    cfg.sampling.engine = "vllm"
    with pytest.raises(ConfigError, match="sampling.engine='vllm'"):
        validate(cfg)


@pytest.mark.parametrize("padding", ["mask", "compact"])
def test_the_policy_builder_sets_how_padded_forwards_attend(padding):
    from experiments.build import build_policy
    from rlreason.config import LoRAConfig, ModelConfig

    cfg = ModelConfig(source="scratch", n_layer=1, d_model=32, n_head=2, device="cpu")
    cfg.attn_padding = padding
    model, _ = build_policy(cfg, LoRAConfig())
    assert model.attn_padding == padding
