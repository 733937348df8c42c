"""The public API: about fifteen names at the top level, submodules loaded
when first used, old names still working with a warning that names the new
place, and no import circles among the library's modules."""

import ast
import pathlib
import subprocess
import sys
import textwrap

import pytest

import freetickets_tf as ft

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Source folder -> the package it installs as (setup.cfg's package_dir).
PACKAGES = {"freetickets_tf": "freetickets_tf", "callbacks": "freetickets_tf.callbacks",
            "models": "freetickets_tf.models", "scripts": "freetickets_tf.scripts"}


def run_python(code):
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_the_top_level_is_a_short_list_of_names_that_all_resolve():
    assert 12 <= len(ft.__all__) <= 18
    for name in ft.__all__:
        assert getattr(ft, name) is not None
    assert ft.sparsify is ft.masking.sparsify
    assert ft.strip_sparsity is ft.masking.strip_sparsity  # beside `sparsify`
    assert ft.train_ensemble is ft.recipes.train_ensemble
    assert {"data", "recipes", "flops", "metrics", "updaters"} <= set(dir(ft))
    with pytest.raises(AttributeError, match="no attribute 'sparsefy'"):
        ft.sparsefy


def test_submodules_load_when_first_used():
    loaded = run_python("""
        import sys
        import freetickets_tf as ft
        before = {m for m in sys.modules if m.startswith("freetickets_tf.")}
        ft.flops
        print(sorted(before)); print("freetickets_tf.flops" in sys.modules)
    """).splitlines()
    before = eval(loaded[0])
    for lazy in ("freetickets_tf.recipes", "freetickets_tf.evaluation", "freetickets_tf.flops",
                 "freetickets_tf.callbacks", "freetickets_tf.plots", "freetickets_tf.distribute"):
        assert lazy not in before
    assert loaded[1] == "True"


def test_a_sparse_keras_file_loads_after_a_plain_import(tmp_path):
    path = tmp_path / "ticket.keras"
    run_python(f"""
        import keras
        import freetickets_tf as ft
        from freetickets_tf import optimizers
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        sparse = ft.sparsify(model, density=0.5, seed=0)
        sparse.compile(optimizers.make_sgd(0.1, 0.9, 5e-4, "coupled", "all"), "mse")
        sparse.save({str(path)!r})
    """)
    # A fresh process that only imports the package: the masked layers and
    # the torch-semantics SGD are registered with Keras by the import.
    out = run_python(f"""
        import keras
        import freetickets_tf
        model = keras.models.load_model({str(path)!r})
        print(type(model.layers[0]).__name__, type(model.optimizer).__name__)
    """)
    assert out.split() == ["MaskedDense", "TorchSGD"]


@pytest.mark.parametrize("name, where", [
    ("overall_density", "freetickets_tf.masking.overall_density"),
    ("prune_global_magnitude", "freetickets_tf.masking.prune_global_magnitude"),
])
def test_names_that_left_the_top_level_still_work_with_a_warning(name, where):
    with pytest.warns(DeprecationWarning, match=where):
        value = getattr(ft, name)
    assert value is getattr(ft.masking, name)


def test_the_old_recipes_module_still_works_and_names_the_new_one():
    import importlib

    sys.modules.pop("freetickets_tf.ensembles", None)
    with pytest.warns(DeprecationWarning, match="freetickets_tf.recipes`"):
        ensembles = importlib.import_module("freetickets_tf.ensembles")
    for name in ft.recipes.__all__:
        assert getattr(ensembles, name) is getattr(ft.recipes, name)


def module_name(path):
    folder, *rest = path.relative_to(ROOT).with_suffix("").parts
    parts = [PACKAGES[folder], *rest]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph():
    """module -> the library modules it imports (anywhere in its code)."""
    files = [p for folder in PACKAGES for p in (ROOT / folder).rglob("*.py")]
    modules = {module_name(p): p for p in files}
    graph = {}
    for name, path in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    target = f"{node.module}.{alias.name}"
                    edges.add(target if target in modules else node.module)
            elif isinstance(node, ast.Import):
                edges.update(alias.name for alias in node.names)
        graph[name] = {e for e in edges if e in modules and e != name}
    return graph


def test_no_import_circles():
    graph = import_graph()
    # A package's __init__ re-exports its children, and a child importing a
    # sibling does not run through the parent's names: drop parent -> child.
    for name in graph:
        graph[name] = {e for e in graph[name] if not e.startswith(name + ".")}
    state, cycle = {}, []

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycle.append(path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycle, "import circles: " + "; ".join(" -> ".join(c) for c in cycle)
    assert "freetickets_tf.ensemble_model" not in graph["freetickets_tf.serving"]
