"""ObGD, AdaptiveObGD, trace-SGD, the ObGD bound and AGC, step by step against the
float64 transcriptions in `tests/_reference/obgd.py`."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import alberta_eqx.optax as aeo
from tests._reference import obgd as ref

STEPS = 300


def _episodes(seed, n=4, steps=STEPS, gamma=0.9, scale=0.3, end_probability=0.08):
    """A trajectory of `steps` transitions with random features (the last one the
    constant 1 of a bias), random rewards and random episode ends."""
    rng = np.random.default_rng(seed)
    states = np.concatenate(
        [scale * rng.normal(size=(steps + 1, n - 1)), np.ones((steps + 1, 1))], 1
    )
    ends = rng.random(steps) < end_probability
    ends[steps // 2] = True  # at least one
    discounts = np.where(ends, 0.0, gamma)
    rewards = rng.normal(size=steps)
    return states[:-1], rewards, discounts, states[1:]


def _run_optax(tx, data, w0, lam):
    """Drive an optax ObGD-like transformation on a linear value function
    `v = w . x` (params `(w,)`), passing the error, the prediction gradient and the
    trace decay `gamma_prev lambda` (0 after an episode's end), as the learners do."""
    xs, rewards, discounts, xs_next = (jnp.asarray(a) for a in data)

    @jax.jit
    def step(carry, transition):
        w, state, gamma_prev = carry
        x, r, gamma, x_next = transition
        delta = r + gamma * jnp.where(gamma == 0, 0.0, w @ x_next) - w @ x
        grads = (-delta * x,)
        updates, state = tx.update(
            grads, state, (w,), error=delta, prediction_gradient=(x,), trace_decay=gamma_prev * lam
        )
        return (w + updates[0], state, gamma), w + updates[0]

    w = jnp.asarray(w0)
    carry = (w, tx.init((w,)), jnp.zeros(()))
    _, ws = jax.lax.scan(step, carry, (xs, rewards, discounts, xs_next))
    return np.asarray(ws)


@pytest.mark.parametrize("lam", [0.0, 0.8])
@pytest.mark.parametrize("alpha", [1.0, 0.2], ids=["alpha1", "alpha0.2"])
def test_obgd_follows_the_paper_step_by_step(lam, alpha):
    with jax.enable_x64(True):
        data = _episodes(0)
        w0 = np.array([0.3, -0.2, 0.1, 0.5])
        expected = ref.obgd(*data, w0, alpha=alpha, kappa=2.0, gamma=0.9, lam=lam)
        got = _run_optax(aeo.obgd(alpha, kappa=2.0), data, w0, lam)
        np.testing.assert_allclose(got, np.array([w for w, _ in expected]), rtol=1e-10, atol=1e-12)
        bound = np.array([s < alpha for _, s in expected])
        if alpha == 1.0:
            assert bound.all()
        else:  # both branches of max(M, 1) happen
            assert 0 < bound.mean() < 1, bound.mean()
        # ObGD is trace-SGD followed by the bound
        chained = _run_optax(optax.chain(aeo.trace_sgd(alpha), aeo.obgd_bound(2.0)), data, w0, lam)
        np.testing.assert_allclose(chained, got, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("lam", [0.0, 0.8])
def test_adaptive_obgd_follows_the_paper_step_by_step(lam):
    with jax.enable_x64(True):
        data = _episodes(1)
        w0 = np.array([0.3, -0.2, 0.1, 0.5])
        expected = ref.adaptive_obgd(
            *data, w0, alpha=1.0, kappa=2.0, gamma=0.9, lam=lam, beta2=0.99, eps=1e-8
        )
        got = _run_optax(aeo.adaptive_obgd(1.0, kappa=2.0, beta2=0.99), data, w0, lam)
        np.testing.assert_allclose(got, np.array(expected), rtol=1e-9, atol=1e-12)


def test_trace_sgd_is_td_lambda():
    """Without the bound, the same trajectory is plain TD(lambda): compare with
    kappa so small that the bound never binds."""
    with jax.enable_x64(True):
        data = _episodes(2)
        w0 = np.zeros(4)
        expected = ref.obgd(*data, w0, alpha=0.01, kappa=1e-9, gamma=0.9, lam=0.7)
        assert all(s == 0.01 for _, s in expected)
        got = _run_optax(aeo.trace_sgd(0.01), data, w0, 0.7)
        np.testing.assert_allclose(got, np.array([w for w, _ in expected]), rtol=1e-10)


@pytest.mark.parametrize(
    "inner",
    [
        aeo.lms(0.5),
        aeo.idbd(meta_step_size=0.1, initial_step_size=0.3),
        aeo.autostep(meta_step_size=0.01, initial_step_size=0.5),
        optax.adam(0.3),
    ],
    ids=["lms", "idbd", "autostep", "adam"],
)
def test_the_bound_composes_after_any_rule(inner):
    """chain(rule, obgd_bound) gives the rule's own update scaled as the paper's bound
    says (computed in NumPy from the rule's update), and leaves the rule's state as
    it would be alone."""
    with jax.enable_x64(True):
        rng = np.random.default_rng(3)
        params = {"a": jnp.asarray(rng.normal(size=(3, 2))), "b": jnp.asarray(rng.normal(size=2))}
        tx = optax.chain(inner, aeo.obgd_bound(2.0))
        state, alone = tx.init(params), inner.init(params)
        inner_update, tx_update = jax.jit(inner.update), jax.jit(tx.update)
        scales = []
        for _ in range(40):
            z = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape)), params)
            delta = float(rng.normal() * 2)
            g = jax.tree.map(lambda z, d=delta: -d * z, z)
            c = jax.tree.map(jnp.square, z)
            u, alone = inner_update(g, alone, params, curvature=c)
            bounded, state = tx_update(g, state, params, curvature=c, error=delta)
            expected = ref.bound([u["a"], u["b"]], delta, 2.0)
            np.testing.assert_allclose(bounded["a"], expected[0], rtol=1e-12)
            np.testing.assert_allclose(bounded["b"], expected[1], rtol=1e-12)
            scales.append(float(jnp.sum(jnp.abs(bounded["a"])) / jnp.sum(jnp.abs(u["a"]))))
        assert min(scales) < 1  # the bound did bind
        for a, b in zip(jax.tree.leaves(state[0]), jax.tree.leaves(alone), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12)


def test_the_bound_at_zero_error():
    tx = aeo.obgd_bound(2.0)
    u = {"w": jnp.array([0.5, -1.0])}
    out, _ = tx.update(u, tx.init(u), error=jnp.asarray(0.0))
    np.testing.assert_array_equal(out["w"], 0.0)  # a nonzero update at delta = 0 vanishes
    zero = {"w": jnp.zeros(2)}
    out, _ = tx.update(zero, tx.init(zero), error=0.0)
    np.testing.assert_array_equal(out["w"], 0.0)
    # |delta| = 0.25: ||u||_1 capped at 0.25 / 2
    out, _ = tx.update(u, tx.init(u), error=-0.25)
    np.testing.assert_allclose(jnp.sum(jnp.abs(out["w"])), 0.125, rtol=1e-6)
    np.testing.assert_allclose(out["w"] / u["w"], 0.125 / 1.5, rtol=1e-6)


def test_supervised_obgd_is_minus_alpha_eff_g():
    """With trace_decay = 0 the update is -alpha_eff g, g the loss gradient -delta z."""
    tx = aeo.obgd(0.5, kappa=2.0)
    params = (jnp.zeros(3),)
    z = (jnp.array([0.2, -0.1, 1.0]),)
    delta = 3.0
    g = (-delta * z[0],)
    updates, state = tx.update(g, tx.init(params), params, error=delta, prediction_gradient=z)
    alpha_eff = 0.5 / max(0.5 * 2.0 * 3.0 * 1.3, 1)
    np.testing.assert_allclose(updates[0], -alpha_eff * g[0], rtol=1e-6)
    np.testing.assert_allclose(state.trace[0], z[0])


def test_agc_clips_output_units_of_equinox_layers():
    linear = eqx.nn.Linear(3, 2, key=jax.random.key(0))
    params = eqx.filter(linear, eqx.is_array)
    updates = jax.tree.map(lambda p: 10 * jnp.ones_like(p), params)
    tx = aeo.agc(clipping=0.1, eps=1e-3)
    out, _ = tx.update(updates, tx.init(params), params)
    # each row (output unit) of the weight: ||G_i|| = 0.1 max(||W_i||, eps)
    np.testing.assert_allclose(
        jnp.linalg.norm(out.weight, axis=1),
        0.1 * jnp.linalg.norm(params.weight, axis=1),
        rtol=1e-5,
    )
    # the bias is one unit
    np.testing.assert_allclose(
        jnp.linalg.norm(out.bias), 0.1 * jnp.linalg.norm(params.bias), rtol=1e-5
    )
    small = jax.tree.map(lambda p: 1e-6 * jnp.ones_like(p), params)
    out, _ = tx.update(small, tx.init(params), params)
    np.testing.assert_array_equal(out.weight, small.weight)  # under the limit: untouched


def test_bad_arguments():
    with pytest.raises(ValueError, match="kappa must be > 0"):
        aeo.obgd(1.0, kappa=0.0)
    with pytest.raises(ValueError, match="kappa must be > 0"):
        aeo.obgd_bound(-1.0)
    with pytest.raises(ValueError, match="step_size must be > 0"):
        aeo.adaptive_obgd(0.0)
    with pytest.raises(ValueError, match=r"beta2 must be in \[0, 1\)"):
        aeo.adaptive_obgd(beta2=1.0)
    with pytest.raises(ValueError, match="clipping must be > 0"):
        aeo.agc(clipping=0.0)
    tx = aeo.obgd()
    params = (jnp.zeros(2),)
    with pytest.raises(ValueError, match="needs the keyword arguments error"):
        tx.update(params, tx.init(params), params)
    with pytest.raises(ValueError, match="prediction_gradient must be a pytree"):
        tx.update(params, tx.init(params), params, error=1.0, prediction_gradient=jnp.zeros(2))
    with pytest.raises(ValueError, match="needs the keyword argument error"):
        aeo.obgd_bound().update(params, optax.EmptyState())
    with pytest.raises(ValueError, match="agc needs params"):
        aeo.agc().update(params, optax.EmptyState())


# Learner-side optimizers, in a LinearLearner (supervised: no trace).


def _linear_run(optimizer, xs, ys):
    from alberta_eqx import LinearLearner, TimeStep, run_learning_loop  # noqa: F401

    learner = LinearLearner(xs.shape[1], optimizer, dtype=jnp.float64)

    def body(learner, xy):
        learner, result = learner.update(*xy)
        return learner, (learner.weights, learner.bias, result.metrics.mean_step_size)

    _, (w, b, alpha) = jax.lax.scan(body, learner, (jnp.asarray(xs), jnp.asarray(ys)))
    return np.concatenate([np.asarray(w), np.asarray(b)[:, None]], 1), np.asarray(alpha)


def _supervised(seed, n=3, steps=STEPS):
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(steps, n))
    ys = xs @ rng.normal(size=n) + 0.5 + 0.3 * rng.normal(size=steps)
    return xs, ys


def test_linear_learner_with_obgd_follows_the_paper():
    from alberta_eqx import ObGD, ObGDBounding
    from alberta_eqx.optimizers import LMS

    with jax.enable_x64(True):
        xs, ys = _supervised(4)
        with_bias = np.concatenate([xs, np.ones((len(xs), 1))], 1)
        expected = ref.obgd(
            with_bias, ys, np.zeros(len(ys)), with_bias, np.zeros(4), 0.3, 2.0, 0.0, 0.0
        )
        got, alpha = _linear_run(ObGD(0.3, kappa=2.0), xs, ys)
        np.testing.assert_allclose(got, np.array([w for w, _ in expected]), rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(alpha, [s for _, s in expected], rtol=1e-10)
        assert 0 < np.mean(alpha < 0.3) < 1
        bounded, _ = _linear_run(ObGDBounding(LMS(0.3), kappa=2.0), xs, ys)
        np.testing.assert_allclose(bounded, got, rtol=1e-12, atol=1e-14)


def test_linear_learner_with_adaptive_obgd_follows_the_paper():
    from alberta_eqx import AdaptiveObGD

    with jax.enable_x64(True):
        xs, ys = _supervised(5)
        with_bias = np.concatenate([xs, np.ones((len(xs), 1))], 1)
        zeros = np.zeros(len(ys))
        expected = ref.adaptive_obgd(
            with_bias, ys, zeros, with_bias, np.zeros(4), 1.0, 2.0, 0.0, 0.0, 0.99, 1e-8
        )
        got, _ = _linear_run(AdaptiveObGD(1.0, kappa=2.0, beta2=0.99), xs, ys)
        np.testing.assert_allclose(got, np.array(expected), rtol=1e-9, atol=1e-12)


def test_a_user_optimizer_reading_only_the_gradient_works():
    """The learners call `step(gradient, curvature, ...)` with every keyword argument;
    a user's rule that reads only the gradient takes the rest as `**rest`."""
    from alberta_eqx import LinearLearner
    from alberta_eqx.optimizers import AbstractOptimizer

    class Half(AbstractOptimizer):
        def init(self, params):
            return self

        def step(self, gradient, curvature, **rest):
            return jax.tree.map(lambda g: -0.5 * g, gradient), self

        def step_sizes(self, params):
            return jax.tree.map(lambda p: jnp.full_like(p, 0.5), params)

        @property
        def step_size_normalizer(self):
            return None

    learner, _ = LinearLearner(2, Half()).update(jnp.array([1.0, 2.0]), 3.0)
    np.testing.assert_allclose(learner.weights, [1.5, 3.0])
    np.testing.assert_allclose(learner.bias, 1.5)


def test_learner_side_bad_arguments():
    from alberta_eqx import AdaptiveObGD, ObGD, ObGDBounding

    with pytest.raises(ValueError, match="kappa must be > 0"):
        ObGD(kappa=-2.0)
    with pytest.raises(ValueError, match=r"beta2 must be in \[0, 1\)"):
        AdaptiveObGD(beta2=-0.1)
    with pytest.raises(TypeError, match="optimizer"):
        ObGDBounding(aeo.lms(0.1))
    params = (jnp.zeros(2),)
    with pytest.raises(ValueError, match="needs the error and the prediction gradient"):
        ObGD().init(params).step(params, params)


def test_obgd_in_a_td_learner_is_stream_td_lambda():
    """One optimizer hierarchy: `ObGD` in a `TDLinearLearner` keeps its own trace with
    the learner's decay `gamma_prev lambda`, which is ObGD TD(lambda) (Elsayed et al.
    2024, Algorithm 3) step by step."""
    from alberta_eqx import ObGD, TDLinearLearner
    from alberta_eqx.streams import TDTimeStep

    with jax.enable_x64(True):
        data = _episodes(3)
        expected = ref.obgd(*data, np.zeros(4), alpha=0.2, kappa=2.0, gamma=0.9, lam=0.7)
        learner = TDLinearLearner(4, ObGD(0.2, kappa=2.0), 0.7, False, dtype=jnp.float64)

        def step(learner, timestep):
            learner, _ = learner.learn(timestep)
            return learner, (learner.weights, learner.optimizer.effective_step_size)

        _, (ws, alphas) = jax.lax.scan(step, learner, TDTimeStep(*map(jnp.asarray, data)))
    np.testing.assert_allclose(ws, np.array([w for w, _ in expected]), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(alphas, [s for _, s in expected], rtol=1e-10)
    assert 0 < np.mean(np.asarray(alphas) < 0.2) < 1  # both branches of max(M, 1)
