"""Checks of the `sft.*` settings, before any data is read or model built.

`validate_sft(cfg)` raises one ConfigError listing every invalid `sft.*` setting and what to change
(the shared `train.*`, `optim.*`, `eval.*` ones are `rlreason.config.validate`'s). Kept apart from
rlreason/config.py, which holds the schema.

Not here: the data file's contents (rlreason/sft/data.py).
"""

from __future__ import annotations

from pathlib import Path

from rlreason.config import ConfigError


def _missing(path: str) -> str:
    return "a directory, not a JSONL file" if Path(path).is_dir() else "no such file"


def _problems(s) -> list[str]:
    e = []
    if not s.data:
        e.append("sft.data is not set: pass sft.data=FILE.jsonl (lines of {prompt, completion})")
    elif not Path(s.data).is_file():
        e.append(f"sft.data={s.data}: {_missing(s.data)}")
    if s.eval_data and not Path(s.eval_data).is_file():
        e.append(f"sft.eval_data={s.eval_data}: {_missing(s.eval_data)}")
    if s.batch_size < 1:
        e.append(f"sft.batch_size={s.batch_size}: must be >= 1 (sequences per optimizer step)")
    if s.micro_batch_tokens < 1:
        e.append(f"sft.micro_batch_tokens={s.micro_batch_tokens}: must be >= 1")
    if not 0 <= s.eval_fraction < 1:
        e.append(f"sft.eval_fraction={s.eval_fraction}: must lie in [0, 1) (0: no held-out loss)")
    if s.epochs is not None and not s.epochs > 0:
        e.append(f"sft.epochs={s.epochs}: must be > 0, or null to train train.steps steps")
    return e


def validate_sft(cfg) -> None:
    """Raise ConfigError naming every bad `sft.*` setting (module docstring)."""
    e = _problems(cfg.sft)
    if len(e) == 1:
        raise ConfigError(e[0])
    if e:
        raise ConfigError("invalid sft settings:\n  - " + "\n  - ".join(e))
