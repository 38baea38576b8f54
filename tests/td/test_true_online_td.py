"""True Online TD(lambda): against a float64 transcription of JMLR Algorithm 1, against
TD(0) at lambda = 0, and against the online lambda-return algorithm (its forward view)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import alberta_eqx
from alberta_eqx.config import from_config, to_config
from alberta_eqx.optimizers import LMS
from alberta_eqx.runners import run_learning_loop
from alberta_eqx.streams.random_walk import RandomWalkChainStream
from alberta_eqx.td import TDLinearLearner, TDTimeStep, TrueOnlineTDLearner
from tests._reference import swifttd as reference_swifttd


def _episodes(seed, steps=300, n=5):
    """Random features and rewards, discount 0.9, episode ends (discount 0, junk in
    `next_observation`) and a few truncations."""
    rng = np.random.default_rng(seed)
    phis = rng.normal(size=(steps + 1, n))
    rewards = phis[:-1] @ rng.normal(size=n) + 0.2 * rng.normal(size=steps)
    gammas = np.where(rng.uniform(size=steps) < 0.05, 0.0, 0.9)
    truncated = (rng.uniform(size=steps) < 0.03) & (gammas != 0)
    assert (gammas == 0).any() and truncated.any()
    return phis[:-1], rewards, gammas, phis[1:], truncated


def _scan(learner, data):
    def step(learner, timestep):
        learner, result = learner.learn(timestep)
        params = learner.weights
        if learner.bias is not None:
            params = jnp.append(params, learner.bias)
        return learner, (params, result.prediction)

    *floats, truncated = data
    timesteps = TDTimeStep(*(jnp.asarray(a, jnp.float64) for a in floats), jnp.asarray(truncated))
    _, (w, v) = jax.lax.scan(step, learner, timesteps)
    return np.asarray(w), np.asarray(v)


def _augment(phis, use_bias):
    return np.hstack([phis, np.ones((len(phis), 1))]) if use_bias else phis


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("lam", [0.0, 0.9])
def test_matches_algorithm_1(use_bias, lam):
    data = _episodes(0)
    with jax.enable_x64(True):
        learner = TrueOnlineTDLearner(5, 0.05, lam, use_bias, dtype=jnp.float64)
        w, v = _scan(learner, data)
    phis, rewards, gammas, phis_next, truncated = data
    expected = reference_swifttd.true_online_td(
        _augment(phis, use_bias),
        rewards,
        gammas,
        _augment(phis_next, use_bias),
        truncated,
        0.05,
        lam,
    )
    np.testing.assert_allclose(w, np.stack([e[0] for e in expected]), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(v, [e[1] for e in expected], rtol=1e-9, atol=1e-12)


def test_lambda_zero_is_td_zero():
    data = _episodes(1)
    with jax.enable_x64(True):
        w, _ = _scan(TrueOnlineTDLearner(5, 0.05, 0.0, dtype=jnp.float64), data)
        w0, _ = _scan(TDLinearLearner(5, LMS(0.05), 0.0, dtype=jnp.float64), data)
    np.testing.assert_allclose(w, w0, rtol=1e-12, atol=1e-14)


def _online_lambda_return(phis, rewards, gamma, alpha, lam):
    """The online lambda-return algorithm (JMLR sec. 3) on one episode that ends after
    its last transition: at every horizon h the weights restart from w_0 and take h
    updates toward the interim lambda-returns G^{lambda|h}, whose n-step returns
    bootstrap with the horizon-(k+n-1) weights. Returns w_h^h for h = 1..T."""
    steps, n = phis.shape
    final = [np.zeros(n)]  # w_h^h
    for h in range(1, steps + 1):

        def n_step(k, m, h=h):  # G_k^(m), m <= h - k
            g = sum(gamma ** (i - 1) * rewards[k + i - 1] for i in range(1, m + 1))
            if k + m < steps:  # no bootstrap from the terminal state
                g += gamma**m * final[k + m - 1] @ phis[k + m]
            return g

        w = np.zeros(n)
        for k in range(h):
            horizon = h - k
            g = (1 - lam) * sum(lam ** (m - 1) * n_step(k, m) for m in range(1, horizon))
            g += lam ** (horizon - 1) * n_step(k, horizon)
            w = w + alpha * (g - w @ phis[k]) * phis[k]
        final.append(w)
    return np.stack(final[1:])


def test_forward_view_is_the_online_lambda_return():
    rng = np.random.default_rng(2)
    steps, n, gamma, alpha, lam = 8, 4, 0.9, 0.1, 0.8
    phis = rng.normal(size=(steps + 1, n))
    rewards = rng.normal(size=steps)
    gammas = np.full(steps, gamma)
    gammas[-1] = 0.0  # the episode ends
    data = (phis[:-1], rewards, gammas, phis[1:], np.zeros(steps, bool))
    with jax.enable_x64(True):
        w, _ = _scan(TrueOnlineTDLearner(n, alpha, lam, use_bias=False, dtype=jnp.float64), data)
    expected = _online_lambda_return(phis[:-1], rewards, gamma, alpha, lam)
    np.testing.assert_allclose(w, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.slow
def test_runner_seeds_online_checkpoint_and_config(tmp_path):
    stream = RandomWalkChainStream(5)
    learner = TrueOnlineTDLearner(5, 0.05, 0.8, use_bias=False)
    result = run_learning_loop(learner, stream, 2000, jax.random.key(0))
    np.testing.assert_allclose(result.learner.weights, stream.true_values(), atol=0.15)
    batched = jax.vmap(lambda k: run_learning_loop(learner, stream, 200, k).learner.weights)(
        jax.random.split(jax.random.key(1), 3)
    )
    assert batched.shape == (3, 5)
    online = alberta_eqx.OnlineLearner(TrueOnlineTDLearner(3, 0.1))
    functional = TrueOnlineTDLearner(3, 0.1)
    for x, y in [([1.0, 0.0, 2.0], 1.0), ([0.5, 1.0, 0.0], -1.0)]:
        out = online.update(np.asarray(x, np.float32), np.float32(y))
        functional, res = functional.update(jnp.asarray(x), y)
        np.testing.assert_allclose(out.prediction, res.prediction, rtol=1e-6)
    np.testing.assert_allclose(online.learner.weights, functional.weights, rtol=1e-6)
    path = tmp_path / "totd.ckpt"
    alberta_eqx.save_checkpoint(path, result.learner)
    restored = alberta_eqx.load_checkpoint(path, learner)
    np.testing.assert_array_equal(restored.learner.weights, result.learner.weights)
    config = to_config(TrueOnlineTDLearner(4, 0.02, 0.7, use_bias=False))
    rebuilt = from_config(config)
    assert isinstance(rebuilt, TrueOnlineTDLearner) and rebuilt.bias is None
    assert float(rebuilt.step_size) == pytest.approx(0.02) and float(
        rebuilt.lambda_
    ) == pytest.approx(0.7)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="lambda_"):
        TrueOnlineTDLearner(3, 0.1, 1.5)
    with pytest.raises(ValueError, match="step_size"):
        TrueOnlineTDLearner(3, -0.1)
