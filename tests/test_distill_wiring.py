"""On-policy distillation wired through `build_trainer` and the Trainer: the teacher is loaded
from `teacher.*`, scores every batch, and moves the student towards it; config errors come before
any model loads; 2 data-parallel ranks equal one process; stop-and-resume is exact while the
teacher stays out of the checkpoints. Student: tests/test_rl_trainer.py's tiny scratch GPT;
teacher: the built-in `base` (the same char tokenizer)."""

import copy

import pytest
import torch

import experiments.build as build_mod
import experiments.teacher as teacher_mod
import rlreason.rl.update as update_mod
from experiments.schema import env_config
from experiments.train import build_trainer, run
from rlreason.config import ConfigError
from tests.test_distill import row_logprobs
from tests.test_distributed import ATOL, COMPARED, RTOL, cfg_for, final_weights, run_ranks
from tests.test_rl_trainer import assert_same_metrics, metrics_by_step, tiny_cfg

DISTILL = {
    "algo.advantage": "onpolicy_distill",
    "algo.aggregation": "token_mean",
    "algo.log_kl": False,
    "teacher.source": "base",
    "model.max_seq_len": 128,  # the base teacher's context; prompts + 8 new tokens fit both
}


def distill_cfg(tmp_path, **over):
    return tiny_cfg(tmp_path, **{**DISTILL, **over})


def test_the_trainer_scores_each_batch_with_the_teacher_and_uses_teacher_minus_student(tmp_path):
    trainer = build_trainer(distill_cfg(tmp_path))
    teacher = trainer.policy.teacher
    assert teacher is not None and teacher is not trainer.model
    assert not any(p.requires_grad for p in teacher.parameters())
    calls = []
    real_hidden = teacher.hidden
    teacher.hidden = lambda *a, **k: (calls.append(1), real_hidden(*a, **k))[1]
    student = copy.deepcopy(trainer.model)
    metrics = trainer.train_step(1)
    assert calls, "the teacher never ran"
    b, T = trainer.last_batch, trainer.cfg.sampling.temperature
    for i in range(len(b)):
        n = int(b.mask[i].sum())
        c = b.tokens[i, :n].tolist()
        with torch.no_grad():
            want = row_logprobs(teacher, b.prompt_ids[i], c, T) - row_logprobs(
                student, b.prompt_ids[i], c, T
            )
        torch.testing.assert_close(b.adv[i, :n], want, rtol=1e-4, atol=1e-4)
        assert torch.equal(b.adv[i, n:], torch.zeros_like(b.adv[i, n:]))
    kl = float((-b.adv).sum() / b.mask.sum())
    assert metrics["distill/reverse_kl"] == pytest.approx(kl, rel=1e-5)
    assert "reward/total/mean" in metrics and "loss/kl" not in metrics  # logged, no reference


def test_kl_to_the_reference_still_works_beside_the_teacher(tmp_path, monkeypatch):
    seen = []
    real = update_mod._no_grad_pass
    monkeypatch.setattr(
        update_mod, "_no_grad_pass", lambda m, *a, **k: (seen.append(m), real(m, *a, **k))[1]
    )
    trainer = build_trainer(distill_cfg(tmp_path, **{"algo.kl_coef": 0.05}))
    metrics = trainer.train_step(1)
    p = trainer.policy
    assert p.reference is not None and p.reference is not p.teacher
    assert {id(m) for m in seen} == {id(p.model), id(p.reference), id(p.teacher)}
    assert metrics["loss/kl"] >= 0 and "distill/reverse_kl" in metrics


def test_the_reverse_kl_to_the_teacher_falls_as_the_student_trains(tmp_path):
    """The same 4 prompts every step (n_train=4), 8 samples each, a constant lr: the logged
    sampled reverse KL falls from ~7.5 nats per token to ~4 in 12 steps (seeds 0-2 measured)."""
    over = {
        "env": env_config("arithmetic", digits=2, n_train=4, n_eval=8),
        "train.steps": 12,
        "train.prompts_per_step": 4,
        "algo.group_size": 8,
        "optim.lr": 3e-2,
        "optim.min_lr": 3e-2,
    }
    trainer = build_trainer(distill_cfg(tmp_path, **over))
    kls = [trainer.train_step(s)["distill/reverse_kl"] for s in range(1, 13)]
    print("distill/reverse_kl per step:", [round(k, 2) for k in kls])
    assert sum(kls[-3:]) < 0.75 * sum(kls[:3]), kls
    assert all(k > 0 for k in kls)  # a far-off student's sampled reverse KL stays positive


def test_distillation_without_a_teacher_is_a_config_error_before_any_model_loads(
    tmp_path, monkeypatch
):
    def no_model(*a, **k):
        raise AssertionError("the model loaded before the config error")

    monkeypatch.setattr(build_mod, "build_policy", no_model)
    with pytest.raises(ConfigError, match=r"teacher\.source=run teacher\.path=<run dir>"):
        build_trainer(distill_cfg(tmp_path, **{"teacher.source": "none"}))


class FakeTokenizer:
    def __init__(self, vocab_size, shift=0):
        self.vocab_size, self.shift = vocab_size, shift

    def encode(self, text):
        return [(ord(ch) + self.shift) % self.vocab_size for ch in text]


@pytest.mark.parametrize(
    "fake, msg",
    [(FakeTokenizer(999), "has 999 tokens"), (None, "tokenize .* differently")],
)
def test_a_teacher_with_another_tokenizer_is_a_config_error(tmp_path, monkeypatch, fake, msg):
    real = teacher_mod.load_teacher

    def load(t, m):
        teacher, tok, info = real(t, m)
        return teacher, fake or FakeTokenizer(tok.vocab_size, shift=1), info

    monkeypatch.setattr(teacher_mod, "load_teacher", load)
    with pytest.raises(ConfigError, match=msg):
        build_trainer(distill_cfg(tmp_path))


def test_a_teacher_the_estimator_does_not_use_is_noted_and_not_loaded(
    tmp_path, monkeypatch, capsys
):
    def no_load(*a, **k):
        raise AssertionError("the unused teacher was loaded")

    monkeypatch.setattr(teacher_mod, "load_teacher", no_load)
    trainer = build_trainer(tiny_cfg(tmp_path, **{"teacher.source": "base"}))
    assert trainer.policy.teacher is None
    assert "teacher.source=base is not used by algo.advantage=grpo" in capsys.readouterr().out


def test_the_onpolicy_distill_preset_composes_with_hydra():
    from pathlib import Path

    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from experiments.schema import register

    register()
    conf = str(Path("experiments/conf").resolve())
    with initialize_config_dir(conf, version_base=None):
        cfg = compose("config", overrides=["algo=onpolicy_distill", "teacher.source=base"])
    a = OmegaConf.to_object(cfg).algo
    assert (a.advantage, a.aggregation, a.kl_coef, a.log_kl) == (
        "onpolicy_distill",
        "token_mean",
        0.0,
        False,
    )


@pytest.mark.parametrize("epochs, minibatches", [(1, 1), (2, 2)])
def test_two_ranks_compute_the_distillation_steps_of_one_process(tmp_path, epochs, minibatches):
    """Per-step metrics as tests/test_distributed.py compares them (rtol 1e-5, atol 1e-6). The
    weights: all but 0.1% within 1e-6, every one within 1e-4. The few apart had gradients near
    AdamW's eps (~1e-8 at their first step), where g / (sqrt(v) + eps) turns the ranks' other
    summation order into up to ~1.3e-5 (measured over 8 optimizer steps: 22 of 39,520 weights
    beyond 1e-6; lr is 1e-2). The distillation gradients are clipped (norm ~9 > 1)."""
    # (1, 1): the student pass runs for the teacher; (2, 2): the old log-probs are reused
    over = {**DISTILL, "algo.epochs": epochs, "algo.minibatches": minibatches, "train.steps": 2}
    run(cfg_for(tmp_path, "one", **over))
    run_ranks(tmp_path, ("two", over))
    a, b = metrics_by_step(tmp_path / "one"), metrics_by_step(tmp_path / "two")
    assert sorted(a) == sorted(b) == [1, 2]
    for s in (1, 2):
        assert a[s]["policy/grad_norm"] > 0
        for k in (*COMPARED, "distill/reverse_kl", "distill/teacher_logp", "adv/mean", "adv/std"):
            assert b[s][k] == pytest.approx(a[s][k], rel=RTOL, abs=ATOL), (s, k)
    wa, wb = final_weights(tmp_path / "one"), final_weights(tmp_path / "two")
    assert wa.keys() == wb.keys()
    off = sum(int(((wa[k] - wb[k]).abs() > ATOL).sum()) for k in wa)
    assert off <= sum(w.numel() for w in wa.values()) // 1000, off
    for k in wa:
        torch.testing.assert_close(wb[k], wa[k], rtol=RTOL, atol=1e-4)


def test_stopping_and_resuming_with_a_teacher_equals_a_straight_run_and_saves_no_teacher(
    tmp_path,
):
    straight = distill_cfg(tmp_path, **{"log.run_dir": str(tmp_path / "a")})
    run(straight)
    part = {"log.run_dir": str(tmp_path / "b"), "train.stop_after": 2}
    run(distill_cfg(tmp_path, **part))
    run(distill_cfg(tmp_path, **{"train.resume": str(tmp_path / "b")}))
    a, b = metrics_by_step(tmp_path / "a"), metrics_by_step(tmp_path / "b")
    assert sorted(b) == [1, 2, 3, 4] and "distill/reverse_kl" in b[3]
    assert_same_metrics(a, b, steps=(3, 4))
    wa, wb = final_weights(tmp_path / "a"), final_weights(tmp_path / "b")
    student = build_trainer(distill_cfg(tmp_path, **{"log.run_dir": str(tmp_path / "c")})).model
    assert set(wa) == set(wb) == {k for k, p in student.named_parameters() if p.requires_grad}
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    ckpt = tmp_path / "b" / (tmp_path / "b" / "latest").read_text().strip()
    assert not [p for p in ckpt.rglob("*") if "teacher" in p.name]
