"""Token-budgeted generation sub-batches: the chunk plan, sub-batched generation sampling exactly
what one call samples (greedy and seeded, stop strings, inside a data-parallel slice), and the
trainer's `sampling.max_batch_tokens` wiring."""

import pytest
import torch

import rlreason.rl.trainer as trainer_mod
from rlreason.model.tokenizer import CharTokenizer
from rlreason.sampling.batching import generate_in_batches, plan_chunks
from rlreason.sampling.engine import generate
from tests.test_wiring import make_trainer

TOK = CharTokenizer()


def prompts(k: int, seed: int = 0) -> list[list[int]]:
    """k prompts of lengths 2 or 5 with ids in [5, 50) (inside the tiny model's vocabulary)."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(5, 50, (2 + (3 * i) % 6,), generator=g).tolist() for i in range(k)]


def counting(calls: list):
    def gen(*args, **kwargs):
        calls.append(kwargs)
        return generate(*args, **kwargs)

    return gen


def assert_same_rows(one, many, rows=None):
    """`many` equals `one` (restricted to `rows`): tokens, masks, log-probs, reasons, texts."""
    rows = list(range(len(one))) if rows is None else rows
    T = many.tokens.shape[1]
    assert one.tokens.shape[1] >= T
    assert torch.equal(one.tokens[rows, :T], many.tokens)
    assert torch.equal(one.mask[rows, :T], many.mask)
    assert (one.logprobs[rows, :T] - many.logprobs).abs().max() < 1e-6
    assert (one.mask[rows, T:] == 0).all()  # nothing sampled past the slice's longest row
    assert [one.finish_reasons[i] for i in rows] == many.finish_reasons
    assert [one.texts[i] for i in rows] == many.texts
    assert [one.completion_ids[i] for i in rows] == many.completion_ids
    assert [one.prompt_ids[i] for i in rows] == many.prompt_ids


def test_chunks_are_consecutive_and_fit_rows_times_longest_plus_new_tokens():
    lengths, n, new = [3, 5, 2, 4], 2, 4
    # budget 40: p0+p1 = 4 rows x (5+4) = 36; adding p2 = 6 x 9 = 54 > 40; p2+p3 = 4 x 8 = 32
    assert plan_chunks(lengths, n, new, 40) == [(0, 2), (2, 4)]
    # budget 10: even p0 alone (2 x 7 = 14) is over it; every chunk still holds one prompt
    assert plan_chunks(lengths, n, new, 10) == [(0, 1), (1, 2), (2, 3), (3, 4)]
    # budget 54 takes p0..p2 (54); adding p3 = 8 x 9 = 72
    assert plan_chunks(lengths, n, new, 54) == [(0, 3), (3, 4)]
    assert plan_chunks(lengths, n, new, None) == [(0, 4)]


def test_without_a_budget_it_is_exactly_one_generate_call_with_the_same_arguments(tiny_model):
    calls = []
    p = prompts(3)
    r = generate_in_batches(
        tiny_model, p, n=2, max_new_tokens=5, max_batch_tokens=None, seed=7,
        generate_fn=counting(calls), tokenizer=TOK,
    )  # fmt: skip
    assert len(calls) == 1
    assert calls[0] == dict(
        n=2, max_new_tokens=5, row_offset=0, total_rows=None, seed=7, tokenizer=TOK
    )
    assert_same_rows(generate(tiny_model, p, n=2, max_new_tokens=5, seed=7, tokenizer=TOK), r)


@pytest.mark.parametrize(
    "sampling",
    [dict(temperature=0.0), dict(temperature=1.0, seed=11), dict(temperature=0.8, top_k=7, seed=3)],
    ids=["greedy", "seeded", "seeded_top_k"],
)
def test_sub_batched_generation_samples_exactly_what_one_call_samples(tiny_model, sampling):
    p, n, new = prompts(5), 3, 12
    stops = [TOK.decode([20]), TOK.decode([30, 31])]
    kw = dict(n=n, max_new_tokens=new, stop_strings=stops, tokenizer=TOK, **sampling)
    one = generate(tiny_model, p, **kw)
    calls = []
    # budget 60: 3 rows x (7 + 12) = 57 fits one prompt of length <= 8, never two (6 x 14 = 84)
    many = generate_in_batches(
        tiny_model, p, max_batch_tokens=60, generate_fn=counting(calls), **kw
    )
    assert len(calls) == 5
    assert [c["row_offset"] for c in calls] == [0, 3, 6, 9, 12]
    assert {c["total_rows"] for c in calls} == {15}
    assert_same_rows(one, many)
    assert one.tokens.shape == many.tokens.shape
    if sampling["temperature"] > 0:
        assert len(set(one.finish_reasons)) > 1  # stop strings / eos / length all exercised


def test_a_data_parallel_slice_sub_batched_samples_the_rows_of_the_whole_batch(tiny_model):
    p, n, new = prompts(6, seed=1), 2, 10
    kw = dict(n=n, max_new_tokens=new, seed=5, tokenizer=TOK, stop_strings=[TOK.decode([9])])
    whole = generate(tiny_model, p, **kw)
    calls = []
    # this rank holds prompts 2..4 = global rows [4, 10) of 12; budget 2 x (7 + 10) = 34 per chunk
    part = generate_in_batches(
        tiny_model, p[2:5], max_batch_tokens=34, row_offset=4, total_rows=12,
        generate_fn=counting(calls), **kw,
    )  # fmt: skip
    assert [c["row_offset"] for c in calls] == [4, 6, 8]
    assert_same_rows(whole, part, rows=list(range(4, 10)))


def test_an_unseeded_sub_batched_call_shares_one_seed_across_its_chunks(tiny_model):
    calls = []
    generate_in_batches(
        tiny_model, prompts(3), n=2, max_new_tokens=4, max_batch_tokens=1,
        generate_fn=counting(calls),
    )  # fmt: skip
    seeds = {c["seed"] for c in calls}
    assert len(calls) == 3 and len(seeds) == 1 and None not in seeds


def test_a_trainer_step_under_a_small_budget_calls_generate_per_prompt_and_gets_the_same_batch(
    tmp_path, monkeypatch
):
    batches, counts = [], []
    for budget in (None, 1):
        calls = []
        monkeypatch.setattr(trainer_mod, "generate", counting(calls))
        trainer = make_trainer(tmp_path)
        trainer.cfg.sampling.max_batch_tokens = budget
        trainer.train_step(1)
        batches.append(trainer.last_batch)
        counts.append(len(calls))
    assert counts == [1, 2]  # prompts_per_step = 2: one chunk per prompt under budget 1
    a, b = batches
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.mask, b.mask)
    assert (a.sampler_logp - b.sampler_logp).abs().max() < 1e-6
    assert a.texts == b.texts and a.finish_reasons == b.finish_reasons
    assert a.prompt_ids == b.prompt_ids and torch.equal(a.rewards, b.rewards)
