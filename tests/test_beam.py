import math

import pytest
import torch
import torch.nn as nn

from rlreason.model.gpt import GPTConfig
from rlreason.sampling.beam import LENGTH_PENALTIES, beam_search
from rlreason.sampling.engine import generate

PROMPTS = [[5, 9, 11, 3], [7], [12, 13, 14, 15, 16, 17, 18], [4, 4]]  # mixed lengths
EOS = 2


class Bigram(nn.Module):
    """A stand-in model whose next-token distribution depends on the last token only.

    `rows[a][b]` is P(b | a); the mass left over in a row is spread evenly over the other tokens.
    It speaks the GPT interface the engine uses (config, KV cache advance, key mask, positions).
    """

    def __init__(self, rows: dict[int, dict[int, float]], vocab: int = 12):
        super().__init__()
        self.config = GPTConfig(vocab_size=vocab, n_layer=1, n_head=1, d_model=4, max_seq_len=64)
        table = torch.full((vocab, vocab), 1.0 / vocab, dtype=torch.float64)
        for a, probs in rows.items():
            rest = (1.0 - sum(probs.values())) / (vocab - len(probs))
            table[a] = rest
            for b, p in probs.items():
                table[a, b] = p
        self.logp = nn.Parameter(table.log().float())  # (V, V)

    def forward(self, ids, kv_cache=None, positions=None, key_mask=None):
        if kv_cache is not None:
            kv_cache.advance(ids.shape[1])
        return self.logp[ids]  # (B, T, V)


# greedy takes 3 (0.6) then EOS (0.3): 0.18; the path through 4 (0.4) then EOS (0.9) is 0.359
MYOPIC = {1: {3: 0.6, 4: 0.399}, 3: {2: 0.3, 5: 0.25, 6: 0.25, 7: 0.199}, 4: {2: 0.9, 5: 0.099}}
# A = [3, EOS]: short and likely; B = [4, 5, 6, EOS]: longer, higher mean log-prob
TWO_LENGTHS = {
    1: {3: 0.6, 4: 0.399},
    3: {2: 0.9, 7: 0.099},
    4: {5: 0.999},
    5: {6: 0.999},
    6: {2: 0.999},
    7: {7: 0.999},
}
SUM_A = math.log(0.6) + math.log(0.9)
SUM_B = math.log(0.399) + 3 * math.log(0.999)


def eos_and_stop(model):
    """An EOS id and a stop sequence that greedy decoding of PROMPTS actually produces."""
    free = generate(model, PROMPTS, n=1, max_new_tokens=12, temperature=0)
    return free.completion_ids[0][3], [free.completion_ids[1][2:4]]


def teacher_forced_logprobs(model, prompt, completion):
    ids = torch.tensor([prompt + completion])
    logp = torch.log_softmax(model(ids)[0].float(), -1)  # (T, V), no cache
    return [logp[len(prompt) - 1 + i, tok].item() for i, tok in enumerate(completion)]


@pytest.mark.parametrize("penalty,norm", [(1.0, "simple"), (0.0, "simple"), (2.0, "gnmt")])
def test_width_one_equals_greedy_for_mixed_prompt_lengths(tiny_model, penalty, norm):
    eos, stop = eos_and_stop(tiny_model)
    greedy = generate(
        tiny_model, PROMPTS, n=1, max_new_tokens=12, temperature=0, eos_id=eos, stop_ids=stop
    )
    beam = beam_search(
        tiny_model,
        PROMPTS,
        beam_width=1,
        max_new_tokens=12,
        eos_id=eos,
        stop_ids=stop,
        length_penalty=penalty,
        length_norm=norm,
    )
    assert {"eos", "stop"} <= set(greedy.finish_reasons)
    assert beam.best.completion_ids == greedy.completion_ids
    assert beam.best.finish_reasons == greedy.finish_reasons
    assert torch.equal(beam.best.mask, greedy.mask)
    torch.testing.assert_close(beam.best.logprobs, greedy.logprobs, atol=1e-5, rtol=1e-5)


def test_every_beam_log_prob_equals_the_uncached_teacher_forced_log_prob(tiny_model):
    eos, stop = eos_and_stop(tiny_model)
    r = beam_search(
        tiny_model,
        PROMPTS,
        beam_width=3,
        max_new_tokens=10,
        eos_id=eos,
        stop_ids=stop,
        length_penalty=0.7,
    )
    for prompt, hyps in zip(PROMPTS, r.hypotheses):
        assert 1 <= len(hyps) <= 3
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
        for h in hyps:
            ref = teacher_forced_logprobs(tiny_model, prompt, h.ids)
            assert h.logprobs == pytest.approx(ref, abs=1e-4)
            assert h.score == pytest.approx(sum(ref) / len(h.ids) ** 0.7, abs=1e-4)


def test_a_batch_of_prompts_gives_the_same_beams_as_each_prompt_alone(tiny_model):
    eos, stop = eos_and_stop(tiny_model)
    kw = dict(beam_width=3, max_new_tokens=10, eos_id=eos, stop_ids=stop)
    batched = beam_search(tiny_model, PROMPTS, **kw)
    assert len({len(h[0].ids) for h in batched.hypotheses}) > 1  # prompts end at different steps
    for prompt, hyps in zip(PROMPTS, batched.hypotheses):
        alone = beam_search(tiny_model, [prompt], **kw).hypotheses[0]
        assert [h.ids for h in hyps] == [h.ids for h in alone]
        assert [h.score for h in hyps] == pytest.approx([h.score for h in alone], abs=1e-5)


def test_width_two_finds_the_likelier_sequence_that_greedy_misses():
    model = Bigram(MYOPIC)
    greedy = generate(model, [[1]], n=1, max_new_tokens=5, temperature=0, eos_id=EOS)
    assert greedy.completion_ids == [[3, EOS]]
    assert beam_search(
        model, [[1]], beam_width=1, max_new_tokens=5, eos_id=EOS, length_penalty=0.0
    ).best.completion_ids == [[3, EOS]]
    r = beam_search(model, [[1]], beam_width=2, max_new_tokens=5, eos_id=EOS, length_penalty=0.0)
    assert [h.ids for h in r.hypotheses[0]] == [[4, EOS], [3, EOS]]
    assert r.scores[0] == pytest.approx([math.log(0.399 * 0.9), math.log(0.6 * 0.3)], abs=1e-5)
    assert r.best.completion_ids == [[4, EOS]] and r.best.finish_reasons == ["eos"]
    assert r.best.logprobs[0].tolist() == pytest.approx([math.log(0.399), math.log(0.9)], abs=1e-5)


@pytest.mark.parametrize(
    "penalty,norm,winner",
    [
        (0.0, "simple", [3, EOS]),  # sums: -0.616 vs -0.922
        (1.0, "simple", [4, 5, 6, EOS]),  # means: -0.308 vs -0.231
        (1.0, "gnmt", [3, EOS]),  # / (7/6) vs / (9/6): -0.528 vs -0.615
    ],
)
def test_length_penalty_changes_the_pick_as_computed_by_hand(penalty, norm, winner):
    r = beam_search(
        Bigram(TWO_LENGTHS),
        [[1]],
        beam_width=2,
        max_new_tokens=8,
        eos_id=EOS,
        length_penalty=penalty,
        length_norm=norm,
    )
    by_ids = {tuple(h.ids): h.score for h in r.hypotheses[0]}
    pen = LENGTH_PENALTIES[norm]
    assert by_ids == pytest.approx(
        {(3, EOS): SUM_A / pen(2, penalty), (4, 5, 6, EOS): SUM_B / pen(4, penalty)}, abs=1e-5
    )
    assert r.best.completion_ids == [winner]


def test_stop_sequences_match_each_beam_own_tokens_and_stay_in_the_completion():
    r = beam_search(
        Bigram(TWO_LENGTHS),
        [[1], [5]],
        beam_width=2,
        max_new_tokens=8,
        eos_id=EOS,
        stop_ids=[[5, 6]],
        length_penalty=1.0,
    )
    first = {tuple(h.ids): h.finish_reason for h in r.hypotheses[0]}
    assert first == {(3, EOS): "eos", (4, 5, 6): "stop"}
    # the second prompt ends in 5, but a stop sequence is matched on the completion only
    assert r.hypotheses[1][0].ids == [6, EOS] and r.hypotheses[1][0].finish_reason == "eos"


def test_beams_still_running_at_the_length_limit_finish_as_length():
    r = beam_search(Bigram(TWO_LENGTHS), [[1]], beam_width=2, max_new_tokens=2, eos_id=None)
    assert sorted(h.ids for h in r.hypotheses[0]) == [[3, 2], [4, 5]]
    assert {h.finish_reason for h in r.hypotheses[0]} == {"length"}
    assert r.best.mask.tolist() == [[1.0, 1.0]]


def test_beam_search_is_deterministic(tiny_model):
    a = beam_search(tiny_model, PROMPTS, beam_width=4, max_new_tokens=8, eos_id=17)
    b = beam_search(tiny_model, PROMPTS, beam_width=4, max_new_tokens=8, eos_id=17)
    assert [[h.ids for h in p] for p in a.hypotheses] == [[h.ids for h in p] for p in b.hypotheses]
    assert a.scores == b.scores


@pytest.mark.parametrize(
    "kw,message",
    [
        ({"beam_width": 0}, "beam_width >= 1"),
        ({"beam_width": 7}, "at least 14 tokens"),
        ({"length_norm": "cubic"}, "length_norm='cubic'"),
        ({"max_new_tokens": 70}, "max_seq_len"),
    ],
)
def test_bad_arguments_are_rejected_with_the_setting_named(kw, message):
    args = {"beam_width": 2, "max_new_tokens": 4, **kw}
    with pytest.raises(ValueError, match=message):
        beam_search(Bigram(TWO_LENGTHS), [[1]], **args)


def test_an_ending_continuation_ranked_below_the_width_is_not_kept():
    # after [1]: EOS (rank 0) finishes, 3 (rank 1) lives, stop token 5 (rank 2) is dropped, 4 lives
    model = Bigram({1: {EOS: 0.4, 3: 0.3, 5: 0.2, 4: 0.099}, 3: {EOS: 0.999}, 4: {EOS: 0.999}})
    r = beam_search(
        model, [[1]], beam_width=2, max_new_tokens=4, eos_id=EOS, stop_ids=[[5]], length_penalty=0.0
    )
    assert [h.ids for h in r.hypotheses[0]] == [[EOS], [3, EOS]]
    assert r.scores[0] == pytest.approx([math.log(0.4), math.log(0.3 * 0.999)], abs=1e-5)


class Pieces:
    """Token i decodes to PIECES[i]: `</answer>` arrives as ` </`, `answer`, `>\\n`."""

    PIECES = ["", "", "", "a", " </", "answer", ">\n", "b", "", "", "", ""]
    pad_id = 0

    def decode(self, ids):
        return "".join(self.PIECES[int(i)] for i in ids if int(i) != EOS)


def test_stop_strings_match_each_beam_decoded_text_and_stay_in_the_completion():
    r = beam_search(
        Bigram(TWO_LENGTHS),
        [[1], [5]],
        beam_width=2,
        max_new_tokens=8,
        eos_id=EOS,
        stop_strings=["</answer>"],
        tokenizer=Pieces(),
        length_penalty=1.0,
    )
    first = {tuple(h.ids): (h.finish_reason, h.text) for h in r.hypotheses[0]}
    assert first == {(3, EOS): ("eos", "a"), (4, 5, 6): ("stop", " </answer>\n")}
    # the second prompt ends in 5 (`answer`), but a stop string is matched on the completion only
    assert r.hypotheses[1][0].ids == [6, EOS] and r.hypotheses[1][0].finish_reason == "eos"


def test_every_eos_id_ends_a_beam():
    r = beam_search(Bigram(TWO_LENGTHS), [[1]], beam_width=2, max_new_tokens=8, eos_id=[EOS, 6])
    assert {tuple(h.ids): h.finish_reason for h in r.hypotheses[0]} == {
        (3, EOS): "eos",
        (4, 5, 6): "eos",
    }
