"""Every ```python example in a public docstring runs as written (in a temporary
working directory), and every number it quotes in an `expression  # about N` comment
holds, as for the docs' pages (tests/project/test_doc_blocks.py). The main public
classes and functions (`MAIN`) and the other user-facing ones (`DOCUMENTED`) each
have one. The quick test runs `MAIN`'s examples, which share their shapes (three
features, `DriftingTargetStream(3)`, 1,000 steps), so they compile few programs; the
runners' examples (each its own compiled scan) and every other example run among the
slow tests, one test per class."""

import inspect

import matplotlib
import pytest

import alberta_eqx as ae
from alberta_eqx import control, gvf, nn, nonlinear, streams, td
from alberta_eqx.experiments import loggers
from alberta_eqx.streams.brax_environment import BraxEnvironment
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
# MAIN's examples that compile a whole run: over a few seconds each.
SLOW = {"run_learning_loop", "run_learning_loop_batched"}
# The other user-facing classes (issue 22, item 10); their examples run among the slow
# tests. Records, states, errors and abstract bases have none, nor has WandbLogger:
# even offline, wandb writes its logs outside the working directory (~/.cache/wandb).
DOCUMENTED = [
    ae.DurableLearner,
    BraxEnvironment,
    ae.ClassifierLearner,
    ae.MultiHeadLearner,
    nonlinear.TDMLPLearner,
    td.TrueOnlineTDLearner,
    td.SparseSwiftTDLearner,
    gvf.GradientTDLearner,
    gvf.TrunkHorde,
    control.SwiftSarsa,
    control.SarsaLambda,
    ae.AdaptiveObGD,
    ae.ObGDBounding,
    ae.EMANormalizer,
    ae.WelfordNormalizer,
    ae.ContinualBackprop,
    ae.ReDo,
    td.RewardRate,
    ae.DriftingTargetStream,
    ae.AbruptChangeStream,
    ae.SuttonExperiment1Stream,
    ae.CyclicStream,
    ae.PeriodicChangeStream,
    ae.NonlinearTeacherStream,
    ae.BitFlipStream,
    ae.InputPermutedStream,
    ae.LabelPermutedStream,
    ae.RandomWalkChainStream,
    ae.BairdStream,
    ae.ScaledStreamWrapper,
    ae.DynamicScaleShiftStream,
    ae.ScaleDriftStream,
    ae.ContinuingCatch,
    ae.ContinuingRandomWalk,
    ae.AccessControl,
    ae.MountainCar,
    ae.OperantConditioning,
    control.StreamAC,
    control.StreamQ,
    control.StreamingWrapper,
    control.EpsilonGreedy,
    control.Softmax,
    control.FixedPolicy,
    streams.TileCoder,
    nn.MLP,
    nn.MinAtarNetwork,
    loggers.TensorBoardLogger,
    ae.Checkpoint,
]
# The examples that need an optional package (an extra that `dev` installs).
NEEDS = {"TensorBoardLogger": "tensorboardX", "BraxEnvironment": "brax"}


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
    missing = [
        obj.__name__
        for obj in MAIN + DOCUMENTED
        if not doc_blocks.python_blocks(obj.__doc__ or "")
    ]
    assert not missing, f"no ```python example in the docstrings of {missing}"


def test_every_example_runs_in_a_test():
    """An example outside `MAIN` and `DOCUMENTED` would run in no test."""
    listed = {obj.__name__ for obj in MAIN + DOCUMENTED}
    unlisted = sorted({name for name, _ in _examples()} - listed)
    assert not unlisted, f"add {unlisted} to DOCUMENTED, so that their examples run"


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


def _examples_of(names):
    return [
        (obj.__name__, source)
        for obj in MAIN + DOCUMENTED
        if obj.__name__ in names
        for _, source in doc_blocks.python_blocks(inspect.getdoc(obj) or "")
    ]


@pytest.mark.slow
def test_docstring_examples_run(tmp_path, monkeypatch):
    quick = {obj.__name__ for obj in MAIN} - SLOW
    examples = _examples_of(quick)
    assert {name for name, _ in examples} == quick
    _run(examples, tmp_path, monkeypatch)


# One slow test per class: each compiles its own programs.
_SLOW_NAMES = sorted(SLOW | {obj.__name__ for obj in DOCUMENTED})


@pytest.mark.slow
@pytest.mark.parametrize("name", _SLOW_NAMES)
def test_the_other_docstring_examples(name, tmp_path, monkeypatch):
    if name in NEEDS:
        pytest.importorskip(NEEDS[name], reason=f"{name}'s example needs {NEEDS[name]}")
    examples = _examples_of({name})
    assert {n for n, _ in examples} == {name}
    _run(examples, tmp_path, monkeypatch)
