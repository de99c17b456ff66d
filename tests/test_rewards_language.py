import pytest

from envs.base import Task
from rewards.language import (
    detect_language,
    language_consistency,
    language_reward,
    script_word_counts,
    strip_non_prose,
)


@pytest.mark.parametrize(
    "reasoning, target, expected",
    [
        ("First add the numbers then check", "en", 1.0),
        ("First add the numbers then check", "zh", 0.0),
        ("我们先计算", "zh", 1.0),  # 5 Han characters, 5 words
        ("First 计算 the sum", "en", 3 / 5),  # First the sum | 计 算
        ("First 计算 the sum", "zh", 2 / 5),
        ("Сначала compute сумму", "ru", 2 / 3),
        ("Сначала compute сумму", "en", 1 / 3),
        # 2 English (Let us), 3 Han (所以有), 2 Russian (итак, ответ): 7 words
        ("Let us 所以有 итак ответ", "ru", 2 / 7),
        ("Let us 所以有 итак ответ", "zh", 3 / 7),
        ("Let us 所以有 итак ответ", "en", 2 / 7),
    ],
)
def test_share_of_target_words_in_mixed_reasoning(reasoning, target, expected):
    assert language_consistency(reasoning, target) == pytest.approx(expected)


def test_math_latex_code_and_numbers_do_not_count_as_words():
    reasoning = (
        "我们有 $x^2 + y = 10$，所以 \\frac{a}{b} = 3.5 \\[ \\sum_{i} i \\] 然后 "
        "```python\nprint(total)\n``` 得到 `answer = f(x)` 结果 123 x + y = z"
    )
    # left: 我们有 所以 然后 得到 结果 -> 11 Han chars; x, y, z are dropped single letters
    assert script_word_counts(reasoning) == {"han": 11}
    assert language_consistency(reasoning, "zh") == 1.0


def test_single_cyrillic_letters_are_words_but_single_latin_letters_are_not():
    assert script_word_counts("и в x y") == {"cyrillic": 2}


def test_empty_or_wordless_reasoning_is_fully_consistent():
    assert language_consistency("", "zh") == 1.0
    assert language_consistency("$x+1=2$ 42 \\alpha", "ru") == 1.0


def test_unclosed_delimiters_are_left_as_text():
    assert strip_non_prose("cost $5 and more") == "cost $5 and more"
    assert language_consistency("\\[ unclosed math words", "en") == 1.0


def test_regional_codes_map_to_their_language_and_unknown_targets_fail():
    assert language_consistency("我们", "zh-CN") == 1.0
    assert language_consistency("hello there", "en_US") == 1.0
    with pytest.raises(ValueError, match=r"'xx' is not supported; known: \['ar', 'de'"):
        language_consistency("text", "xx")


def test_japanese_counts_kana_and_kanji_for_ja_only_kanji_for_zh():
    text = "計算します"  # 2 kanji + 3 hiragana
    assert language_consistency(text, "ja") == 1.0
    assert language_consistency(text, "zh") == pytest.approx(2 / 5)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("What is the sum of 3 and 4?", "en"),
        ("求 3 和 4 的和是多少？", "zh"),
        ("Сколько будет 3 плюс 4?", "ru"),
        ("3と4の和はいくつですか", "ja"),
        ("计算一下 the value", "zh"),  # 4 Han words beat 2 Latin words
        ("12 + 7 = ?", "en"),  # no words: the default
    ],
)
def test_detect_language_picks_the_dominant_script(text, expected):
    assert detect_language(text) == expected


def test_detect_language_default_is_configurable():
    assert detect_language("", default="zh") == "zh"
    assert detect_language("ελληνικά κείμενο", default="ru") == "ru"  # Greek has no target


def test_reward_reads_target_from_meta_then_prompt():
    completion = "<think>First 计算 the sum</think><answer>5</answer>"
    tasks = [Task("Add 2 and 3", meta={"lang": "zh"}), Task("计算二加三"), Task("Add 2 and 3")]
    assert language_reward([completion] * 3, tasks) == pytest.approx([0.4, 0.4, 0.6])


def test_configured_target_overrides_meta_and_prompt():
    completion = "<think>Сначала compute сумму</think><answer>5</answer>"
    tasks = [Task("计算", meta={"lang": "zh"})]
    assert language_reward([completion], tasks, target="ru") == pytest.approx([2 / 3])


def test_only_the_reasoning_is_scored_not_the_answer():
    completion = "<think>我们计算</think><answer>the answer is five</answer>"
    assert language_reward([completion], [Task("x", meta={"lang": "zh"})]) == [1.0]


def test_without_a_think_block_the_whole_completion_minus_tags_is_scored():
    completion = "我们计算 <answer>好</answer>"  # tags removed: 我们计算好 all Han
    assert language_reward([completion], [Task("x", meta={"lang": "zh"})]) == [1.0]
    assert language_reward([completion], [Task("x", meta={"lang": "en"})]) == [0.0]


def test_prefilled_reasoning_is_found_before_the_first_close_tag():
    completion = "我们 compute</think><answer>5</answer>"
    tasks = [Task("x", meta={"lang": "zh"})]
    assert language_reward([completion], tasks, prefilled=True) == pytest.approx([2 / 3])


@pytest.mark.timeout(30)
def test_megabyte_of_unclosed_math_openers_is_linear():
    hostile = "\\[ word " * 120_000  # never closed: kept as text, "word" counted each time
    assert language_consistency(hostile, "en") == 1.0
    hostile_dollars = "$ 我 " * 200_000  # pairs of $ remove every other 我
    assert script_word_counts(hostile_dollars) == {"han": 100_000}
