"""On-policy distillation's advantage and update, by hand: the reverse-KL advantage on a small
table, a teacher equal to the student (no signal, no change) and the gradient of one update
against `-sum_t A_t grad log pi(x_t) / n_tokens` formed with autograd from plain per-row forwards
(no packing, no chunking: an independent path to the same numbers)."""

import copy
from pathlib import Path

import pytest
import torch

from rlreason.config import Config
from rlreason.model.gpt import GPT, GPTConfig
from rlreason.model.tokenizer import CharTokenizer
from rlreason.rl.advantages import get_estimator
from rlreason.rl.distill import distill_metrics, reverse_kl_advantage
from rlreason.rl.trainer import Trainer
from rlreason.tracking import NullLogger
from tests.test_wiring import ScriptedScorer, task

TEACHER = torch.tensor([[-1.0, -2.0, -0.5, -3.0], [-0.25, -4.0, -1.0, -1.0]])  # (2, 4)
STUDENT = torch.tensor([[-1.5, -1.0, -0.5, -9.0], [-2.25, -1.0, -7.0, -7.0]])  # (2, 4)
MASK = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]])  # (2, 4)


def test_the_advantage_is_teacher_minus_student_at_valid_tokens_and_zero_elsewhere():
    adv = reverse_kl_advantage(TEACHER, STUDENT, MASK)
    want = torch.tensor([[0.5, -1.0, 0.0, 0.0], [2.0, -3.0, 0.0, 0.0]])
    assert torch.equal(adv, want)
    # the registry entry gives the same, ignores the rewards and has no returns
    est = get_estimator("onpolicy_distill")
    assert est.needs_teacher and not est.grouped and est.per_row and not est.needs_value
    out, returns = est(
        torch.tensor([1.0, 0.0]),
        MASK,
        None,
        Config().algo,
        {"teacher": TEACHER, "student": STUDENT},
    )
    assert torch.equal(out, want) and returns is None
    with pytest.raises(ValueError, match="onpolicy_distill needs token_logp"):
        est(torch.tensor([1.0, 0.0]), MASK, None, Config().algo)


def test_the_distill_metrics_are_token_means_over_the_valid_tokens():
    m = distill_metrics(TEACHER, STUDENT, MASK)
    # valid teacher: -1 -2 -0.5 -0.25 -4 = -7.75; student: -1.5 -1 -0.5 -2.25 -1 = -6.25; 5 tokens
    assert m["distill/teacher_logp"] == pytest.approx(-7.75 / 5)
    assert m["distill/student_logp"] == pytest.approx(-6.25 / 5)
    assert m["distill/reverse_kl"] == pytest.approx((-6.25 + 7.75) / 5)


def test_a_non_finite_log_prob_at_a_valid_token_is_an_error_but_not_at_a_masked_one():
    t = TEACHER.clone()
    t[0, 3] = float("-inf")  # masked: ignored
    assert torch.isfinite(reverse_kl_advantage(t, STUDENT, MASK)).all()
    t[1, 0] = float("-inf")
    with pytest.raises(ValueError, match="non-finite"):
        reverse_kl_advantage(t, STUDENT, MASK)


def distill_trainer(tmp_path, teacher="other", temperature=1.0, **optim) -> Trainer:
    """tests/test_wiring.py's tiny trainer with `algo=onpolicy_distill` and a teacher (default
    "other": a second GPT of another seed)."""
    torch.manual_seed(0)
    tok = CharTokenizer()
    gcfg = GPTConfig(vocab_size=tok.vocab_size, n_layer=1, n_head=2, d_model=32, max_seq_len=64)
    model = GPT(gcfg)
    if teacher == "other":
        torch.manual_seed(1)
        teacher = GPT(gcfg).eval().requires_grad_(False)
    cfg = Config()
    cfg.sampling.max_new_tokens, cfg.sampling.temperature = 6, temperature
    cfg.train.steps, cfg.train.prompts_per_step, cfg.train.progress = 4, 2, False
    a = cfg.algo
    a.advantage, a.aggregation, a.group_size, a.log_kl = "onpolicy_distill", "token_mean", 4, False
    cfg.optim.lr, cfg.optim.warmup_steps, cfg.optim.min_lr = 5e-2, 0, 5e-2
    for k, v in optim.items():
        setattr(cfg.optim, k, v)
    cfg.eval.n_problems = 0
    tasks = [task(i) for i in range(16)]
    return Trainer(
        cfg,
        model,
        tok,
        tasks,
        [],
        lambda t: t.prompt,
        ScriptedScorer(),
        [],
        Path(tmp_path),
        NullLogger(),
        teacher=teacher,
    )


def test_a_trainer_for_distillation_refuses_to_start_without_a_teacher(tmp_path):
    with pytest.raises(ValueError, match="onpolicy_distill needs a teacher model"):
        distill_trainer(tmp_path, teacher=None)


def test_a_teacher_equal_to_the_student_gives_zero_advantages_and_leaves_the_weights_unchanged(
    tmp_path,
):
    trainer = distill_trainer(tmp_path, weight_decay=0.0)
    trainer.policy.teacher.load_state_dict(trainer.model.state_dict())
    before = [p.detach().clone() for p in trainer.model.parameters()]
    metrics = trainer.train_step(1)
    batch = trainer.last_batch
    assert batch.adv.shape == batch.mask.shape and bool((batch.mask > 0).any())
    assert torch.equal(batch.adv, torch.zeros_like(batch.adv))
    assert metrics["distill/reverse_kl"] == 0.0 and metrics["policy/grad_norm"] == 0.0
    assert metrics["train/optimizer_steps"] == 1.0  # the step ran, and moved nothing
    for x, y in zip(before, trainer.model.parameters()):
        assert torch.equal(x, y)


def row_logprobs(model, prompt: list[int], completion: list[int], temperature: float):
    """log pi(x_t | x_<t) of each completion token from one unpadded forward. (n,)"""
    ids = torch.tensor([prompt + completion])  # (1, p + n)
    logits = model(ids)[0, len(prompt) - 1 : -1].float() / temperature  # (n, V)
    return torch.log_softmax(logits, -1).gather(-1, torch.tensor(completion)[:, None])[:, 0]


def test_one_update_follows_minus_the_advantage_weighted_log_prob_gradient_over_n_tokens(
    tmp_path,
):
    T = 0.8  # the sampler's temperature: student, teacher and the hand gradient all use it
    trainer = distill_trainer(tmp_path, temperature=T, grad_clip=None, lr=1.0, min_lr=1.0)
    model, teacher = trainer.model, trainer.policy.teacher
    start = copy.deepcopy(model)
    params = dict(model.named_parameters())
    trainer.optimizer = torch.optim.SGD(list(params.values()), lr=1.0)  # delta w = -gradient
    before = {k: p.detach().clone() for k, p in params.items()}
    trainer.train_step(1)
    b = trainer.last_batch
    # by hand: A_t from plain forwards, then -sum_t A_t grad log pi(x_t) / N (token_mean)
    rows = [(b.prompt_ids[i], b.tokens[i, : int(b.mask[i].sum())].tolist()) for i in range(len(b))]
    n_tokens = sum(len(c) for _, c in rows)
    objective = 0.0
    for i, (p, c) in enumerate(rows):
        logp = row_logprobs(start, p, c, T)  # (n,) with grad
        with torch.no_grad():
            adv = row_logprobs(teacher, p, c, T) - logp  # (n,)
        torch.testing.assert_close(b.adv[i, : len(c)], adv, rtol=1e-5, atol=1e-5)
        objective = objective + (adv * logp).sum()
    (-objective / n_tokens).backward()
    hand = {k: p.grad for k, p in start.named_parameters()}
    assert max(float(g.abs().max()) for g in hand.values()) > 1e-3  # a real gradient
    for k, p in params.items():
        torch.testing.assert_close(before[k] - p.detach(), hand[k], rtol=1e-4, atol=1e-6)
