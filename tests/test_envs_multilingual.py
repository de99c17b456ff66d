"""Multilingual word problems: answers follow from the prompt's numbers; scripts match languages."""

import re

import pytest

from envs.base import build_env

SCRIPT = {"zh": re.compile(r"[\u4e00-\u9fff]"), "ru": re.compile(r"[а-яА-Я]")}
STORY_ANSWER = {
    "buy_more": lambda x, y: x + y,
    "give_away": lambda x, y: x - y,
    "boxes": lambda x, y: x * y,
    "travel": lambda x, y: x * y,
    "share": lambda x, y: x // y if x % y == 0 else None,
    "shopping": lambda x, y, z: x * y + z,
}


def test_multilingual_answers_follow_from_the_numbers_in_the_prompt():
    env = build_env("multilingual", digits=3, n_train=300, n_eval=30, seed=4)
    for task in env.train + env.eval:
        numbers = [int(n) for n in re.findall(r"\d+", task.prompt)]
        assert task.answer == str(STORY_ANSWER[task.meta["story"]](*numbers)), task.prompt


def test_multilingual_prompts_are_written_in_their_declared_language():
    env = build_env("multilingual", n_train=300, n_eval=30)
    langs = {t.meta["lang"] for t in env.train}
    assert langs == {"en", "zh", "ru"}
    for task in env.train:
        lang = task.meta["lang"]
        if lang == "en":
            assert task.prompt.isascii()
        else:
            assert SCRIPT[lang].search(task.prompt)
            assert not re.search(r"[A-Za-z]", task.prompt)


def test_multilingual_language_choice_is_a_knob():
    env = build_env("multilingual", languages=["zh"], n_train=50, n_eval=5)
    assert {t.meta["lang"] for t in env.train + env.eval} == {"zh"}
    with pytest.raises(ValueError, match="unknown language.*'xx'"):
        build_env("multilingual", languages=["xx"])
