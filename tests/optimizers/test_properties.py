"""Property-based tests (hypothesis) of the algorithms' invariances, over random shapes,
hyperparameters and data. The number of examples is fixed and small, so CI is bounded."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alberta_eqx import (
    IDBD,
    LMS,
    Autostep,
    LinearLearner,
    SuttonExperiment1Stream,
    run_learning_loop,
)

SETTINGS = settings(max_examples=12, deadline=None, derandomize=True)


@st.composite
def problems(draw):
    n = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**16))
    steps = draw(st.integers(20, 80))
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(steps, n)) * rng.uniform(0.2, 2.0, size=n)
    ys = xs @ rng.normal(size=n) + 0.2 * rng.normal(size=steps)
    ys[steps // 2 :] *= -1
    return jnp.asarray(xs, jnp.float32), jnp.asarray(ys, jnp.float32)


def _trajectory(learner, xs, ys):
    def step(learner, xy):
        learner, _ = learner.update(*xy)
        alphas = jnp.append(learner.step_sizes, learner.bias_step_size)
        return learner, (jnp.append(learner.weights, learner.bias), alphas)

    return jax.lax.scan(step, learner, (xs, ys))[1]


optimizers = st.one_of(
    st.builds(lambda a, t: IDBD(a, meta_step_size=t), st.floats(1e-3, 0.05), st.floats(0.0, 0.05)),
    st.builds(
        lambda a, m, tau: Autostep(a, meta_step_size=m, tau=tau),
        st.floats(1e-3, 0.1),
        st.floats(1e-3, 0.1),
        st.floats(10.0, 1e4),
    ),
)


@SETTINGS
@given(problems(), optimizers)
@pytest.mark.slow
def test_negated_targets_negate_weights_and_keep_step_sizes(problem, optimizer):
    xs, ys = problem
    learner = LinearLearner(xs.shape[1], optimizer)
    w, alpha = _trajectory(learner, xs, ys)
    w_neg, alpha_neg = _trajectory(learner, xs, -ys)
    np.testing.assert_allclose(w_neg, -w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(alpha_neg, alpha, rtol=1e-5)


@SETTINGS
@given(problems(), st.floats(-3.0, 3.0), st.floats(1e-3, 0.1), st.floats(1e-3, 0.1))
@pytest.mark.slow
def test_autostep_step_sizes_ignore_the_target_scale(problem, log10_c, alpha0, mu):
    xs, ys = problem
    c = 10.0**log10_c
    learner = LinearLearner(xs.shape[1], Autostep(alpha0, meta_step_size=mu))
    w, alpha = _trajectory(learner, xs, ys)
    w_c, alpha_c = _trajectory(learner, xs, c * ys)
    np.testing.assert_allclose(alpha_c, alpha, rtol=1e-3)
    np.testing.assert_allclose(w_c / c, w, rtol=1e-3, atol=1e-4 * float(np.abs(w).max()))


@SETTINGS
@given(problems(), st.floats(1e-3, 0.05))
@pytest.mark.slow
def test_idbd_without_meta_learning_is_lms(problem, alpha):
    xs, ys = problem
    w_idbd, a_idbd = _trajectory(
        LinearLearner(xs.shape[1], IDBD(alpha, meta_step_size=0.0)), xs, ys
    )
    w_lms, a_lms = _trajectory(LinearLearner(xs.shape[1], LMS(alpha)), xs, ys)
    np.testing.assert_allclose(a_idbd, a_lms, rtol=1e-6)
    np.testing.assert_allclose(w_idbd, w_lms, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_float64_end_to_end():
    with jax.enable_x64(True):
        learner = LinearLearner(20, Autostep(0.005), dtype=jnp.float64)
        assert learner.optimizer.meta_step_size.dtype == jnp.float64
        result = run_learning_loop(learner, SuttonExperiment1Stream(), 500, jax.random.key(0))
        leaves = [x for x in jax.tree.leaves(result) if hasattr(x, "dtype")]
        floats = [x for x in leaves if jnp.issubdtype(x.dtype, jnp.floating)]
        assert floats and all(x.dtype == jnp.float64 for x in floats)
