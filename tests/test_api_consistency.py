"""Every rule takes the same parameters, in the same order, with the same defaults, in its
module form (for the learners) and its optax form; past the first they are keyword-only,
so that a call written for one form cannot silently swap two hyperparameters."""

import inspect

import pytest

import alberta_eqx as ae
import alberta_eqx.optax as aeo

# (module form, optax form, parameters of the module form that the optax form lacks)
PAIRS = [
    (ae.LMS, aeo.lms, ()),
    (ae.IDBD, aeo.idbd, ()),
    (ae.Autostep, aeo.autostep, ()),
    (ae.ObGD, aeo.obgd, ()),
    (ae.AdaptiveObGD, aeo.adaptive_obgd, ()),
    # The bound wraps a rule as a module; as a transformation it follows one in a chain.
    (ae.ObGDBounding, aeo.obgd_bound, ("optimizer",)),
    # A TD learner takes the same modules (TD(lambda), TD-IDBD and AutoTDIDBD are
    # LMS, IDBD and Autostep given the TD error's meta-gradient): no TD forms.
]


def _parameters(f, skip=()):
    parameters = list(inspect.signature(f).parameters.values())
    if parameters and parameters[0].name == "self":
        parameters = parameters[1:]
    return [(p.name, p.default) for p in parameters if p.name not in skip]


@pytest.mark.parametrize(
    ("module", "transformation", "extra"), PAIRS, ids=[m.__name__ for m, _, _ in PAIRS]
)
def test_module_and_optax_forms_agree(module, transformation, extra):
    assert _parameters(module.__init__, extra) == _parameters(transformation)


@pytest.mark.parametrize(
    "f",
    [f for pair in PAIRS for f in pair[:2]] + [aeo.trace_sgd, aeo.agc],
    ids=lambda f: f.__name__,
)
def test_keyword_only_past_the_first(f):
    parameters = list(inspect.signature(f).parameters.values())
    if parameters[0].name == "self":
        parameters = parameters[1:]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters[1:]), [
        (p.name, p.kind) for p in parameters
    ]


def test_swapped_positional_call_is_refused():
    # 0.x wrote `idbd(meta_step_size, initial_step_size)` and `IDBD(initial, meta)`:
    # a two-positional call is now an error instead of a silent swap.
    with pytest.raises(TypeError):
        aeo.idbd(0.05, 0.01)  # type: ignore[misc]
    with pytest.raises(TypeError):
        ae.IDBD(0.05, 0.01)  # type: ignore[misc]
