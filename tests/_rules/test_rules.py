"""The supervised step-size rules (`alberta_eqx._rules`: LMS, IDBD, Autostep),
through `LinearLearner`, against independent float64 transcriptions of the published
equations (tests/_reference/rules.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from alberta_eqx import IDBD, LMS, Autostep, LinearLearner
from tests._reference import rules as reference


def _run(learner, xs, ys):
    """Weights (bias last) and step-sizes after every step, from a scan."""

    def step(learner, xy):
        learner, _ = learner.update(*xy)
        params = (
            learner.weights if learner.bias is None else jnp.append(learner.weights, learner.bias)
        )
        alphas = (
            learner.step_sizes
            if learner.bias is None
            else jnp.append(learner.step_sizes, learner.bias_step_size)
        )
        return learner, (params, alphas)

    xs = jnp.asarray(xs, jnp.float32)
    ys = jnp.asarray(ys, jnp.float32)
    _, (w, a) = jax.lax.scan(step, learner, (xs, ys))
    return np.asarray(w), np.asarray(a)


def _columns(per_leaf):
    """(steps, n) and (steps,) leaves side by side: weights first, bias last."""
    return np.hstack([np.asarray(a).reshape(a.shape[0], -1) for a in per_leaf])


def _augment(xs, use_bias):
    return np.hstack([xs, np.ones((len(xs), 1))]) if use_bias else xs


# float32 against float64 over 300 steps of a recurrence: relative agreement to ~1e-4.
RTOL, ATOL = 2e-4, 2e-5


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("seed", [0, 1])
def test_lms_matches_reference(use_bias, seed):
    xs, ys = reference.flipping_regression(seed)
    w, a = _run(LinearLearner(xs.shape[1], LMS(0.02), use_bias=use_bias), xs, ys)
    ref = reference.lms(_augment(xs, use_bias), ys, 0.02)
    np.testing.assert_allclose(w, np.stack([r[0] for r in ref]), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(a, np.stack([r[1] for r in ref]), rtol=1e-6)


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize(("seed", "alpha0", "theta"), [(0, 0.05, 0.01), (1, 0.01, 0.05)])
def test_idbd_matches_figure_2(use_bias, seed, alpha0, theta):
    xs, ys = reference.flipping_regression(seed)
    w, a = _run(
        LinearLearner(xs.shape[1], IDBD(alpha0, meta_step_size=theta), use_bias=use_bias), xs, ys
    )
    ref = reference.idbd(_augment(xs, use_bias), ys, alpha0, theta)
    ref_a = np.stack([r[1] for r in ref])
    # the step-sizes must actually have moved, or this test would prove little
    assert np.max(np.abs(np.log(ref_a[-1] / alpha0))) > 0.1
    np.testing.assert_allclose(a, ref_a, rtol=RTOL)
    np.testing.assert_allclose(w, np.stack([r[0] for r in ref]), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize(
    ("seed", "alpha0", "mu", "tau"), [(0, 0.02, 1e-2, 1e4), (1, 0.1, 0.05, 100.0)]
)
def test_autostep_matches_table_1(use_bias, seed, alpha0, mu, tau):
    xs, ys = reference.flipping_regression(seed)
    learner = LinearLearner(
        xs.shape[1], Autostep(alpha0, meta_step_size=mu, tau=tau), use_bias=use_bias
    )

    def step(learner, xy):
        learner, _ = learner.update(*xy)
        v = learner.optimizer.step_size_normalizer
        return learner, (learner.optimizer.state.step_size, v)

    _, (alphas, vs) = jax.lax.scan(
        step, learner, (jnp.asarray(xs, jnp.float32), jnp.asarray(ys, jnp.float32))
    )
    w, _ = _run(learner, xs, ys)
    ref = reference.autostep(_augment(xs, use_bias), ys, alpha0, mu, tau)
    ref_a = np.stack([r[1] for r in ref])
    assert np.max(np.abs(np.log(ref_a[-1] / alpha0))) > 0.1
    np.testing.assert_allclose(_columns(alphas), ref_a, rtol=RTOL)
    np.testing.assert_allclose(
        _columns(vs),
        np.stack([r[2] for r in ref]),
        rtol=RTOL,
        atol=1e-6,
    )
    np.testing.assert_allclose(w, np.stack([r[0] for r in ref]), rtol=RTOL, atol=ATOL)


def test_autostep_overshoot_guard_counts_the_bias():
    """With one big input the guard M binds: sum_i alpha_i x_i^2 (bias included) <= 1."""
    learner = LinearLearner(2, Autostep(initial_step_size=0.6))
    learner, _ = learner.update(jnp.array([1.0, 1.0]), jnp.array(3.0))
    total = jnp.sum(learner.step_sizes * 1.0) + learner.bias_step_size
    np.testing.assert_allclose(total, 1.0, rtol=1e-6)
    without_bias = LinearLearner(2, Autostep(initial_step_size=0.6), use_bias=False)
    without_bias, _ = without_bias.update(jnp.array([1.0, 1.0]), jnp.array(3.0))
    np.testing.assert_allclose(jnp.sum(without_bias.step_sizes), 1.0, rtol=1e-6)


def test_idbd_with_zero_meta_step_size_is_lms():
    xs, ys = reference.flipping_regression(3)
    w_idbd, a_idbd = _run(LinearLearner(xs.shape[1], IDBD(0.03, meta_step_size=0.0)), xs, ys)
    w_lms, a_lms = _run(LinearLearner(xs.shape[1], LMS(0.03)), xs, ys)
    np.testing.assert_allclose(a_idbd, a_lms, rtol=1e-6)
    np.testing.assert_allclose(w_idbd, w_lms, rtol=1e-5, atol=1e-6)
