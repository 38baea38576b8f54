"""Unit resets (`alberta_eqx.nonlinear.reset_units`): after a reset the reset weights'
optimizer state and traces are at their initial values and nothing else changed, for
every step-size rule; ReDo's choice of units against a float64 NumPy transcription."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Bool, Int, PRNGKeyArray

import alberta_eqx.optax as aeo
from alberta_eqx import ClassifierLearner, MLPLearner, ReDo, TDMLPLearner, TDTimeStep
from alberta_eqx.nn import MLP
from alberta_eqx.nonlinear import AbstractUnitReset, reset_where
from tests._reference.plasticity_resets import redo_masks

KEY = jax.random.key(0)


class _ResetAt(AbstractUnitReset):
    """A test rule: resets the units `chosen` (one layer of 4) at step `at` only."""

    chosen: Bool[Array, " 4"]
    at: Int[Array, ""]
    count: Int[Array, ""]
    key: PRNGKeyArray | None

    def __init__(self, chosen, at):
        self.chosen, self.at = jnp.asarray(chosen), jnp.asarray(at)
        self.count, self.key = jnp.zeros((), jnp.int32), None

    def init(self, hidden_sizes, key, dtype=None):
        return eqx.tree_at(lambda r: r.key, self, key, is_leaf=lambda x: x is None)

    def select(self, hidden, outgoing):
        count = self.count + 1
        return eqx.tree_at(lambda r: r.count, self, count), (self.chosen & (count == self.at),)


OPTIMIZERS = {
    "lms": lambda: aeo.lms(0.1),
    "autostep": lambda: aeo.autostep(0.05),
    "idbd": lambda: aeo.idbd(0.05, meta_step_size=0.1),
    "obgd": lambda: aeo.obgd(1.0, kappa=2.0),
    "adaptive_obgd": lambda: aeo.adaptive_obgd(0.5, kappa=2.0),
}
CHOSEN = np.array([True, False, True, False])
STEPS = 4


@pytest.fixture(scope="module")
def runs():
    """Per optimizer: TD(lambda) learners (raveled parameters, so that every
    per-parameter piece of state is a vector) after STEPS transitions, the reset firing
    at the last step or never, and the optimizer's state for the reset network."""
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(STEPS + 1, 3)), jnp.float32)
    steps = TDTimeStep(
        x[:-1],
        jnp.asarray(rng.normal(size=STEPS), jnp.float32),
        jnp.full(STEPS, 0.9, jnp.float32),
        x[1:],
    )
    results = {}
    for name, make in OPTIMIZERS.items():

        def run(at, make=make):
            learner = TDMLPLearner(
                MLP(3, "scalar", (4,), key=KEY),
                make(),
                lambda_=0.8,
                flatten=True,
                unit_reset=_ResetAt(CHOSEN, at),
                key=KEY,
            )
            learner, _ = jax.lax.scan(lambda lr, t: (lr.learn(t)[0], None), learner, steps)
            return learner

        both = eqx.filter_jit(eqx.filter_vmap(run))(jnp.array([STEPS, STEPS + 1]))
        reset, kept = (jax.tree.map(lambda a, i=i: a[i], both) for i in (0, 1))
        params = ravel_pytree(eqx.filter(reset.model, eqx.is_inexact_array))[0]
        results[name] = (reset, kept, make().init(params))
    return results


def _masks():
    """The parameters a reset of CHOSEN changes, raveled: the chosen rows of the first
    layer's weight and bias, the chosen columns of the output layer's weight."""
    w1 = np.repeat(CHOSEN[:, None], 3, axis=1)
    w2 = CHOSEN[None, :]
    return w1, CHOSEN, w2, np.zeros(1, bool)


@pytest.mark.slow  # five optimizers compiled: ~15 s of CPU
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_reset_puts_state_and_traces_back_and_nothing_else(runs, name):
    reset, kept, fresh = runs[name]
    w1, b1, w2, b2 = _masks()
    mask = np.concatenate([a.ravel() for a in (w1, b1, w2, b2)])
    flat = lambda m: ravel_pytree(eqx.filter(m, eqx.is_inexact_array))[0]  # noqa: E731
    new, old = np.asarray(flat(reset.model)), np.asarray(flat(kept.model))
    np.testing.assert_array_equal(new[~mask], old[~mask])
    layers = reset.model.layers
    np.testing.assert_array_equal(np.asarray(layers[1].weight)[w2], 0)  # outgoing zeroed
    incoming = np.asarray(layers[0].weight)[w1]
    assert np.all(incoming != np.asarray(kept.model.layers[0].weight)[w1])  # re-drawn
    assert np.all(np.abs(incoming) <= 1 / np.sqrt(3))  # ... from Equinox's init
    # Every per-parameter piece of optimizer state: the initial value at the reset
    # weights, untouched elsewhere; everything else (counts, scalars) untouched.
    size = mask.size
    checked = 0
    for s_new, s_old, s_init in zip(
        jax.tree.leaves(reset.opt_state),
        jax.tree.leaves(kept.opt_state),
        jax.tree.leaves(fresh),
        strict=True,
    ):
        s_new, s_old, s_init = map(np.asarray, (s_new, s_old, s_init))
        if s_new.shape == (size,):
            np.testing.assert_array_equal(s_new[mask], s_init[mask])
            np.testing.assert_array_equal(s_new[~mask], s_old[~mask])
            checked += int(np.any(s_old[mask] != s_init[mask]))  # the reset mattered
        else:
            np.testing.assert_array_equal(s_new, s_old)
    if name != "lms":  # LMS keeps no per-parameter state
        assert checked > 0
    # The eligibility traces: 0 at the reset weights, untouched elsewhere.
    e_new, e_old = (
        np.asarray(ravel_pytree(reset.traces)[0]),
        np.asarray(ravel_pytree(kept.traces)[0]),
    )
    np.testing.assert_array_equal(e_new[mask], 0)
    np.testing.assert_array_equal(e_new[~mask], e_old[~mask])
    assert np.all(e_old[mask] != 0)


def test_redo_selects_the_transcriptions_units(x64):
    rng = np.random.default_rng(1)
    steps, n, tau, period = 30, 6, 0.4, 5
    hidden = np.abs(rng.normal(size=(steps, n))) * np.array([1, 1, 0.05, 1, 0.3, 0])
    hidden[10:15] = 0  # a period in which every unit is silent: all dormant
    redo = ReDo(tau, period).init((n,), KEY, jnp.float64)

    def step(redo, h):
        redo, masks = redo.select((h,), (jnp.zeros((1, n)),))
        return redo, masks[0]

    _, masks = jax.lax.scan(step, redo, jnp.asarray(hidden))
    expected = redo_masks(hidden, tau, period)
    assert expected.sum() > 6 and not expected.all()
    np.testing.assert_array_equal(masks, expected)


def test_redo_revives_a_dead_unit_of_a_classifier():
    model = MLP(2, 3, (4,), key=KEY, activation=jax.nn.relu, layer_norm=False)
    dead = eqx.tree_at(  # unit 0: no input reaches it, its bias keeps it silent
        lambda m: (m.layers[0].weight, m.layers[0].bias),
        model,
        (model.layers[0].weight.at[0].set(0.0), model.layers[0].bias.at[0].set(-1.0)),
    )
    learner = ClassifierLearner(dead, optax.sgd(0.1), unit_reset=ReDo(0.0, 3), key=KEY)
    xs = jnp.asarray(np.random.default_rng(2).normal(size=(3, 2)), jnp.float32)
    learner, _ = jax.lax.scan(lambda lr, x: (lr.update(x, 1.0)[0], None), learner, xs)
    assert np.all(np.asarray(learner.model.layers[0].weight[0]) != 0)  # re-drawn
    np.testing.assert_array_equal(learner.model.layers[1].weight[:, 0], 0)


def test_unit_reset_arguments_are_checked():
    with pytest.raises(TypeError, match="unit_reset"):
        MLPLearner(MLP(2, "scalar", (3,), key=KEY), aeo.lms(0.1), unit_reset=3, key=KEY)
    with pytest.raises(TypeError, match="unit_reset needs model to be an alberta_eqx"):
        MLPLearner(
            eqx.nn.MLP(2, "scalar", 3, 1, key=KEY), aeo.lms(0.1), unit_reset=ReDo(), key=KEY
        )
    with pytest.raises(ValueError, match="unit_reset draws new units: pass key="):
        MLPLearner(MLP(2, "scalar", (3,), key=KEY), aeo.lms(0.1), unit_reset=ReDo())
    with pytest.raises(ValueError, match="period"):
        ReDo(0.1, 0)
    with pytest.raises(ValueError, match="tau"):
        ReDo(-0.1)


def test_reset_where_reaches_into_a_partitioned_state():
    """With `head_optimizer` the state is an `optax.partition`, whose parts hold
    `optax.MaskedNode` where a parameter is not theirs: both parts are reset."""
    learner = MLPLearner(
        MLP(3, "scalar", (4,), key=KEY), aeo.autostep(0.05), head_optimizer=aeo.idbd(0.02)
    )
    params = eqx.filter(learner.model, eqx.is_inexact_array)
    fresh = learner.opt_state
    moved = jax.tree.map(lambda a: a + 1 if jnp.issubdtype(a.dtype, jnp.floating) else a, fresh)
    mask = jax.tree.map(lambda p: jnp.zeros(p.shape, bool), params)
    mask = eqx.tree_at(
        lambda m: (m.layers[0].bias, m.layers[1].bias),
        mask,
        (jnp.array([True, False, False, False]), jnp.array(True)),
    )
    new = reset_where(moved, fresh, params, mask)
    is_rule = lambda s: isinstance(s, aeo.AutostepState | aeo.IDBDState)  # noqa: E731

    def rules(state):  # the trunk's Autostep state and the head's IDBD state
        found = {type(s): s for s in jax.tree.leaves(state, is_leaf=is_rule) if is_rule(s)}
        return found[aeo.AutostepState], found[aeo.IDBDState]

    (trunk, head), (trunk0, head0) = rules(new), rules(fresh)
    bias0 = np.asarray(trunk0.step_size.layers[0].bias)
    np.testing.assert_array_equal(
        trunk.step_size.layers[0].bias, np.where(mask.layers[0].bias, bias0, bias0 + 1)
    )
    np.testing.assert_array_equal(
        head.log_step_size.layers[1].bias, head0.log_step_size.layers[1].bias
    )
    np.testing.assert_array_equal(
        head.log_step_size.layers[1].weight, head0.log_step_size.layers[1].weight + 1
    )
