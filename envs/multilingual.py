"""`multilingual`: arithmetic word problems written in English, Chinese and Russian.

Each problem is one of a few story templates (buy more, give away, boxes, equal shares, shopping,
travel) filled with random numbers; the prompt ends with an instruction to reason and answer in
the prompt's language, and `meta["lang"]` ("en", "zh", "ru") tells the `language` reward
which script the reasoning should use. The difficulty knob is `digits` (operands have 1..digits
digits); `meta["difficulty"]` is the largest operand's digit count. The same numbers in two
languages are two distinct tasks, but one split never shares a prompt with the other.

This module does not translate or judge; the `math` and `language` rewards do.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from envs.base import MATH_VOTE, EnvSpec, Task, TaskSet, sample_unique_splits

INSTRUCTION = {
    "en": "Think step by step in English and give the final number.",
    "zh": "请用中文逐步思考，并给出最终的数字答案。",
    "ru": "Рассуждай по шагам на русском языке и дай итоговое число.",
}

# story -> (draw(rng, operand) -> values, answer(values) -> int, {language: text})
Story = tuple[Callable[[random.Random, Callable], dict], Callable[[dict], int], dict[str, str]]
STORIES: dict[str, Story] = {
    "buy_more": (
        lambda rng, n: {"a": n(rng), "b": n(rng)},
        lambda v: v["a"] + v["b"],
        {
            "en": "Anna has {a} apples and buys {b} more. How many apples does she have now?",
            "zh": "小明有{a}个苹果，又买了{b}个。他现在一共有多少个苹果？",
            "ru": "У Маши {a} яблок, и она покупает ещё {b}. Сколько яблок у неё теперь?",
        },
    ),
    "give_away": (
        lambda rng, n: _ordered(n(rng), n(rng)),
        lambda v: v["a"] - v["b"],
        {
            "en": "Ben has {a} stickers and gives {b} of them to a friend. How many stickers are left?",
            "zh": "小红有{a}张贴纸，送给朋友{b}张。她还剩多少张贴纸？",
            "ru": "У Пети {a} наклеек, он дарит другу {b}. Сколько наклеек у него осталось?",
        },
    ),
    "boxes": (
        lambda rng, n: {"a": n(rng), "b": n(rng)},
        lambda v: v["a"] * v["b"],
        {
            "en": "There are {a} boxes with {b} pencils in each box. How many pencils are there?",
            "zh": "有{a}个盒子，每个盒子里有{b}支铅笔。一共有多少支铅笔？",
            "ru": "Есть {a} коробок, в каждой по {b} карандашей. Сколько всего карандашей?",
        },
    ),
    "share": (
        lambda rng, n: _shares(n(rng), n(rng)),
        lambda v: v["a"] // v["b"],
        {
            "en": "{a} candies are shared equally among {b} children. How many candies does each "
            "child get?",
            "zh": "把{a}颗糖平均分给{b}个孩子。每个孩子分到多少颗糖？",
            "ru": "{a} конфет поровну делят между {b} детьми. Сколько конфет получит каждый?",
        },
    ),
    "shopping": (
        lambda rng, n: {"a": n(rng), "b": n(rng), "c": n(rng)},
        lambda v: v["a"] * v["b"] + v["c"],
        {
            "en": "A pen costs {b} dollars. Lily buys {a} pens and a bag for {c} dollars. How many "
            "dollars does she spend?",
            "zh": "一支笔{b}元。小丽买了{a}支笔和一个{c}元的书包。她一共花了多少元？",
            "ru": "Ручка стоит {b} рублей. Оля покупает {a} ручек и сумку за {c} рублей. Сколько "
            "рублей она тратит?",
        },
    ),
    "travel": (
        lambda rng, n: {"a": n(rng), "b": n(rng)},
        lambda v: v["a"] * v["b"],
        {
            "en": "A train travels {a} kilometres every hour for {b} hours. How many kilometres "
            "does it travel?",
            "zh": "一列火车每小时行驶{a}千米，行驶了{b}小时。它一共行驶了多少千米？",
            "ru": "Поезд проезжает {a} километров в час и едет {b} часов. Сколько километров он "
            "проезжает?",
        },
    ),
}


def _ordered(x: int, y: int) -> dict:
    return {"a": max(x, y), "b": min(x, y)}


def _shares(each: int, people: int) -> dict:
    people = max(people, 2)
    return {"a": each * people, "b": people}


@dataclass(frozen=True)
class MultilingualConfig:
    digits: int = 2
    languages: tuple[str, ...] = ("en", "zh", "ru")
    stories: tuple[str, ...] = tuple(STORIES)
    n_train: int = 5_000
    n_eval: int = 300
    seed: int = 0
    template: str = "r1_zero"

    def __post_init__(self) -> None:
        if not 1 <= self.digits <= 6:
            raise ValueError(f"multilingual: digits must be in 1..6, got {self.digits}")
        for label, given, valid in (
            ("language", self.languages, INSTRUCTION),
            ("story", self.stories, STORIES),
        ):
            bad = [g for g in given if g not in valid]
            if bad or not given:
                raise ValueError(f"multilingual: unknown {label}(s) {bad}; valid: {list(valid)}")
        object.__setattr__(self, "languages", tuple(self.languages))
        object.__setattr__(self, "stories", tuple(self.stories))


def sample_task(cfg: MultilingualConfig, rng: random.Random) -> Task:
    story, lang = rng.choice(cfg.stories), rng.choice(cfg.languages)
    draw, answer, texts = STORIES[story]

    def operand(r: random.Random) -> int:
        d = r.randint(1, cfg.digits)
        return r.randint(max(1, 10 ** (d - 1)), 10**d - 1)

    values = draw(rng, operand)
    prompt = f"{texts[lang].format(**values)} {INSTRUCTION[lang]}"
    return Task(
        prompt=prompt,
        answer=str(answer(values)),
        meta={
            "lang": lang,
            "story": story,
            "difficulty": max(len(str(v)) for v in values.values()),
        },
    )


def build(cfg: MultilingualConfig) -> TaskSet:
    train, eval_ = sample_unique_splits(
        lambda rng: sample_task(cfg, rng), cfg.n_train, cfg.n_eval, cfg.seed, "multilingual"
    )
    return TaskSet(
        "multilingual",
        train,
        eval_,
        {"math": 1.0, "format": 0.1, "language": 0.1},
        cfg.template,
        cfg,
        accuracy="math",
        vote=MATH_VOTE,
    )


ENV = EnvSpec(config=MultilingualConfig, build=build)
