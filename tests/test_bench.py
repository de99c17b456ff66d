import importlib
import inspect

from experiments.bench import BENCHES


def test_every_benchmark_entry_point_takes_its_argument_list():
    for name, module in BENCHES.items():
        main = importlib.import_module(module).main
        assert list(inspect.signature(main).parameters) == ["argv"], name
