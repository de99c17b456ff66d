"""Hugging Face checkpoints: `load_pretrained` (load.py), `save_merged` (export.py), PEFT adapters
in and out (peft.py), the architecture tables (arch.py) and the tokenizer.json wrapper."""

from rlreason.model.hf.export import save_merged
from rlreason.model.hf.files import CheckpointError
from rlreason.model.hf.load import load_pretrained
from rlreason.model.hf.peft import load_peft_adapter, save_peft_adapter
from rlreason.model.hf.tokenizer import HFTokenizer

__all__ = [
    "CheckpointError",
    "HFTokenizer",
    "load_peft_adapter",
    "load_pretrained",
    "save_merged",
    "save_peft_adapter",
]
