"""rewards.code: verdicts are the parent's comparisons; faked passes fail; reward never raises."""

import marshal
import os
import subprocess
import sys

import pytest

from envs.base import Task
from rewards.code import (
    code_reward,
    extract_program,
    normalize_output,
    run_tests,
    run_tests_many,
    sandbox,
    values_match,
)
from rewards.registry import build_reward

ADD_CALLS = [{"call": "add(1, 2)", "expected": "3"}, {"call": "add(-5, 5)", "expected": "0"}]
ADD_STDIO = [{"stdin": "1 2\n", "stdout": "3\n"}, {"stdin": "10 -4\n", "stdout": "6"}]
SOLVE_STDIO = "a, b = map(int, input().split())\nprint(a + b)"


def judge(program, tests, **kw):
    return run_tests(program, tests, timeout_s=1.0, memory_mb=256, **kw)


def test_correct_function_passes_every_call_case():
    rep = judge("def add(a, b):\n    return a + b", ADD_CALLS)
    assert (rep.passed, rep.total, rep.statuses) == (2, 2, ("pass", "pass"))


def test_wrong_and_crashing_cases_are_told_apart():
    rep = judge(
        "def add(a, b):\n    return b // a", ADD_CALLS + [{"call": "add(0, 1)", "expected": "1"}]
    )
    assert rep.statuses == ("fail", "fail", "error")


def test_stdin_stdout_tests_compare_normalised_output():
    rep = judge(SOLVE_STDIO + "   \nprint()", ADD_STDIO)
    assert rep.statuses == ("pass", "pass")
    assert judge("print(3)", ADD_STDIO).statuses == ("pass", "fail")


def test_mixed_test_kinds_keep_their_positions():
    program = (
        "def add(a, b):\n    return a + b\nif __name__ == '__main__':\n"
        "    print(add(*map(int, input().split())))"
    )
    rep = judge(program, [ADD_STDIO[0], ADD_CALLS[0], {"stdin": "1 1", "stdout": "3"}])
    assert rep.statuses == ("pass", "error", "fail")  # input() hits EOF in the call process


def test_printing_passed_and_exiting_zero_does_not_fake_a_pass():
    program = "print('PASSED')\nprint('3')\nimport sys\nsys.exit(0)"
    assert judge(program, [{"stdin": "", "stdout": "ALL TESTS PASSED"}]).passed == 0
    assert judge(
        "def add(a, b):\n    return a + b\nimport sys\nsys.exit(0)", ADD_CALLS
    ).statuses == ("missing", "missing")


def test_os_exit_zero_before_the_calls_does_not_fake_a_pass():
    program = "import os\nprint('1 passed')\nos._exit(0)\ndef add(a, b):\n    return a + b"
    assert judge(program, ADD_CALLS).passed == 0


def test_system_exit_inside_a_case_fails_that_case():
    rep = judge("def add(a, b):\n    raise SystemExit(0)", ADD_CALLS)
    assert rep.statuses == ("error", "error")


def test_always_equal_result_does_not_fake_a_pass():
    program = (
        "class Any:\n    def __eq__(self, other):\n        return True\n"
        "def add(a, b):\n    return Any()"
    )
    assert judge(program, ADD_CALLS).passed == 0


def test_patched_builtins_do_not_reach_the_harness():
    program = (
        "import builtins\nbuiltins.repr = lambda x: '3'\nbuiltins.eval = lambda *a: 3\n"
        "builtins.AssertionError = type('Never', (Exception,), {})\n"
        "def add(a, b):\n    return 'wrong'"
    )
    assert judge(program, ADD_CALLS).statuses == ("fail", "fail")


def test_forged_frames_on_stdout_are_ignored():
    program = "print('0 value 1\\n3')\nprint('1 value 1\\n0')\ndef add(a, b):\n    return None"
    assert judge(program, ADD_CALLS).passed == 0


def test_infinite_loop_in_a_call_marks_the_remaining_cases_timeout():
    rep = judge(
        "def add(a, b):\n    while a < 0:\n        pass\n    return a + b",
        [ADD_CALLS[0], {"call": "add(-1, 0)", "expected": "0"}, ADD_CALLS[0]],
    )
    assert rep.statuses == ("pass", "timeout", "timeout")


def test_entry_point_must_be_defined_by_the_program():
    program = "def add(a, b):\n    return a + b"
    assert judge(program, ADD_CALLS, entry_point="add").passed == 2
    assert judge(program, ADD_CALLS, entry_point="solve").statuses == ("error", "error")


@pytest.mark.parametrize(
    "got, expected, same",
    [
        ("3", "3", True),
        ("3.0000001", "3", True),
        ("0.30000000000000004", "0.3", True),
        ("True", "1", False),
        ("[1, 2]", "(1, 2)", False),
        ("{'a': [1.0]}", "{'a': [1]}", True),
        ("'abc'", "'abc'", True),
        ("<object at 0x1>", "<object at 0x1>", True),
        ("None", "0", False),
    ],
)
def test_values_match_compares_literals_then_strings(got, expected, same):
    assert values_match(got, expected) is same


def test_normalize_output_strips_trailing_space_crlf_and_blank_lines():
    assert normalize_output("1 2  \r\n3\t\n\n\n") == "1 2\n3"
    assert normalize_output(" 1") == " 1"  # leading space is significant


def test_extract_program_takes_the_fenced_block_of_the_last_answer():
    text = (
        "<think>```python\nprint(0)\n```</think><answer>x</answer>"
        "<answer>Here:\n```python\nprint(1)\n```\n```python\nprint(2)\n```</answer>"
    )
    assert extract_program(text) == "print(1)"
    assert extract_program("<answer>\nprint(3)\n</answer>") == "print(3)"
    assert extract_program("```python\nprint(1)\n```") is None


def test_malformed_tests_are_rejected_naming_the_test():
    with pytest.raises(ValueError, match="test 1"):
        run_tests("pass", [ADD_CALLS[0], {"input": "1", "output": "2"}])
    with pytest.raises(ValueError, match="non-empty list"):
        run_tests("pass", [])


def test_run_tests_many_keeps_input_order():
    reps = run_tests_many(
        ["print(3)", SOLVE_STDIO, "print(6)"],
        [ADD_STDIO] * 3,
        max_workers=3,
        timeout_s=1.0,
        memory_mb=256,
    )
    assert [r.statuses for r in reps] == [("pass", "fail"), ("pass", "pass"), ("fail", "pass")]


def test_code_reward_scores_binary_or_fraction_and_counts_timeouts_and_errors():
    task = Task("add two numbers", tests=ADD_STDIO)
    completions = [
        f"<answer>```python\n{SOLVE_STDIO}\n```</answer>",
        "<answer>print(3)</answer>",
        "no answer",
        "<answer>while True: pass</answer>",
        "<answer>print(3)</answer>",
    ]
    tasks = [task] * 4 + [Task("broken", tests=[{"bad": "test"}])]
    binary = code_reward(completions, tasks, timeout_s=1.0, memory_mb=256)
    assert list(binary) == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert (binary.timeouts, binary.errors) == (1, 1)
    frac = code_reward(completions[:2], tasks[:2], scoring="fraction", timeout_s=1.0, memory_mb=256)
    assert list(frac) == [1.0, 0.5]


def test_sandbox_failure_is_counted_as_an_error_not_raised(monkeypatch):
    broken = marshal.dumps(compile("def main(job):\n    raise OSError('boom')", "h", "exec"))
    monkeypatch.setattr(sandbox, "_harness_code", lambda: broken)
    scores = code_reward(
        ["<answer>print(3)</answer>"], [Task("p", tests=ADD_STDIO)], timeout_s=1.0, memory_mb=256
    )
    assert list(scores) == [0.0] and (scores.errors, scores.timeouts) == (1, 0)


def test_registry_builds_the_code_reward_with_options():
    reward = build_reward("code", scoring="fraction", timeout_s=1.0, memory_mb=256)
    assert list(reward(["<answer>print(3)</answer>"], [Task("p", tests=ADD_STDIO)])) == [0.5]


def test_rewards_code_imports_no_torch():
    probe = "import sys, rewards.code, rewards.code.sandbox; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    assert out.stdout.strip() == "False"
