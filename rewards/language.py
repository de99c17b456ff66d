"""Language consistency of the reasoning (DeepSeek-R1's language-consistency reward).

Definition (Guo et al. 2025, "DeepSeek-R1", §2.3.2): the share of the reasoning's words in the
target language. DeepSeek-R1 does not say how words are counted; `script_word_counts` says how
they are here (code and LaTeX removed, Han/Kana characters as words, single Latin/Greek letters
dropped as variables). consistency = words in the target's scripts / all words, 1.0 when no word
is left (empty reasoning is the format reward's business).

Targets (`LANGUAGE_SCRIPTS`) are language codes mapped to scripts, so languages of one script
are indistinguishable (en/fr/de/… all mean Latin; ja means Han or Kana; `zh-CN` → `zh`).
`language_reward` takes the target from its `target` option, else `task.meta["lang"]`, else
`detect_language(task.prompt)`; the reasoning is `envs.tags.reasoning`, or the whole completion
(tags removed) without a closed think block, so format and language stay separate components.
Not done here: telling languages of one script apart, or any model-based language ID.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from functools import lru_cache
from operator import itemgetter
from typing import TYPE_CHECKING

from envs.tags import TAG_RE, reasoning

if TYPE_CHECKING:
    from envs.base import Task

LANGUAGE_SCRIPTS: dict[str, frozenset[str]] = {
    "en": frozenset({"latin"}),
    "fr": frozenset({"latin"}),
    "de": frozenset({"latin"}),
    "es": frozenset({"latin"}),
    "it": frozenset({"latin"}),
    "pt": frozenset({"latin"}),
    "zh": frozenset({"han"}),
    "ja": frozenset({"han", "kana"}),
    "ko": frozenset({"hangul"}),
    "ru": frozenset({"cyrillic"}),
    "ar": frozenset({"arabic"}),
}
# Dominant script -> language reported by detect_language (han may become ja, see there).
SCRIPT_LANGUAGE = {
    "latin": "en",
    "han": "zh",
    "kana": "ja",
    "hangul": "ko",
    "cyrillic": "ru",
    "arabic": "ar",
}
JA_KANA_SHARE = 0.2  # Han text with at least this share of Kana (of Han+Kana) is Japanese

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f"
_KANA = "\u3041-\u3096\u309d-\u309f\u30a1-\u30fa\u30fc-\u30ff\u31f0-\u31ff"
_CJK_RUN_RE = re.compile(f"[{_HAN}]+|[{_KANA}]+")  # pure runs, not characters: fewer matches
_LETTERS_RE = re.compile(f"[^\\W\\d_{_HAN}{_KANA}]+")  # a run of non-Han, non-Kana letters
_INLINE_MATH_RE = re.compile(r"\$[^$\n]*\$")  # negated classes: linear, no backtracking blowup
_INLINE_CODE_RE = re.compile(r"`[^`\n]*`")
_LATEX_CMD_RE = re.compile(r"\\[A-Za-z]+")
_SPANS = (("```", "```"), ("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"))
_NAME_SCRIPT = {"CJK": "han", "HIRAGANA": "kana", "KATAKANA": "kana", "HANGUL": "hangul"}
_VARIABLE_SCRIPTS = frozenset({"latin", "greek"})


def _drop_spans(text: str, open_: str, close: str) -> str:
    """Replace each `open_ … close` span by a space, scanning left to right with `str.find`
    (linear even when many openers are never closed)."""
    parts, pos = [], 0
    while (start := text.find(open_, pos)) >= 0:
        end = text.find(close, start + len(open_))
        if end < 0:
            break
        parts += [text[pos:start], " "]
        pos = end + len(close)
    parts.append(text[pos:])
    return "".join(parts)


def strip_non_prose(text: str) -> str:
    """Remove code, LaTeX math and LaTeX commands (see the module docstring, step 1)."""
    for open_, close in _SPANS:
        text = _drop_spans(text, open_, close)
    text = _INLINE_MATH_RE.sub(" ", text)
    text = _INLINE_CODE_RE.sub(" ", text)
    return _LATEX_CMD_RE.sub(" ", text)


@lru_cache(maxsize=8192)
def _script(ch: str) -> str:
    """Lower-case script name of a letter: 'latin', 'cyrillic', 'han', 'kana', 'hangul', …"""
    if ch.isascii():
        return "latin"
    words = re.split(r"[ -]", unicodedata.name(ch, "UNKNOWN"))
    if words[0] in ("HALFWIDTH", "FULLWIDTH") and len(words) > 1:
        words = words[1:]
    return _NAME_SCRIPT.get(words[0], words[0].lower())


def script_word_counts(text: str) -> Counter:
    """Words per script of `text`.

    1. Non-prose goes first (`strip_non_prose`): fenced and inline code, LaTeX math ($$ … $$,
       \\[ … \\], \\( … \\), $ … $ within a line) and LaTeX commands; an unclosed delimiter
       stays text. Numbers are never words.
    2. Each Han or Kana character is one word (no spaces between words there); elsewhere a word
       is a maximal run of letters, of its first letter's script (from the Unicode name).
    3. Single Latin or Greek letters are dropped as math variables (`x`, `π`; also "a" and "I"),
       so variables do not count against a Chinese or Russian reasoning.
    """
    text = strip_non_prose(text)
    counts: Counter = Counter()
    for run in _CJK_RUN_RE.findall(text):
        counts["kana" if run[0] < "\u3400" else "han"] += len(run)  # all Kana sort below Han
    words = _LETTERS_RE.findall(text)
    by_first = Counter(map(itemgetter(0), words))  # C-level counting; few distinct letters
    singles = Counter(w for w in words if len(w) == 1)
    for letter, n in by_first.items():
        script = _script(letter)
        if script in _VARIABLE_SCRIPTS:
            n -= singles[letter]
        if n:
            counts[script] += n
    return counts


def _target_scripts(target: str) -> frozenset[str]:
    code = str(target).lower().replace("_", "-").split("-")[0]
    if code not in LANGUAGE_SCRIPTS:
        raise ValueError(
            f"language target {target!r} is not supported; known: {sorted(LANGUAGE_SCRIPTS)}"
        )
    return LANGUAGE_SCRIPTS[code]


def language_consistency(reasoning: str, target: str) -> float:
    """Share of words of `reasoning` written in `target`'s script(s), in [0, 1]; 1.0 if no words.

    E.g. target "en" and "First 计算 the sum" → words First, 计, 算, the, sum → 3/5 = 0.6.
    """
    scripts = _target_scripts(target)
    counts = script_word_counts(reasoning)
    total = sum(counts.values())
    if total == 0:
        return 1.0
    return sum(counts[s] for s in scripts) / total


def detect_language(text: str, default: str = "en") -> str:
    """Language code of the dominant script of `text` (most words), via `SCRIPT_LANGUAGE`.

    Han text is "ja" when Kana make up at least `JA_KANA_SHARE` of its Han+Kana words. Returns
    `default` when the text has no words or its dominant script has no language here.
    """
    counts = script_word_counts(text)
    if not counts:
        return default
    cjk = counts["han"] + counts["kana"]
    if cjk and cjk >= max(counts.values()) and counts["kana"] >= JA_KANA_SHARE * cjk:
        return "ja"
    script = max(counts, key=counts.__getitem__)
    return SCRIPT_LANGUAGE.get(script, default)


def _reasoning_text(completion: str, prefilled: bool) -> str:
    text = reasoning(completion, prefilled)
    return TAG_RE.sub(" ", completion if text is None else text)


def language_reward(
    completions: list[str], tasks: list[Task], *, target: str | None = None, prefilled: bool = False
) -> list[float]:
    """`language_consistency` of each completion's reasoning with its target language.

    Target per sample: `target` if given, else `task.meta["lang"]`, else the prompt's dominant
    language (`detect_language`). An unsupported target raises `ValueError` for that sample.
    """
    scores = []
    for completion, task in zip(completions, tasks):
        lang = target or task.meta.get("lang") or detect_language(task.prompt)
        scores.append(language_consistency(_reasoning_text(completion, prefilled), lang))
    return scores
