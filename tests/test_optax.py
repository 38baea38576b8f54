"""The optax transformations: the same rules as the linear optimizers, composable."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import alberta_eqx.optax as aeo
from alberta_eqx import IDBD, Autostep, LinearLearner


def _data(steps=300, n=5, seed=0):
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(steps, n)) * rng.uniform(0.3, 2.0, size=n)
    ys = xs @ rng.normal(size=n) + 0.3 * rng.normal(size=steps)
    ys[steps // 2 :] *= -1
    return jnp.asarray(xs, jnp.float32), jnp.asarray(ys, jnp.float32)


def _train(tx, xs, ys, curvature=True):
    """Linear least squares with `tx`: params (w, b), z = (x, 1)."""
    params = (jnp.zeros(xs.shape[1]), jnp.zeros(()))

    def step(carry, xy):
        params, state = carry
        x, y = xy
        delta = y - (params[0] @ x + params[1])
        grads = (-delta * x, -delta)
        extra = {"curvature": (x * x, jnp.ones(()))} if curvature else {}
        updates, state = tx.update(grads, state, params, **extra)
        params = optax.apply_updates(params, updates)
        return (params, state), (params, state)

    return jax.lax.scan(step, (params, tx.init(params)), (xs, ys))[1]


@pytest.mark.parametrize(
    ("tx", "optimizer"),
    [
        (aeo.idbd(meta_step_size=0.02, initial_step_size=0.03), IDBD(0.03, 0.02)),
        (aeo.autostep(meta_step_size=0.02, initial_step_size=0.05), Autostep(0.05, 0.02)),
    ],
)
def test_equals_linear_learner_at_every_step(tx, optimizer):
    xs, ys = _data()
    params, states = _train(tx, xs, ys)

    def step(learner, xy):
        learner, _ = learner.update(*xy)
        return learner, (learner.weights, learner.bias, learner.step_sizes, learner.bias_step_size)

    _, (w, b, alpha, bias_alpha) = jax.lax.scan(step, LinearLearner(5, optimizer), (xs, ys))
    np.testing.assert_allclose(params[0], w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(params[1], b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(states.step_size[0], alpha, rtol=1e-5)
    np.testing.assert_allclose(states.step_size[1], bias_alpha, rtol=1e-5)
    assert np.ptp(np.asarray(alpha)) > 1e-3  # the step-sizes did adapt


@pytest.mark.parametrize(
    "make", [lambda: aeo.idbd(0.02), lambda: aeo.autostep(), lambda: aeo.lms(0.01)]
)
def test_chain_with_identity_equals_alone(make):
    xs, ys = _data(steps=100)
    alone, _ = _train(make(), xs, ys)
    chained, _ = _train(optax.chain(optax.identity(), make()), xs, ys)
    np.testing.assert_allclose(chained[0], alone[0], rtol=1e-6, atol=1e-7)
    clipped, _ = _train(optax.chain(optax.clip_by_global_norm(1.0), make()), xs, ys)
    assert np.all(np.isfinite(clipped[0]))
    assert not np.allclose(clipped[0], alone[0])  # clipping did something


def test_without_curvature_uses_squared_gradient():
    xs, ys = _data(steps=100)
    tx = aeo.autostep(initial_step_size=0.05)
    implicit, _ = _train(tx, xs, ys, curvature=False)

    params = (jnp.zeros(5), jnp.zeros(()))
    state = tx.init(params)
    for x, y in zip(xs, ys, strict=True):
        delta = y - (params[0] @ x + params[1])
        grads = (-delta * x, -delta)
        updates, state = tx.update(grads, state, params, curvature=jax.tree.map(jnp.square, grads))
        params = optax.apply_updates(params, updates)
    np.testing.assert_allclose(implicit[0][-1], params[0], rtol=1e-4, atol=1e-6)


def test_inject_hyperparams_changes_the_next_update():
    tx = optax.inject_hyperparams(aeo.idbd)(meta_step_size=0.01, initial_step_size=0.05)
    params = jnp.zeros(3)
    state = tx.init(params)
    grads, curvature = jnp.array([0.5, -1.0, 2.0]), jnp.ones(3)
    _, state = tx.update(grads, state, params, curvature=curvature)  # builds a trace
    same, _ = tx.update(grads, state, params, curvature=curvature)
    state.hyperparams["meta_step_size"] = jnp.asarray(0.5)
    changed, _ = tx.update(grads, state, params, curvature=curvature)
    assert not np.allclose(same, changed)
    reference = aeo.idbd(0.5, 0.05)
    expected, _ = reference.update(grads, state.inner_state, params, curvature=curvature)
    np.testing.assert_allclose(changed, expected, rtol=1e-6)


def test_jit_vmap_and_filtered_mlp_params():
    mlp = eqx.nn.MLP(3, "scalar", 8, 2, key=jax.random.key(0))
    params = eqx.filter(mlp, eqx.is_inexact_array)
    tx = aeo.autostep()
    state = tx.init(params)
    grads = jax.tree.map(jnp.ones_like, params)
    updates, state = eqx.filter_jit(tx.update)(grads, state, params, curvature=grads)
    assert jax.tree.structure(updates) == jax.tree.structure(params)
    # vmap over a batch of independent parameter vectors
    batched = jax.vmap(lambda g: tx.update(g, tx.init(g), g, curvature=g * g)[0])(jnp.ones((4, 3)))
    assert batched.shape == (4, 3)


def test_bad_hyperparameters_and_curvature():
    with pytest.raises(ValueError, match="meta_step_size"):
        aeo.idbd(-1.0)
    with pytest.raises(ValueError, match="tau"):
        aeo.autostep(tau=0.0)
    tx = aeo.idbd(0.01)
    state = tx.init((jnp.zeros(2), jnp.zeros(())))
    with pytest.raises(ValueError, match="curvature"):
        tx.update((jnp.ones(2), jnp.ones(())), state, curvature=jnp.ones(2))
