import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import experiments.demo.base_eval as base_eval
import experiments.demo.pretrain as pretrain
from experiments.demo.corpus import CorpusConfig
from experiments.demo.pretrain import (
    AnnealConfig,
    BaseEvalConfig,
    ModelShape,
    PretrainConfig,
    cache_root,
    ensure_base,
    load_base,
)
from rlreason.lm_train import LMTrainConfig
from rlreason.model.io import load_model

TINY = PretrainConfig(
    corpus=CorpusConfig(n_docs=120, n_train=40, n_eval=10),
    model=ModelShape(n_layer=1, n_head=2, d_model=32, max_seq_len=128),
    train=LMTrainConfig(steps=3, batch_size=8, warmup_steps=1),
    anneal=AnnealConfig(steps=2, warmup_steps=1, n_docs=40),
    eval=BaseEvalConfig(n_problems=4, samples=2, max_new_tokens=12),
)


def _quiet(*_):
    pass


def test_cache_hit_returns_the_same_directory_without_retraining(tmp_path, monkeypatch):
    threads = torch.get_num_threads()
    first = ensure_base(TINY, tmp_path, log=_quiet)
    assert first == tmp_path / TINY.config_hash()
    assert torch.get_num_threads() == threads  # training's single thread is restored
    stamp = (first / "model.safetensors").stat().st_mtime_ns

    def no_training(*a, **k):
        raise AssertionError("ensure_base retrained a cached base")

    monkeypatch.setattr(pretrain, "build_base", no_training)
    assert ensure_base(TINY, tmp_path, log=_quiet) == first
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no temporary leftovers


def test_the_base_directory_loads_and_records_config_and_eval_numbers(tmp_path):
    d = ensure_base(TINY, tmp_path, log=_quiet)
    model, tok, record = load_base(TINY, tmp_path)
    assert record["config"] == TINY.to_dict() and record["config_hash"] == d.name
    assert record["env"]["ops"] == ["+"] and record["template"] == "tiny"
    for mode, n in (("greedy", 4), ("sampled", 8)):
        stats = record["eval"][mode]
        assert stats["n"] == n and 0.0 <= stats["accuracy"] <= 1.0
        assert 0.0 <= stats["think_share"] <= 1.0 and 0.0 <= stats["format_rate"] <= 1.0
    assert len(record["loss"]["every_50"]) == 1 and model.num_parameters() == record["parameters"]
    assert tok.encode("<think>") == [tok.token_id("<think>")]


def test_same_config_gives_identical_weights_and_another_config_another_directory(tmp_path):
    a = ensure_base(TINY, tmp_path / "a", log=_quiet)
    b = ensure_base(TINY, tmp_path / "b", log=_quiet)
    wa, wb = load_model(a)[0].state_dict(), load_model(b)[0].state_dict()
    assert all(torch.equal(v, wb[k]) for k, v in wa.items())
    other = replace(TINY, train=replace(TINY.train, seed=1))
    assert other.config_hash() != TINY.config_hash()
    assert ensure_base(other, tmp_path / "a", log=_quiet).name == other.config_hash()


def test_cache_root_follows_the_argument_then_the_environment_then_home(tmp_path, monkeypatch):
    assert cache_root(tmp_path) == tmp_path
    monkeypatch.setenv("RLREASON_CACHE", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c" / "base"
    monkeypatch.delenv("RLREASON_CACHE")
    assert cache_root() == Path.home() / ".cache" / "rlreason" / "base"


def test_a_corpus_longer_than_the_context_is_a_clear_error(tmp_path):
    short = replace(TINY, model=replace(TINY.model, max_seq_len=24))
    with pytest.raises(ValueError, match="max_seq_len=24"):
        ensure_base(short, tmp_path, log=_quiet)


def test_default_config_matches_the_arithmetic_env_and_fits_its_longest_trace():
    cfg = PretrainConfig()
    assert cfg.env_kwargs()["ops"] == ("+",) and cfg.env_kwargs()["template"] == "tiny"
    longest = len("Q: 999+999=\nA: ") + len("<think>") + 4 * len("9+9+1=19 1998\n") + 12
    assert longest + 1 <= cfg.model.max_seq_len
    assert json.loads(json.dumps(cfg.to_dict()))["model"]["d_model"] == 128


def test_completion_stats_split_thinking_and_direct_completions_by_hand():
    texts = ["<think>2+2</think><answer>4</answer>", "<answer>3</answer>", "<answer>5</answer>"]
    stats = base_eval._completion_stats(texts, [1.0, 0.0, 1.0])
    assert stats == {
        "accuracy": pytest.approx(2 / 3),
        "think_share": pytest.approx(1 / 3),
        "think_accuracy": 1.0,
        "direct_accuracy": 0.5,
        "format_rate": pytest.approx(1 / 3),
        "n": 3,
    }
    assert base_eval._completion_stats(texts[1:], [0.0, 1.0])["think_accuracy"] is None


def test_the_default_recipe_anneals_from_a_trace_rich_mix_to_a_direct_answer_mix():
    (c1, t1), (c2, t2) = PretrainConfig().phases()
    assert (c1.think_fraction, c1.direct_fraction) == (0.9, 0.1)
    assert (c2.think_fraction, c2.direct_fraction) == (0.25, 0.65)
    assert t2.peak_lr == pytest.approx(t1.peak_lr / 10) and (t1.steps, t2.steps) == (600, 60)
    assert c1.env_kwargs() == c2.env_kwargs()  # both phases teach the same task
    assert len(replace(PretrainConfig(), anneal=None).phases()) == 1


def test_the_default_experiment_trains_on_the_task_the_base_was_pretrained_for():
    from omegaconf import OmegaConf

    preset = OmegaConf.load(Path("experiments/conf/env/addition.yaml"))  # r1_zero_tiny's env
    kwargs = PretrainConfig().env_kwargs()
    for key, value in preset.items():
        if key == "defaults":
            continue
        assert kwargs[key] == (tuple(value) if key == "ops" else value), key
