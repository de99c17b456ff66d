import importlib
import inspect

from experiments.bench import BENCHES


def test_every_benchmark_entry_point_takes_its_argument_list():
    for name, module in BENCHES.items():
        main = importlib.import_module(module).main
        assert list(inspect.signature(main).parameters) == ["argv"], name


def test_contention_bench_reads_the_step_time_and_threads_the_step_bench_prints():
    from experiments.bench.contention import ENDED, STEP

    out = (
        "GRPO step: 2 prompts x 2 samples, ..., threads auto (ended on 1)\n"
        "  gen        0.100 s  ( 50.0%)\n"
        "  step       0.200 s; generation 10 tokens/s; peak memory 9 MB\n"
    )
    assert float(STEP.search(out).group(1)) == 0.2 and ENDED.search(out).group(1) == "1"


def test_the_math_bench_runs_end_to_end_at_a_small_size(capsys):
    from experiments.bench.math import main

    main(["--n", "50"])
    out = capsys.readouterr().out
    assert "checks/s" in out and "worst single hostile check" in out
