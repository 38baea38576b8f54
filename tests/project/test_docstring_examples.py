"""Every ```python example in a public docstring runs as written (in a temporary
working directory), and every number it quotes in an `expression  # about N` comment
holds, as for the docs' pages (tests/project/test_doc_blocks.py). The main public
classes and functions each have one. The examples share their shapes (three features,
`DriftingTargetStream(3)`, 1,000 steps), so they compile few programs; the runners'
examples (each its own compiled scan) run among the slow tests."""

import inspect

import matplotlib
import pytest

import alberta_eqx as ae
from alberta_eqx import gvf, td
from tests.project import test_doc_blocks as doc_blocks

# The classes and functions a user meets first (issue 22, item 10).
MAIN = [
    ae.LinearLearner,
    ae.IDBD,
    ae.Autostep,
    ae.LMS,
    ae.ObGD,
    td.TDLinearLearner,
    td.SwiftTDLearner,
    ae.MLPLearner,
    ae.OnlineLearner,
    gvf.Horde,
    ae.run_learning_loop,
    ae.run_learning_loop_batched,
]
# Examples that compile a whole run (or write a journal): over a few seconds each.
SLOW = {"run_learning_loop", "run_learning_loop_batched", "DurableLearner"}


def _public():
    """Every public class and function of the library's packages, once."""
    import importlib
    import pkgutil

    names = ["alberta_eqx"] + [
        info.name
        for info in pkgutil.walk_packages(ae.__path__, "alberta_eqx.")
        if not any(part.startswith("_") for part in info.name.split(".")[1:])
    ]
    seen, found = set(), []
    for name in names:
        module = importlib.import_module(name)
        for public in getattr(module, "__all__", []):
            obj = getattr(module, public)
            if (inspect.isclass(obj) or inspect.isfunction(obj)) and id(obj) not in seen:
                seen.add(id(obj))
                found.append(obj)
    return found


def _examples():
    return [
        (obj.__name__, source)
        for obj in _public()
        for _, source in doc_blocks.python_blocks(inspect.getdoc(obj) or "")
    ]


def test_the_main_classes_have_an_example():
    missing = [obj.__name__ for obj in MAIN if not doc_blocks.python_blocks(obj.__doc__ or "")]
    assert not missing, f"no ```python example in the docstrings of {missing}"


def _run(examples, tmp_path, monkeypatch):
    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    for name, source in examples:
        namespace: dict = {"__name__": f"docstring_{name}"}
        try:
            exec(compile(source, f"<{name}'s docstring>", "exec"), namespace)
        except Exception as error:
            raise AssertionError(
                f"{name}'s docstring example fails: {type(error).__name__}: {error}"
            ) from error
        for expression, number in doc_blocks.quoted_numbers(source):
            value = eval(expression, namespace)
            assert doc_blocks.holds(value, number), (
                f"{name}'s docstring: {expression} is {value}, the example says about {number}"
            )


def test_docstring_examples_run(tmp_path, monkeypatch):
    examples = [(name, source) for name, source in _examples() if name not in SLOW]
    assert {name for name, _ in examples} >= {obj.__name__ for obj in MAIN} - SLOW
    _run(examples, tmp_path, monkeypatch)


@pytest.mark.slow
def test_docstring_examples_that_compile_a_run(tmp_path, monkeypatch):
    examples = [(name, source) for name, source in _examples() if name in SLOW]
    assert {name for name, _ in examples} == SLOW
    _run(examples, tmp_path, monkeypatch)
