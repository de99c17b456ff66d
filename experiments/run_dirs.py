"""Reading a run directory's saved config (`config.yaml`) back into the typed schema.

Not here: creating run directories (experiments/build.py), checkpoints (rlreason/checkpoint.py).
"""

from __future__ import annotations

from pathlib import Path

from rlreason.config import Config, ConfigError


def load_run_config(run_dir: Path, key: str) -> Config:
    """A run's saved `config.yaml` merged onto the schema (its env's typed node included)."""
    from omegaconf import OmegaConf

    from experiments.schema import env_node

    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"{key}={run_dir}: no config.yaml there (not a run directory?)")
    saved = OmegaConf.load(path)
    schema = OmegaConf.structured(Config)
    schema.env = OmegaConf.structured(env_node(saved.get("env", {}).get("name", "arithmetic")))
    return OmegaConf.to_object(OmegaConf.merge(schema, saved))
