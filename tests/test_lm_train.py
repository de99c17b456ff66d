import math

import pytest
import torch
import torch.nn.functional as F

from rlreason.lm_train import LMTrainConfig, batch_order, masked_lm_loss, pad_batch, train_lm
from rlreason.model.gpt import GPT
from tests.conftest import tiny_config


def _model(seed=0):
    torch.manual_seed(seed)
    return GPT(tiny_config("llama", vocab_size=12, max_seq_len=32)).eval()


def test_pad_batch_right_pads_and_masks_targets_by_hand():
    ids, mask = pad_batch([[5, 6, 7], [8, 9]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 9, 0]]
    assert mask.tolist() == [[1, 1], [1, 0]]  # targets 6,7 | 9,<pad>
    _, mask = pad_batch([[5, 6, 7, 4], [8, 9]], pad_id=0, loss_starts=[2, 1])
    assert mask.tolist() == [[0, 1, 1], [1, 0, 0]]  # targets from index 2 | from index 1


def test_masked_loss_equals_the_per_sequence_cross_entropy_computed_by_hand():
    model = _model()
    seqs, starts = [[1, 4, 5, 6, 7, 3], [2, 9, 8], [3, 3, 4, 10]], [0, 1, 2]
    ids, mask = pad_batch(seqs, pad_id=0, loss_starts=starts)
    total, count = 0.0, 0
    for s, st in zip(seqs, starts):  # unpadded, one sequence at a time
        with torch.no_grad():
            logits = model(torch.tensor([s[:-1]]))[0]  # (len-1, V)
        for t in range(max(st, 1), len(s)):
            total += float(F.cross_entropy(logits[t - 1], torch.tensor(s[t])))
            count += 1
    assert count == 5 + 2 + 2
    assert float(masked_lm_loss(model, ids, mask).detach()) == pytest.approx(
        total / count, rel=1e-5
    )


def test_padding_tokens_do_not_change_the_loss_or_its_gradient():
    model = _model()
    ids, mask = pad_batch([[1, 4, 5, 6], [2, 9]], pad_id=0)
    other = ids.clone()
    other[1, 2:] = 11  # different "padding" ids, same mask
    grads = []
    for x in (ids, other):
        model.zero_grad()
        loss = masked_lm_loss(model, x, mask)
        loss.backward()
        grads.append((float(loss.detach()), model.tok_emb.weight.grad.clone()))
    assert grads[0][0] == pytest.approx(grads[1][0], rel=1e-6)
    assert torch.allclose(grads[0][1], grads[1][1], atol=1e-7)


def test_completion_only_loss_ignores_the_prompt_tokens():
    model = _model()
    seq = [1, 4, 5, 6, 7]
    ids, mask = pad_batch([seq], pad_id=0, loss_starts=[4])
    with torch.no_grad():
        logits = model(torch.tensor([seq[:-1]]))[0]
    assert float(masked_lm_loss(model, ids, mask).detach()) == pytest.approx(
        float(F.cross_entropy(logits[3], torch.tensor(7))), rel=1e-5
    )


def test_a_batch_with_nothing_to_learn_is_a_clear_error():
    ids, mask = pad_batch([[1, 2, 3]], pad_id=0, loss_starts=[3])
    with pytest.raises(ValueError, match="no target token"):
        masked_lm_loss(_model(), ids, mask)


def test_batch_order_covers_every_index_once_and_groups_similar_lengths():
    lengths = [(7 * i) % 23 + 2 for i in range(40)]
    batches = batch_order(lengths, batch_size=4, seed=3, bucket_batches=5)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(40))
    assert all([lengths[i] for i in b] == sorted(lengths[i] for i in b) for b in batches)
    assert batch_order(lengths, 4, 3, 5) == batches and batch_order(lengths, 4, 4, 5) != batches


def _toy_corpus():
    return [[1] + [2 + (i + k) % 3 for k in range(10)] for i in range(12)]  # 3 cyclic patterns


def test_loss_falls_on_a_tiny_toy_corpus_in_a_few_steps():
    model = _model()
    cfg = LMTrainConfig(steps=40, batch_size=6, peak_lr=1e-2, min_lr=1e-3, warmup_steps=4)
    losses = train_lm(model, _toy_corpus(), cfg, pad_id=0)
    assert len(losses) == 40 and losses[0] > math.log(12) * 0.8
    assert sum(losses[-5:]) / 5 < 0.3 * losses[0]


def test_training_is_seeded_same_seed_same_weights():
    cfg = LMTrainConfig(steps=5, batch_size=4, warmup_steps=1)
    runs = []
    for _ in range(2):
        model = _model(seed=1)
        runs.append((train_lm(model, _toy_corpus(), cfg, pad_id=0), model.state_dict()))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(v, runs[1][1][k]) for k, v in runs[0][1].items())


def test_bad_training_config_is_rejected():
    with pytest.raises(ValueError, match="warmup_steps"):
        LMTrainConfig(steps=10, warmup_steps=20)
    with pytest.raises(ValueError, match="at least 2 tokens"):
        pad_batch([[1]], pad_id=0)


def test_a_fixed_divisor_turns_the_token_mean_into_a_token_sum_over_that_divisor():
    model = _model()
    ids, mask = pad_batch([[1, 4, 5, 6], [2, 9]], pad_id=0)  # 3 + 1 counted targets
    mean = float(masked_lm_loss(model, ids, mask).detach())
    assert float(masked_lm_loss(model, ids, mask, denom=10.0).detach()) == pytest.approx(
        mean * 4 / 10.0, rel=1e-6
    )


def test_train_lm_divides_every_batch_by_the_corpus_mean_targets_per_batch(monkeypatch):
    import rlreason.lm_train as lm

    seen = []
    real = lm.masked_lm_loss
    monkeypatch.setattr(
        lm, "masked_lm_loss", lambda m, i, k, d=None: seen.append(d) or real(m, i, k, d)
    )
    seqs = [[1, 2, 3], [1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 6, 7]]  # 2, 4, 6 targets: mean 4
    train_lm(_model(), seqs, LMTrainConfig(steps=3, batch_size=2, warmup_steps=0), pad_id=0)
    assert seen == [8.0, 8.0, 8.0]
    seen.clear()
    train_lm(
        _model(),
        seqs,
        LMTrainConfig(steps=1, batch_size=2, warmup_steps=0),
        pad_id=0,
        loss_starts=[2, 2, 6],
    )  # 1, 3, 1 targets
    assert seen == [pytest.approx(2 * 5 / 3)]
