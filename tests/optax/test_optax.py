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
    """Inputs of mixed scales, a noisy linear target whose sign flips halfway."""
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(steps, n)) * rng.uniform(0.3, 2.0, size=n)
    ys = xs @ rng.normal(size=n) + 1.0 + 0.3 * rng.normal(size=steps)
    ys[steps // 2 :] *= -1
    return jnp.asarray(xs, jnp.float32), jnp.asarray(ys, jnp.float32)


def _train(tx, xs, ys, curvature="z2"):
    """Linear least squares with `tx` over params (w, b), so z = (x, 1). `curvature`:
    "z2" passes z**2, "g2" passes g**2 explicitly, None passes nothing. Returns the
    params and the optimizer state after every step."""
    params = (jnp.zeros(xs.shape[1]), jnp.zeros(()))

    def step(carry, xy):
        params, state = carry
        x, y = xy
        delta = y - (params[0] @ x + params[1])
        grads = (-delta * x, -delta)
        extra = {
            "z2": {"curvature": (x * x, jnp.ones(()))},
            "g2": {"curvature": jax.tree.map(jnp.square, grads)},
            None: {},
        }[curvature]
        updates, state = tx.update(grads, state, params, **extra)
        params = optax.apply_updates(params, updates)
        return (params, state), (params, state)

    return jax.lax.scan(step, (params, tx.init(params)), (xs, ys))[1]


@pytest.mark.parametrize(
    ("tx", "optimizer"),
    [
        (aeo.idbd(meta_step_size=0.02, initial_step_size=0.03), IDBD(0.03, meta_step_size=0.02)),
        (
            aeo.autostep(meta_step_size=0.02, initial_step_size=0.05),
            Autostep(0.05, meta_step_size=0.02),
        ),
    ],
    ids=["idbd", "autostep"],
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
    assert np.ptp(np.asarray(bias_alpha)) > 1e-4  # the bias's too


_MAKERS = {
    "idbd": lambda: aeo.idbd(meta_step_size=0.02, initial_step_size=0.03),
    "autostep": lambda: aeo.autostep(initial_step_size=0.05),
    "lms": lambda: aeo.lms(0.01),
}


@pytest.mark.parametrize("name", _MAKERS)
def test_chain_with_identity_equals_alone(name):
    make = _MAKERS[name]
    xs, ys = _data(steps=100)
    alone, _ = _train(make(), xs, ys)
    chained, _ = _train(optax.chain(optax.identity(), make()), xs, ys)
    np.testing.assert_allclose(chained[0], alone[0], rtol=1e-6, atol=1e-7)
    clipped, _ = _train(optax.chain(optax.clip_by_global_norm(1.0), make()), xs, ys)
    assert np.all(np.isfinite(clipped[0]))
    assert not np.allclose(clipped[0], alone[0])  # clipping did something


@pytest.mark.parametrize("name", ["idbd", "autostep"])
def test_without_curvature_uses_squared_gradient(name):
    xs, ys = _data(steps=100)
    implicit, _ = _train(_MAKERS[name](), xs, ys, curvature=None)
    explicit, _ = _train(_MAKERS[name](), xs, ys, curvature="g2")
    exact, _ = _train(_MAKERS[name](), xs, ys, curvature="z2")
    np.testing.assert_allclose(implicit[0], explicit[0], rtol=1e-6, atol=1e-7)
    assert not np.allclose(implicit[0], exact[0])  # and it is not the curvature z**2


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
    # the same as a transformation built with the other value, from the same state
    reference = aeo.idbd(meta_step_size=0.5, initial_step_size=0.05)
    expected, _ = reference.update(grads, state.inner_state, params, curvature=curvature)
    np.testing.assert_allclose(changed, expected, rtol=1e-6)


def test_inject_hyperparams_under_jit_in_a_chain_passes_the_curvature():
    xs, ys = _data(steps=100)
    injected = optax.chain(
        optax.identity(), optax.inject_hyperparams(aeo.autostep)(meta_step_size=0.02)
    )
    with_c, states = _train(injected, xs, ys)
    alone, _ = _train(aeo.autostep(meta_step_size=0.02), xs, ys)
    without_c, _ = _train(aeo.autostep(meta_step_size=0.02), xs, ys, curvature=None)
    np.testing.assert_allclose(with_c[0], alone[0], rtol=1e-6, atol=1e-7)
    assert not np.allclose(with_c[0], without_c[0])
    assert isinstance(states[1].inner_state, aeo.AutostepState)

    # A jitted update takes a changed hyperparameter without compiling again.
    traces = 0

    def update(grads, state, params, curvature):
        nonlocal traces
        traces += 1
        return injected.update(grads, state, params, curvature=curvature)

    update = jax.jit(update)
    params = (jnp.zeros(5), jnp.zeros(()))
    grads, curvature = (xs[0], jnp.ones(())), (xs[0] ** 2, jnp.ones(()))
    state = injected.init(params)
    _, state = update(grads, state, params, curvature)
    outputs = []
    for mu in (0.02, 0.5):
        state[1].hyperparams["meta_step_size"] = jnp.asarray(mu, jnp.float32)  # not weak
        outputs.append(update(grads, state, params, curvature)[0])
    assert traces == 1
    assert not np.allclose(outputs[0][0], outputs[1][0])


def test_masked_and_partitioned_with_mask_compatible_extra_args():
    params = {"w": jnp.zeros(3), "b": jnp.zeros(())}
    grads = {"w": jnp.array([0.5, -1.0, 2.0]), "b": jnp.asarray(-1.0)}
    curvature = {"w": jnp.array([1.0, 4.0, 0.25]), "b": jnp.ones(())}
    tx = optax.partition(
        {"ours": aeo.autostep(initial_step_size=0.1), "sgd": optax.sgd(0.1)},
        {"w": "ours", "b": "sgd"},
        mask_compatible_extra_args=True,
    )
    updates, _ = tx.update(grads, tx.init(params), params, curvature=curvature)
    alone = aeo.autostep(initial_step_size=0.1)
    expected, _ = alone.update(grads["w"], alone.init(params["w"]), curvature=curvature["w"])
    np.testing.assert_allclose(updates["w"], expected)
    np.testing.assert_allclose(updates["b"], 0.1)
    unmasked = optax.partition(
        {"ours": aeo.idbd(meta_step_size=0.01), "sgd": optax.sgd(0.1)}, {"w": "ours", "b": "sgd"}
    )
    with pytest.raises(ValueError, match="mask_compatible_extra_args"):
        unmasked.update(grads, unmasked.init(params), params, curvature=curvature)


def test_vmap_over_independent_problems_equals_one_at_a_time():
    data = [_data(steps=60, seed=s) for s in range(3)]
    xs, ys = jnp.stack([d[0] for d in data]), jnp.stack([d[1] for d in data])
    tx = aeo.autostep(initial_step_size=0.05)
    batched, _ = jax.vmap(lambda x, y: _train(tx, x, y))(xs, ys)
    for i, (x, y) in enumerate(data):
        single, _ = _train(tx, x, y)
        np.testing.assert_allclose(batched[0][i], single[0], rtol=1e-5, atol=1e-6)


@eqx.filter_jit
def _mlp_and_gradient(x):
    """A small MLP and the gradient of its output at `x`, built in one compiled program
    (op by op they compile a program per operation and shape)."""
    mlp = eqx.nn.MLP(3, "scalar", 8, 2, key=jax.random.key(0))
    params, static = eqx.partition(mlp, eqx.is_inexact_array)
    return mlp, jax.grad(lambda p: eqx.combine(p, static)(x))(params)


_forward = eqx.filter_jit(lambda model, x: model(x))


@pytest.mark.parametrize("name", ["idbd", "autostep"])
@pytest.mark.slow
def test_filtered_mlp_params_under_jit(name):
    x = jnp.array([0.3, -1.0, 2.0])
    mlp, z = _mlp_and_gradient(x)
    params, static = eqx.partition(mlp, eqx.is_inexact_array)
    tx = _MAKERS[name]()
    grads = jax.tree.map(lambda z: -2.0 * z, z)  # delta = 2
    state = tx.init(params)
    updates, state = eqx.filter_jit(tx.update)(grads, state, params, curvature=z)
    eager, _ = tx.update(grads, tx.init(params), params, curvature=z)
    assert jax.tree.structure(updates) == jax.tree.structure(params)
    assert jax.tree.structure(state.step_size) == jax.tree.structure(params)
    for a, b in zip(jax.tree.leaves(updates), jax.tree.leaves(eager), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    new = eqx.combine(optax.apply_updates(params, updates), static)
    before, after = _forward(mlp, x), _forward(new, x)
    assert before < after < before + 2.0  # towards the target mlp(x) + delta, not past it


def test_hyperparameter_dtype_follows_the_parameters():
    with jax.enable_x64(True):
        params = jnp.zeros(3, jnp.float32)
        for tx in (aeo.idbd(meta_step_size=0.01), aeo.autostep(), aeo.lms(0.1)):
            updates, state = tx.update(jnp.ones(3, jnp.float32), tx.init(params), params)
            assert updates.dtype == jnp.float32
            assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(state))


def test_bad_hyperparameters_and_curvature():
    with pytest.raises(ValueError, match="meta_step_size"):
        aeo.idbd(meta_step_size=-1.0)
    with pytest.raises(ValueError, match="initial_step_size"):
        aeo.idbd(meta_step_size=0.01, initial_step_size=0.0)
    with pytest.raises(ValueError, match="tau"):
        aeo.autostep(tau=0.0)
    with pytest.raises(ValueError, match="step_size"):
        aeo.lms(float("nan"))
    tx = aeo.idbd(meta_step_size=0.01)
    state = tx.init((jnp.zeros(2), jnp.zeros(())))
    with pytest.raises(ValueError, match="curvature"):
        tx.update((jnp.ones(2), jnp.ones(())), state, curvature=jnp.ones(2))


def test_lms_matches_the_float64_reference():
    """`alberta_eqx.optax.lms` against tests/_reference/rules.py's LMS (the bias as a weight
    whose input is 1), step by step."""
    from tests._reference import rules as reference

    xs, ys = _data(steps=200)
    params, _ = _train(aeo.lms(0.03), xs, ys)
    ones = np.ones((xs.shape[0], 1))
    expected = reference.lms(np.hstack([np.asarray(xs, np.float64), ones]), np.asarray(ys), 0.03)
    weights = np.stack([w for w, _ in expected])
    np.testing.assert_allclose(params[0], weights[:, :-1], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(params[1], weights[:, -1], rtol=1e-4, atol=1e-5)
