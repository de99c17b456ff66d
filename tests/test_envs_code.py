"""The built-in code problems: well-formed data, and in the sandbox every reference solution
passes its tests while every deliberately wrong solution fails at least one."""

import re

import pytest

from envs.base import build_env
from envs.code import load_problems, problem_kind

PROBLEMS = load_problems()
SANDBOX = dict(timeout_s=10.0, memory_mb=512)
# A fast sample for the default run (one of each kind per difficulty); the full sweep is slow
# because every stdin test is its own sandboxed process (about 18 s on 2 busy cores).
SAMPLE = ["add_two", "two_sum", "edit_distance", "io_sum_line", "io_matrix_sum", "io_gcd_pairs"]


def _report(program: str, problem: dict):
    from rewards.code import run_tests

    return run_tests(program, problem["tests"], entry_point=problem["entry_point"], **SANDBOX)


def test_there_are_at_least_forty_problems_of_both_kinds_with_unique_ids():
    ids = [p["id"] for p in PROBLEMS]
    kinds = [problem_kind(p) for p in PROBLEMS]
    assert len(ids) >= 40 and len(set(ids)) == len(ids)
    assert kinds.count("call") >= 20 and kinds.count("stdio") >= 10
    assert {p["difficulty"] for p in PROBLEMS} == {1, 2, 3}


@pytest.mark.parametrize("problem", PROBLEMS, ids=lambda p: p["id"])
def test_each_problem_names_its_function_in_prompt_solution_and_every_call(problem):
    entry = problem["entry_point"]
    assert problem["solution"] != problem["wrong_solution"]
    if entry is None:
        assert all(set(t) == {"stdin", "stdout"} for t in problem["tests"])
        return
    assert f"`{entry}(" in problem["prompt"]
    assert re.search(rf"^def {entry}\(", problem["solution"], re.M)
    assert re.search(rf"^def {entry}\(", problem["wrong_solution"], re.M)
    assert all(t["call"].startswith(f"{entry}(") for t in problem["tests"])


@pytest.mark.parametrize("pid", SAMPLE)
def test_sampled_reference_solutions_pass_and_wrong_ones_fail_in_the_sandbox(pid):
    problem = next(p for p in PROBLEMS if p["id"] == pid)
    good, bad = _report(problem["solution"], problem), _report(problem["wrong_solution"], problem)
    assert good.passed == good.total == len(problem["tests"]), good.statuses
    assert bad.passed < bad.total, bad.statuses


@pytest.mark.slow
@pytest.mark.parametrize("problem", PROBLEMS, ids=lambda p: p["id"])
def test_every_reference_solution_passes_and_every_wrong_one_fails_in_the_sandbox(problem):
    good, bad = _report(problem["solution"], problem), _report(problem["wrong_solution"], problem)
    assert good.passed == good.total == len(problem["tests"]), good.statuses
    assert bad.passed < bad.total, bad.statuses


def test_code_tasks_carry_tests_and_entry_point_but_no_solution():
    env = build_env("code", n_eval=5)
    assert len(env.train) + len(env.eval) == len(PROBLEMS)
    for task in env.train + env.eval:
        assert task.answer is None and task.tests
        assert set(task.meta) == {"id", "difficulty", "entry_point"}
        source = next(p for p in PROBLEMS if f"code/{p['id']}" == task.meta["id"])
        assert source["solution"] not in task.prompt


def test_code_env_filters_by_kind_and_difficulty():
    env = build_env("code", kinds=("stdio",), max_difficulty=1, n_eval=2)
    tasks = env.train + env.eval
    assert tasks and all(t.meta["entry_point"] is None and t.meta["difficulty"] == 1 for t in tasks)
    with pytest.raises(ValueError, match="n_eval=99 but only"):
        build_env("code", n_eval=99)
    with pytest.raises(ValueError, match="unknown kind"):
        build_env("code", kinds=("java",))
