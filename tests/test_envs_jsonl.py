"""JSONL readers: GSM8K / MATH answer extraction, error messages with file and line, the env."""

import json

import pytest

from envs.base import build_env
from envs.jsonl import JsonlError, gsm8k_answer, read_jsonl
from envs.preview import main as preview_main
from envs.preview import validate_file
from envs.tags import last_boxed


@pytest.mark.parametrize(
    "solution, expected",
    [
        ("2 + 3 = 5\n#### 5", "5"),
        ("It costs 1,250 dollars.\n#### 1,250", "1250"),
        ("first #### 3 then\n#### -4", "-4"),
        ("#### 2.5  \n", "2.5"),
        ("no final line", None),
        ("####   ", None),
    ],
)
def test_gsm8k_final_answer_extraction(solution, expected):
    assert gsm8k_answer(solution) == expected


@pytest.mark.parametrize(
    "solution, expected",
    [
        ("so $x = \\boxed{6}$.", "6"),
        ("\\boxed{1} then \\boxed{\\frac{5}{6}}", "\\frac{5}{6}"),
        ("\\boxed{\\{1, 2\\} \\cup \\{3\\}}", "\\{1, 2\\} \\cup \\{3\\}"),
        ("\\fbox{42}", "42"),
        ("\\boxed {7}", "7"),
        ("\\boxed{unbalanced", None),
        ("no box", None),
    ],
)
def test_math_boxed_answer_extraction(solution, expected):
    assert last_boxed(solution) == expected


def test_sample_files_parse_to_their_hand_written_answers():
    gsm = read_jsonl("envs/data/gsm8k_sample.jsonl", "gsm8k").tasks
    assert [t.answer for t in gsm] == ["7", "252", "1500", "36", "65"]
    assert "####" in gsm[0].meta["solution"]
    math = read_jsonl("envs/data/math_sample.jsonl", "hendrycks_math").tasks
    assert [t.answer for t in math] == ["\\frac{5}{6}", "6", "5", "5\\sqrt{2}", "9", "(-2, 2)"]
    assert [t.meta["difficulty"] for t in math] == [1, 1, 2, 2, 3, 3]
    assert math[0].meta["type"] == "Prealgebra"
    plain = read_jsonl("envs/data/math_plain_sample.jsonl", "math").tasks
    assert [t.answer for t in plain] == ["391", "999", "7/2"]
    assert plain[2].meta["id"] == "half-of-seven"
    code = read_jsonl("envs/data/code_sample.jsonl", "code").tasks
    assert code[0].meta["entry_point"] == "square" and code[2].tests[0]["stdout"] == "42\n"


def _write(tmp_path, lines, name="data.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    "bad_line, fmt, problem",
    [
        ('{"question": "q", "answer": "1"', "math", "invalid JSON"),
        ('["q", "1"]', "math", "expected a JSON object, got list"),
        ('{"question": "q"}', "math", "'answer' must be a non-empty string or number"),
        ('{"answer": "1"}', "math", "missing field 'question' or 'prompt'"),
        ('{"question": "q", "answer": "no marker"}', "gsm8k", "no final '#### <number>' line"),
        ('{"problem": "p", "solution": "x = 6"}', "hendrycks_math", "no complete \\\\boxed"),
        ('{"prompt": "p", "tests": []}', "code", "'tests' must be a non-empty list"),
        ('{"prompt": "p", "tests": [{"stdin": "1"}]}', "code", "tests\\[0\\] must have exactly"),
        ('{"prompt": "p", "tests": [{"call": "f()", "expected": 1}]}', "code", "must be strings"),
        (
            '{"prompt": "p", "tests": [{"call": "f()", "expected": "1"}], "entry_point": "f()"}',
            "code",
            "'entry_point' must be a Python identifier",
        ),
        (
            '{"question": "q", "answer": "1", "difficulty": "hard"}',
            "math",
            "'difficulty' must be an int",
        ),
    ],
)
def test_a_bad_line_names_the_file_the_line_and_the_problem(tmp_path, bad_line, fmt, problem):
    good = {
        "math": '{"question": "ok", "answer": 1}',
        "gsm8k": '{"question": "ok", "answer": "#### 1"}',
        "hendrycks_math": '{"problem": "ok", "solution": "\\\\boxed{1}"}',
        "code": '{"prompt": "ok", "tests": [{"stdin": "", "stdout": "1"}]}',
    }[fmt]
    path = _write(tmp_path, [good, "", bad_line])
    with pytest.raises(JsonlError, match=problem) as info:
        read_jsonl(path, fmt)
    assert str(info.value).startswith(f"{path}:3: ")
    assert info.value.line == 3


def test_skip_bad_lines_counts_them_and_keeps_the_good_ones(tmp_path):
    path = _write(
        tmp_path,
        [
            '{"question": "a", "answer": 1}',
            "not json",
            '{"question": "b"}',
            '{"prompt": "c", "answer": "2"}',
        ],
    )
    result = read_jsonl(path, "math", skip_bad=True)
    assert [t.prompt for t in result.tasks] == ["a", "c"] and result.skipped == 2
    assert result.errors[0].startswith(f"{path}:2: invalid JSON")
    assert result.errors[1].startswith(f"{path}:3: ")


def test_a_line_that_is_not_utf8_is_reported_with_its_line(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"question": "a", "answer": 1}\n{"question": "caf\xe9", "answer": 2}\n')
    with pytest.raises(JsonlError, match=r"latin1.jsonl:2: not valid UTF-8 \(byte 18\)"):
        read_jsonl(path, "math")


def test_unknown_format_lists_the_valid_ones():
    with pytest.raises(ValueError, match="valid formats: .*gsm8k"):
        read_jsonl("envs/data/gsm8k_sample.jsonl", "gsm")


def test_jsonl_env_with_an_eval_file_drops_eval_prompts_from_train(tmp_path):
    rows = [json.dumps({"question": f"q{i}", "answer": str(i)}) for i in range(6)]
    train = _write(tmp_path, rows + [rows[0]], "train.jsonl")  # q0 twice
    eval_ = _write(tmp_path, rows[4:], "eval.jsonl")
    env = build_env("jsonl", path=train, eval_path=eval_)
    assert [t.prompt for t in env.train] == ["q0", "q1", "q2", "q3"]
    assert [t.prompt for t in env.eval] == ["q4", "q5"]
    assert env.rewards == {"math": 1.0, "format": 0.1} and env.name == "jsonl:train"
    assert env.eval[0].meta["id"] == "train/eval/0"


def test_jsonl_code_env_names_the_code_reward():
    env = build_env("jsonl", path="envs/data/code_sample.jsonl", format="code", n_eval=1)
    assert env.rewards == {"code": 1.0, "format": 0.1}
    assert len(env.train) == 2 and env.eval[0].tests


def test_jsonl_env_without_a_path_is_an_error():
    with pytest.raises(ValueError, match="'path' is required"):
        build_env("jsonl")


def test_validate_reports_every_bad_line(tmp_path, capsys):
    path = _write(tmp_path, ['{"question": "a", "answer": 1}', "{", '{"question": "b"}'])
    ok, report = validate_file(path, "math")
    assert not ok
    assert report.splitlines()[0] == f"{path}: 1 valid records, 2 bad lines"
    assert report.splitlines()[1].startswith(f"{path}:2: invalid JSON")
    assert preview_main(["--validate", path]) == 1
    assert (
        preview_main(["--validate", "envs/data/math_sample.jsonl", "--format", "hendrycks_math"])
        == 0
    )
    assert "6 valid records, 0 bad lines" in capsys.readouterr().out


def test_preview_renders_prompts_with_their_references():
    import re

    from envs.preview import preview

    text = preview("arithmetic", 3, template="tiny", digits=2, ops=("+",), n_train=20, n_eval=5)
    blocks = text.split("\n--- ")[1:]
    assert len(blocks) == 3
    for block in blocks:
        a, b, ref = re.search(r"\nQ: (\d+)\+(\d+)=\nA: \n>>> reference: (\d+)$", block).groups()
        assert int(ref) == int(a) + int(b)


def test_a_tinyzero_countdown_file_trains_with_the_countdown_reward(tmp_path):
    from envs.templates import get_template
    from rewards.scoring import build_scorer

    rows = [{"target": 24, "nums": [2, 3, 4]}, {"target": 7, "nums": [1, 6], "use_all": False}]
    path = tmp_path / "cd.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    env = build_env("jsonl", path=str(path), format="countdown", n_eval=0)
    assert env.rewards == {"countdown": 1.0, "format": 0.1}
    by_target = {t.answer: t for t in env.train}
    assert by_target["24"].meta["numbers"] == [2, 3, 4] and by_target["24"].meta["use_all"]
    assert "[2, 3, 4]" in by_target["24"].prompt and "24" in by_target["24"].prompt
    scorer = build_scorer(env, get_template("r1_zero"), {}, None)
    good = "<think> 2*3*4 </think> <answer> 2 * 3 * 4 </answer>"
    unused = "<think> 6*4 </think> <answer> (2 + 4) * 4 </answer>"  # 4 twice, 3 unused
    v = scorer([good, unused], [by_target["24"], by_target["24"]])
    assert v.components["countdown"] == [1.0, 0.0]


@pytest.mark.parametrize(
    "line, problem",
    [
        ('{"target": "24", "nums": [2, 3, 4]}', "'target' must hold integers"),
        ('{"target": 24, "nums": [2]}', "'nums' must be a list of 2 to 8"),
        ('{"target": 24, "nums": [2, true]}', "'nums' must hold integers"),
        ('{"target": 24, "nums": [2, 3], "use_all": "yes"}', "'use_all' must be true or false"),
    ],
)
def test_a_bad_countdown_line_names_file_line_and_problem(tmp_path, line, problem):
    from envs.jsonl import JsonlError, read_jsonl

    path = tmp_path / "cd.jsonl"
    path.write_text('{"target": 5, "nums": [2, 3]}\n' + line + "\n")
    with pytest.raises(JsonlError, match=rf"cd\.jsonl:2: {problem}"):
        read_jsonl(path, "countdown")
