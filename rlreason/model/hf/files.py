"""Shared pieces of Hugging Face checkpoint I/O: the error type, JSON reading, the index name."""

from __future__ import annotations

import json
from pathlib import Path

INDEX = "model.safetensors.index.json"


class CheckpointError(ValueError):
    """A checkpoint directory that is missing, partial or inconsistent with its config."""


def read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise CheckpointError(f"{path} is missing ({what})")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path} is not valid JSON: {e}") from e
