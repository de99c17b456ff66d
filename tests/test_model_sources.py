"""Model sources a stage can start from: a run directory (LoRA folded) and the small base."""

import pytest
import torch

from experiments.models import build_model
from rlreason.config import ModelConfig
from rlreason.model.lora import apply_lora, fold_lora, lora_modules
from tests.test_eval_cli import train_tiny_run


def test_folding_adapters_leaves_plain_linears_with_the_adapted_logits(tiny_model):
    torch.manual_seed(1)
    apply_lora(tiny_model, rank=2, alpha=4.0)
    for _, m in lora_modules(tiny_model):
        torch.nn.init.normal_(m.lora_B.weight, std=0.5)  # a nonzero update
    ids = torch.randint(0, 50, (2, 9), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        adapted = tiny_model(ids)
        folded = fold_lora(tiny_model)(ids)
    assert not lora_modules(tiny_model)
    assert all(type(m) is torch.nn.Linear for n, m in tiny_model.named_modules() if "proj" in n)
    torch.testing.assert_close(folded, adapted, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("lora", [False, True])
def test_a_run_directory_source_starts_from_the_runs_trained_policy(tmp_path, lora):
    trained = train_tiny_run(tmp_path / "run", lora)
    model, tok = build_model(ModelConfig(source="run", path=str(tmp_path / "run"), device="cpu"))
    ids = torch.randint(
        0, model.config.vocab_size, (2, 12), generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        torch.testing.assert_close(model(ids), trained(ids), atol=1e-5, rtol=1e-5)
    assert not lora_modules(model)  # the next stage adds its own adapters, if any
    assert all(p.requires_grad for p in model.parameters())  # full fine-tuning can train it
    assert tok.vocab_size == model.config.vocab_size


def test_a_run_source_without_a_path_names_the_missing_key():
    with pytest.raises(ValueError, match="model.path"):
        build_model(ModelConfig(source="run"))
