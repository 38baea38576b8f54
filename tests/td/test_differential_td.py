"""Differential (average-reward) semi-gradient TD(lambda) and reward centering in the
TD learners (`TDLinearLearner`, `TDMLPLearner`, a `Horde`'s demons) against the
float64 transcription `tests/_reference/centering.py` over 300 transitions; with the
rate's step-size at 0 and `Rbar` at 0 the discounted rule; configs; bad inputs."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import alberta_eqx.optax as aeo
from alberta_eqx.config import from_config, to_config
from alberta_eqx.gvf import GVFQuestion, Horde
from alberta_eqx.nn import MLP
from alberta_eqx.nonlinear import TDMLPLearner
from alberta_eqx.optimizers import LMS
from alberta_eqx.streams import TDTimeStep
from alberta_eqx.td import RewardRate, TDLinearLearner
from tests._reference import centering as ref

NUM_STEPS = 300
NUM_STATES = 5
ALPHA, BETA = 0.05, 0.02


def _ring(gamma, seed=0, dtype=jnp.float64):
    """A continuing random walk on a ring of 5 states, one-hot features; the reward
    on entering state s is s + noise (mean 2: a rate to learn)."""
    rng = np.random.default_rng(seed)
    states = np.cumsum(rng.choice([-1, 1], NUM_STEPS + 1)) % NUM_STATES
    eye = np.eye(NUM_STATES)
    rewards = states[1:] + rng.normal(0, 0.5, NUM_STEPS)
    return TDTimeStep(
        jnp.asarray(eye[states[:-1]], dtype),
        jnp.asarray(rewards, dtype),
        jnp.full(NUM_STEPS, gamma, dtype),
        jnp.asarray(eye[states[1:]], dtype),
    )


@eqx.filter_jit
def _learn(learner, steps):
    """Every transition in order: the learner after each (its arrays stacked)."""

    def body(learner, step):
        learner = learner.learn(step)[0]
        return learner, learner

    return jax.lax.scan(body, learner, steps)[1]


def _features(steps):
    """The transcription's features: the one-hot, then the bias's constant 1."""
    ones = np.ones((NUM_STEPS, 1))
    obs, nxt = (np.asarray(a, np.float64) for a in (steps.observation, steps.next_observation))
    return np.hstack([obs, ones]), np.hstack([nxt, ones])


CASES = [(1.0, 0.8, "td_error"), (0.9, 0.5, "reward"), (0.99, 0.0, "td_error")]


@pytest.mark.parametrize(("gamma", "lam", "source"), CASES)
def test_linear_equals_the_transcription_in_float64(x64, gamma, lam, source):
    """Differential TD(lambda) (gamma = 1) and centered TD(lambda), value-based and
    simple, weights and Rbar after every one of 300 transitions."""
    steps = _ring(gamma)
    rate = RewardRate(BETA, update_from=source)
    learner = TDLinearLearner(NUM_STATES, LMS(ALPHA), lam, dtype=jnp.float64, reward_rate=rate)
    after = _learn(learner, steps)
    phis, phis_next = _features(steps)
    want_w, want_rate = ref.centered_td_lambda(
        phis, np.asarray(steps.reward), np.full(NUM_STEPS, gamma), phis_next,
        ALPHA, lam, BETA, source == "reward",
    )  # fmt: skip
    got_w = np.hstack([np.asarray(after.weights), np.asarray(after.bias)[:, None]])
    np.testing.assert_allclose(got_w, want_w, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(after.reward_rate.estimate, want_rate, rtol=1e-10, atol=1e-12)
    assert want_rate[-1] > 0.5  # Rbar moved towards the reward rate (about 2)


@pytest.mark.slow
def test_network_path_equals_the_transcription_in_float64(x64):
    """`TDMLPLearner` with no hidden layer and `optax.sgd` is linear TD(lambda): with a
    `RewardRate` it follows the same transcription from the network's initial
    weights."""
    steps = _ring(1.0, seed=1)
    net = MLP(NUM_STATES, "scalar", (), key=jax.random.key(0), dtype=jnp.float64)
    w0 = np.append(np.asarray(net.layers[0].weight)[0], np.asarray(net.layers[0].bias))
    learner = TDMLPLearner(net, optax.sgd(ALPHA), lambda_=0.7, reward_rate=RewardRate(BETA))
    after = _learn(learner, steps)
    phis, phis_next = _features(steps)
    want_w, want_rate = ref.centered_td_lambda(
        phis, np.asarray(steps.reward), np.ones(NUM_STEPS), phis_next,
        ALPHA, 0.7, BETA, False, w0=w0,
    )  # fmt: skip
    layer = after.model.layers[0]
    got_w = np.hstack([np.asarray(layer.weight)[:, 0], np.asarray(layer.bias)])
    np.testing.assert_allclose(got_w, want_w, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(after.reward_rate.estimate, want_rate, rtol=1e-10, atol=1e-12)


def _frozen(learner):
    """The learner with its rate's step-size set to 0 (refused at construction)."""
    return eqx.tree_at(lambda m: m.reward_rate.step_size, learner, jnp.zeros(()))


def _check_zero_rate_is_discounted(plain, steps):
    """`plain` and the same learner with `Rbar` fixed at 0 learn the same weights
    (exactly: the same operations on `R - 0`)."""
    centered = _frozen(
        eqx.tree_at(lambda m: m.reward_rate, plain, RewardRate(0.1), is_leaf=lambda n: n is None)
    )
    a, b = _learn(plain, steps), _learn(centered, steps)
    b_state = eqx.tree_at(lambda m: m.reward_rate, b, None)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b_state), strict=True):
        np.testing.assert_array_equal(x, y)
    assert np.all(np.asarray(b.reward_rate.estimate) == 0)
    assert np.ptp(np.asarray(jax.tree.leaves(eqx.filter(a, eqx.is_inexact_array))[0][-1])) > 0


@pytest.mark.parametrize("gamma", [1.0, 0.9])
def test_a_fixed_zero_rate_is_the_discounted_rule(gamma):
    """With `Rbar` fixed at 0 the differential rule is discounted TD(lambda) with
    gamma = 1, and the centered one is discounted TD(lambda) with its gamma."""
    plain = TDLinearLearner(NUM_STATES, LMS(ALPHA), 0.8)
    _check_zero_rate_is_discounted(plain, _ring(gamma, dtype=jnp.float32))


@pytest.mark.slow
def test_a_fixed_zero_rate_is_the_discounted_rule_for_the_network_path():
    net = MLP(NUM_STATES, "scalar", (4,), key=jax.random.key(0))
    plain = TDMLPLearner(net, optax.sgd(ALPHA), lambda_=0.8)
    _check_zero_rate_is_discounted(plain, _ring(1.0, dtype=jnp.float32))


@pytest.mark.slow
def test_horde_demons_are_centered_one_by_one():
    """A Horde whose demon has a `RewardRate` centers each demon's cumulant with its
    own `Rbar`: demon i equals a lone centered `TDLinearLearner` on `C_i`."""
    steps = _ring(0.9, dtype=jnp.float32)
    cumulants = np.zeros((2, NUM_STATES + 1))
    cumulants[0, 0] = 1.0  # the reward
    cumulants[1, 3] = 1.0  # the next state's feature 2
    questions = GVFQuestion(cumulants, [0.9, 0.5], [0.5, 0.0])
    demon = TDLinearLearner(NUM_STATES, LMS(ALPHA), reward_rate=RewardRate(BETA))
    horde = _learn(Horde(questions, demon), steps)
    one_step = TDTimeStep(*steps[:3], steps.next_observation)
    for i, (c, g, lam) in enumerate([(steps.reward, 0.9, 0.5),
                                     (steps.next_observation[:, 2], 0.5, 0.0)]):  # fmt: skip
        lone = eqx.tree_at(lambda d: d.lambda_, demon, jnp.asarray(lam, jnp.float32))
        after = _learn(lone, one_step._replace(reward=c, discount=jnp.full(NUM_STEPS, g)))
        np.testing.assert_allclose(horde.demons.weights[-1, i], after.weights[-1], rtol=1e-5)
        np.testing.assert_allclose(
            horde.demons.reward_rate.estimate[:, i], after.reward_rate.estimate, rtol=1e-5
        )
    assert np.ptp(np.asarray(horde.demons.reward_rate.estimate[-1])) > 0.1  # one Rbar each


def test_configs_and_bad_inputs():
    rate = RewardRate(0.05, 1.5, update_from="reward")
    linear = TDLinearLearner(NUM_STATES, LMS(0.1), 0.5, reward_rate=rate)
    again = from_config(to_config(linear))
    assert again.reward_rate.update_from == "reward"
    assert float(again.reward_rate.estimate) == 1.5
    assert float(again.reward_rate.step_size) == pytest.approx(0.05)
    net = MLP(NUM_STATES, "scalar", (4,), key=jax.random.key(0))
    network = from_config(
        to_config(TDMLPLearner(net, aeo.lms(0.1), reward_rate=RewardRate(0.01))),
        key=jax.random.key(0),
    )
    assert float(network.reward_rate.step_size) == pytest.approx(0.01)
    horde = Horde(GVFQuestion(np.eye(1, NUM_STATES + 1), [0.9]), linear)
    assert from_config(to_config(horde)).demons.reward_rate.update_from == "reward"
    assert TDLinearLearner(NUM_STATES).reward_rate is None
    with pytest.raises(TypeError, match="reward_rate"):
        TDLinearLearner(NUM_STATES, reward_rate=0.1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="reward_rate"):
        TDMLPLearner(net, optax.sgd(0.1), reward_rate=0.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="step_size must be > 0"):
        RewardRate(0.0)
    with pytest.raises(ValueError, match="estimate must be finite"):
        RewardRate(0.1, float("nan"))
