"""Every algorithm preset (experiments/conf/algo/*.yaml, globbed: a new preset is picked up with
no edit here) runs two steps with a reward that has spread, and shows its defining settings in
what the trainer actually did: the aggregation and clip range that reached the loss, the
estimator's advantages, a sequence-level ratio, dynamic sampling, a trained value head."""

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

import rlreason.rl.losses as losses_mod
import rlreason.rl.trainer as trainer_mod
from rlreason.rl.advantages import get_estimator
from tests.test_wiring import make_trainer, spy_total_loss

PRESETS = sorted(Path(__file__).resolve().parents[1].glob("experiments/conf/algo/*.yaml"))


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_each_algorithm_preset_trains_two_steps_with_its_defining_settings(
    tmp_path, monkeypatch, path
):
    preset = OmegaConf.to_container(OmegaConf.load(path))
    preset["epochs"] = max(preset.get("epochs", 1), 2)  # ratios move: clipping can show
    trainer = make_trainer(tmp_path, **preset)
    if trainer.cfg.algo.group_size < 2:
        trainer.cfg.train.prompts_per_step = 8
    a = trainer.cfg.algo
    calls = spy_total_loss(monkeypatch)
    ratios, real_policy_loss = [], losses_mod.policy_loss

    def policy_spy(*args, **kw):
        loss, stats = real_policy_loss(*args, **kw)
        ratios.append((stats.ratio, args[3], kw))
        return loss, stats

    monkeypatch.setattr(losses_mod, "policy_loss", policy_spy)
    preps, real_prepare = [], trainer_mod.prepare
    monkeypatch.setattr(
        trainer_mod, "prepare", lambda *a, **k: preps.append(real_prepare(*a, **k)) or preps[-1]
    )
    before = [p.detach().clone() for p in trainer.policy.trainable()]
    for step in (1, 2):
        metrics = trainer.train_step(step)
        assert torch.isfinite(torch.tensor(metrics["loss/total"])), step
    after = trainer.policy.trainable()
    assert any(not torch.equal(x, y) for x, y in zip(before, after))  # the weights learned
    # the preset's loss settings reached the loss
    assert all(c["settings"].aggregation == a.aggregation for c in calls)
    assert all(kw["clip_low"] == a.clip_low and kw["clip_high"] == a.clip_high for *_, kw in ratios)
    assert all(kw["ratio_level"] == a.ratio_level for *_, kw in ratios)
    # the preset's estimator made the advantages the update used
    batch, est = trainer.last_batch, get_estimator(a.advantage)
    if not est.needs_value:
        p = preps[-1]  # the teacher's and the student's log-probs of the last batch
        logps = (
            {"teacher": p.teacher_logp, "student": p.student_logp} if est.needs_teacher else None
        )
        want, _ = est(batch.rewards, batch.mask, None, a, logps)
        assert torch.allclose(batch.adv, want)
    else:
        assert batch.adv.shape == batch.mask.shape and "loss/value" in metrics
        assert trainer.value_head is not None
    # epoch 2 measures the ratio against the rollout policy, which epoch 1 moved away from
    assert any(not torch.equal(r[m > 0], torch.ones_like(r[m > 0])) for r, m, _ in ratios)
    if a.ratio_level == "sequence":  # one ratio per row, shared by its valid tokens
        for ratio, mask, _ in ratios:
            for row, m in zip(ratio, mask):
                r = row[m > 0]
                assert torch.allclose(r, r[0].expand_as(r)), r
    if a.dynamic_sampling:
        assert "group/kept_groups" in metrics
        assert len(batch) == metrics["group/kept_groups"] * a.group_size
    if a.clip_high != a.clip_low:
        assert "policy/clipfrac_high" in metrics and "policy/clipfrac_low" in metrics
    if a.mask_truncated:  # overlong filtering: rows cut by the length limit enter no loss
        truncated = [fr == "length" for fr in batch.finish_reasons]
        assert any(truncated)
        assert all(float(batch.mask[i].sum()) == 0 for i, t in enumerate(truncated) if t)


@pytest.mark.parametrize(
    "overrides, group_size, epochs",
    [
        ([], 8, 2),  # the demo experiment's own settings
        (["algo=ppo"], 1, 2),  # the preset wins over the experiment's algo keys
        (["algo=ppo", "algo.group_size=4"], 4, 2),  # the command line wins over both
        (["experiment=r1_zero_hf", "model.path=/x", "algo=ppo"], 1, 2),
    ],
)
def test_an_algorithm_preset_overrides_the_experiment_and_the_cli_overrides_both(
    overrides, group_size, epochs
):
    from hydra import compose, initialize_config_dir

    from experiments.schema import register

    conf = str((Path(__file__).parent.parent / "experiments" / "conf").resolve())
    register()
    with initialize_config_dir(conf, version_base=None):
        cfg = compose("config", overrides=overrides)
    assert (cfg.algo.group_size, cfg.algo.epochs) == (group_size, epochs)
