import os

import pytest
import torch

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
torch.set_num_threads(1)  # tiny models: threads only add contention

from rlreason.model.gpt import GPT, GPTConfig  # noqa: E402
from rlreason.model.hf.smollm2 import FixtureUnavailable, build_smollm2_dir  # noqa: E402


def tiny_config(flavour: str, **kw) -> GPTConfig:
    base = dict(vocab_size=50, n_layer=2, n_head=4, d_model=32, max_seq_len=96, flavour=flavour)
    if flavour == "llama":
        base.update(n_kv_head=2, qk_norm=True, qkv_bias=True)
    base.update(kw)
    return GPTConfig(**base)


@pytest.fixture(params=["gpt2", "llama"])
def tiny_model(request):
    torch.manual_seed(0)
    return GPT(tiny_config(request.param)).eval()


@pytest.fixture(scope="session")
def smollm2_dir():
    """SmolLM2-135M-Instruct as a HF directory (float32), built once into the cache (~30 s)."""
    try:
        return build_smollm2_dir(log=lambda *a: None)
    except FixtureUnavailable as e:
        pytest.skip(f"SmolLM2 fixture unavailable: {e}")
