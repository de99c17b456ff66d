"""The Hydra schema: typed env nodes from the env registry, one LoRA and one eval config."""

from dataclasses import dataclass, fields
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from experiments.schema import configured_rewards, env_config, env_node, env_options, register
from rlreason.config import Config, ConfigError, EvalConfig, LoRAConfig, validate

CONF = str((Path(__file__).parent.parent / "experiments" / "conf").resolve())


def compose(*overrides: str, name: str = "config"):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    register()
    with initialize_config_dir(CONF, version_base=None):
        return OmegaConf.to_object(hydra_compose(name, overrides=list(overrides)))


def test_every_registered_env_is_selectable_with_exactly_its_options_flat():
    from envs.base import ENVS, env_spec

    for name in list(ENVS):
        cfg = compose(f"env={name}", "env.seed=5")
        declared = {f.name for f in fields(env_spec(name).config)}
        assert cfg.env.name == name and cfg.env.seed == 5
        assert {f.name for f in fields(cfg.env)} == declared | {"name", "template"}, name
        assert set(env_options(cfg.env)) <= declared


def test_a_typo_in_an_env_option_fails_when_the_config_is_composed():
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException, match="digitz"):
        compose("env.digitz=3")
    with pytest.raises(ConfigCompositionException, match="digits"):
        compose("env=countdown", "env.digits=3")  # an arithmetic option on countdown


def test_an_env_needs_only_its_module_and_a_registry_line():
    from envs.base import ENVS, EnvSpec, Task, TaskSet, register_env

    @dataclass(frozen=True)
    class EchoConfig:
        word: str = "hi"
        repeats: int = 2
        template: str = "tiny"

    def build(c):
        tasks = tuple(Task(c.word * c.repeats, c.word) for _ in range(2))
        return TaskSet("echo", tasks, tasks, {"math": 1.0}, c.template, c)

    register_env("echo_test", EnvSpec(EchoConfig, build))
    try:
        cfg = compose("env=echo_test", "env.repeats=3")
        assert (cfg.env.word, cfg.env.repeats, cfg.env.template) == ("hi", 3, "tiny")
        from experiments.build import build_env

        env, template = build_env(cfg)
        assert env.train[0].prompt == "hihihi" and template.name == "tiny"
    finally:
        ENVS.pop("echo_test")
        env_node.cache_clear()


def test_the_default_command_trains_on_two_digit_additions_with_the_arithmetic_template():
    cfg = compose()
    assert cfg.env.name == "arithmetic" and cfg.env.template == "tiny"
    assert (cfg.env.digits, cfg.env.min_digits, cfg.env.ops) == (2, 2, ["+"])
    assert (cfg.env.n_train, cfg.env.n_eval) == (6000, 500)
    assert configured_rewards(cfg.reward) == {}  # the env's defaults: math 1.0, format 0.1
    assert cfg.lora == LoRAConfig() and cfg.eval.samples == 4 and cfg.eval.every == 25


def test_both_commands_share_one_eval_config_and_one_name_for_samples_per_problem():
    train, ev = compose("eval.samples=3"), compose("eval.samples=8", name="eval")
    assert isinstance(train.eval, EvalConfig) and isinstance(ev.eval, EvalConfig)
    assert (train.eval.samples, ev.eval.samples) == (3, 8)
    assert (ev.eval.n_problems, ev.eval.max_new_tokens) == (100, 64)  # rlreason-eval's defaults


def test_lora_has_one_config_that_apply_lora_records_on_the_model():
    import torch.nn as nn

    from rlreason.model import lora

    assert lora.LoRAConfig is LoRAConfig
    model = nn.Sequential()
    model.add_module("q_proj", nn.Linear(4, 4))
    lora.apply_lora(model, rank=2, alpha=4.0, targets=("q_proj",))
    assert model.lora_config == LoRAConfig(2, 4.0, targets=("q_proj",), enabled=True)
    assert compose("lora.enabled=true", "lora.rank=4").lora.rank == 4


def test_validate_takes_its_choices_from_the_registries():
    from rlreason.rl.losses import RATIO_LEVELS

    cfg = Config()
    cfg.algo.ratio_level, cfg.model.dtype, cfg.log.wandb.mode = "seq", "fp8", "cloud"
    with pytest.raises(ConfigError) as e:
        validate(cfg)
    assert str(list(RATIO_LEVELS)) in str(e.value)
    assert "model.dtype='fp8'" in str(e.value) and "log.wandb.mode='cloud'" in str(e.value)


def test_a_saved_run_config_reloads_with_its_typed_env(tmp_path):
    from experiments.build import load_run_config

    cfg = Config()
    cfg.env = env_config("countdown", n_numbers=3)
    (tmp_path / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.structured(cfg)))
    back = load_run_config(tmp_path, "train.resume")
    assert type(back.env) is env_node("countdown") and back.env.n_numbers == 3
    with pytest.raises(ConfigError, match="no config.yaml"):
        load_run_config(tmp_path / "missing", "train.resume")
