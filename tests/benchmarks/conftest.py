"""The benchmark scripts, loaded by file path (they run as scripts, not as
an installed package)."""

import importlib.util
import pathlib

import pytest

BENCHMARKS = pathlib.Path(__file__).parents[2] / "benchmarks"


@pytest.fixture
def load_benchmark():
    """`load_benchmark("real_data")`: the module of `benchmarks/real_data.py`."""

    def load(name):
        spec = importlib.util.spec_from_file_location(f"{name}_benchmark",
                                                      BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
