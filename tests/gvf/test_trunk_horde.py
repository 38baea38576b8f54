"""Demons on a shared nonlinear trunk (`TrunkHorde`): every step against a float64
NumPy transcription of semi-gradient TD(lambda); lambda = 0 is `MultiHeadLearner` on
the TD targets; one demon is `TDMLPLearner`; no trunk is the linear `Horde`; the
runners, names and bad inputs."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import alberta_eqx.optax as aeo
from alberta_eqx.gvf import GVFQuestion, Horde, TrunkHorde
from alberta_eqx.nn import MLP
from alberta_eqx.nonlinear import MultiHeadLearner, TDMLPLearner
from alberta_eqx.optimizers import LMS
from alberta_eqx.runners import run_learning_loop_batched
from alberta_eqx.streams import TDTimeStep
from alberta_eqx.streams.random_walk import RandomWalkChainStream
from alberta_eqx.td import TDLinearLearner
from tests._reference.trunk import trunk_td_lambda

KEY = jax.random.key(0)
NETWORK_KEY = jax.random.split(KEY)[0]  # the network's key of a multi-head learner built with KEY


# A network built op by op compiles some 30 small programs (a sparse init: draws, sorts,
# scatters) per shape; built in one compiled program, it compiles one.
_mlp = eqx.filter_jit(MLP)


def _transitions(n, steps, seed):
    """Random features and rewards, episode ends (discount 0) and truncations."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(steps, n))
    x_next = rng.normal(size=(steps, n))
    rewards = rng.normal(size=steps)
    discounts = np.where(rng.uniform(size=steps) < 0.1, 0.0, 1.0)
    truncated = (rng.uniform(size=steps) < 0.05) & (discounts > 0)
    return x, rewards, discounts, x_next, truncated


def _timesteps(x, rewards, discounts, x_next, truncated):
    return TDTimeStep(*(jnp.asarray(a) for a in (x, rewards, discounts, x_next, truncated)))


@eqx.filter_jit
def _scan(learner, timesteps):
    """Every step's result and (for a `TrunkHorde`) every step's network."""

    def step(learner, t):
        learner, result = learner.learn(t)
        return learner, (
            result,
            learner.learner.model if isinstance(learner, TrunkHorde) else None,
        )

    return jax.lax.scan(step, learner, timesteps)


def _layers(model):
    (l1, l2) = model.layers
    return l1.weight, l1.bias, l2.weight, l2.bias


def test_every_step_equals_a_float64_transcription(x64):
    n, k, steps = 3, 3, 300
    rng = np.random.default_rng(1)
    cumulant = rng.normal(size=(k, n + 1))
    gamma, lam = np.array([0.9, 0.5, 0.0]), np.array([0.8, 0.3, 0.6])
    horde = TrunkHorde(
        GVFQuestion(cumulant, gamma, lam),
        _mlp(n, k, (4,), key=NETWORK_KEY, dtype=jnp.float64),
        optax.sgd(0.01),
        head_optimizer=optax.sgd(0.05),
    )
    assert horde.trunk_traces is not None
    initial = [np.asarray(p) for p in _layers(horde.learner.model)]
    data = _transitions(n, steps, 2)
    _, (result, models) = _scan(horde, _timesteps(*data))
    values, history = trunk_td_lambda(
        initial, cumulant, gamma, lam, *data, alpha=0.01, alpha_head=0.05, layer_norm=True
    )
    np.testing.assert_allclose(result.prediction, values, rtol=1e-10, atol=1e-12)
    ours = [np.asarray(p) for p in _layers(models)]
    for t in range(steps):
        for a, b in zip(ours, history[t], strict=True):
            np.testing.assert_allclose(a[t], b, rtol=1e-10, atol=1e-12, err_msg=f"step {t}")
    # the run moved every parameter group away from its start (a real check)
    for a, b in zip(ours, initial, strict=True):
        assert np.abs(a[-1] - b).max() > 1e-3


def test_lambda_zero_is_multihead_on_td_targets(x64):
    """With every lambda 0 the traced update (forced: lambda set to 0 after
    construction) and the trace-free one (lambda 0 at construction) both equal
    `MultiHeadLearner.update(x, C + gamma' v(x'))`, step by step, under IDBD (which
    reads the curvature and the meta-gradient) bounded by ObGD (which reads the
    error)."""
    optimizer = optax.chain(
        aeo.idbd(meta_step_size=0.01, initial_step_size=0.01), aeo.obgd_bound(2.0)
    )
    n, k, steps = 3, 3, 60
    rng = np.random.default_rng(3)
    cumulant = rng.normal(size=(k, n + 1))
    gamma = np.array([0.9, 0.5, 0.0])
    network = _mlp(n, k, (4,), key=NETWORK_KEY, dtype=jnp.float64)
    build = lambda lam: TrunkHorde(GVFQuestion(cumulant, gamma, lam), network, optimizer)  # noqa: E731
    free = build(0.0)
    assert free.trunk_traces is None and free.head_traces is None
    traced = build(0.5)
    traced = eqx.tree_at(lambda h: h.questions.lambda_, traced, jnp.zeros(k))
    multihead = MultiHeadLearner(_mlp(n, k, (4,), key=NETWORK_KEY, dtype=jnp.float64), optimizer)
    data = _transitions(n, steps, 4)

    @eqx.filter_jit
    def run(learners, timesteps):
        def step(learners, t):
            multihead, free, traced = learners
            g = gamma * (t.discount > 0)
            v_next = jnp.where(g == 0, 0.0, multihead.predict(t.next_observation))
            targets = cumulant @ jnp.concatenate([t.reward[None], t.next_observation])
            multihead, expected = multihead.update(t.observation, targets + g * v_next)
            free, from_free = free.learn(t)
            traced, from_traced = traced.learn(t)
            models = (multihead.model, free.learner.model, traced.learner.model)
            return (multihead, free, traced), (expected, from_free, from_traced, models)

        return jax.lax.scan(step, learners, timesteps)

    _, (expected, *results, models) = run((multihead, free, traced), _timesteps(*data))
    for result, model in zip(results, models[1:], strict=True):
        np.testing.assert_allclose(result.prediction, expected.prediction, rtol=1e-10)
        np.testing.assert_allclose(result.error, expected.error, rtol=1e-9, atol=1e-12)
        for a, b in zip(_layers(model), _layers(models[0]), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)
    first = np.asarray(models[0].layers[0].weight)
    assert np.abs(first[-1] - first[0]).max() > 1e-4  # the trunk learned


@pytest.mark.slow
def test_one_demon_is_tdmlp_learner(x64):
    """One demon predicting the reward with gamma 0.9 and lambda 0.7 is
    `TDMLPLearner`'s TD(lambda) on the stream's transitions (same network, SGD)."""
    n, steps = 3, 200
    c = np.zeros((1, n + 1))
    c[0, 0] = 1.0
    horde = TrunkHorde(
        GVFQuestion(c, [0.9], [0.7]),
        _mlp(n, 1, (5, 4), key=NETWORK_KEY, sparsity=0.9, dtype=jnp.float64),
        optax.sgd(0.02),
    )
    td = TDMLPLearner(
        _mlp(n, "scalar", (5, 4), key=KEY, dtype=jnp.float64), optax.sgd(0.02), lambda_=0.7
    )
    # the same initial weights (the output layer: one row, as the single head's)
    arrays = lambda model: [p for layer in model.layers for p in (layer.weight, layer.bias)]  # noqa: E731
    td = eqx.tree_at(lambda m: arrays(m.model), td, arrays(horde.learner.model))
    x, rewards, discounts, x_next, truncated = _transitions(n, steps, 5)
    final, (result, _) = _scan(horde, _timesteps(x, rewards, discounts, x_next, truncated))
    # TDMLPLearner sees the demon's transition: cumulant R, continuation 0.9 [d > 0].
    their = _timesteps(x, rewards, 0.9 * discounts, x_next, truncated)
    td_final, (td_result, _) = _scan(td, their)
    np.testing.assert_allclose(result.prediction[:, 0], td_result.prediction, rtol=1e-10)
    np.testing.assert_allclose(result.error[:, 0], td_result.error, rtol=1e-9, atol=1e-12)
    for a, b in zip(
        jax.tree.leaves(final.learner.model), jax.tree.leaves(td_final.model), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


@pytest.mark.slow
def test_runners_many_seeds_names_and_bad_inputs():
    stream = RandomWalkChainStream(5)
    names = ["reward", "left", "right"]
    c = np.zeros((3, 6))
    c[0, 0], c[1, 1], c[2, 4] = 1, 1, 1  # the reward, states 1 and 4 next
    questions = GVFQuestion(c, [0.9, 0.5, 0.0], [0.5, 0.0, 0.9])
    network = _mlp(5, 3, (8,), key=NETWORK_KEY, sparsity=0.5)
    horde = TrunkHorde(questions, network, aeo.obgd(0.5), names=names)
    keys = jax.random.split(jax.random.key(1), 3)
    result = run_learning_loop_batched(horde, stream, 300, keys)
    assert result.metrics.head_errors.shape == (3, 300, 3)
    assert result.learner.batch_shape == (3,)
    w, b = result.learner.head("left")
    assert w.shape == (3, 8) and b.shape == (3,)
    # the first seed's learner, sliced in one compiled program
    one = eqx.filter_jit(lambda tree: jax.tree.map(lambda a: a[0], tree))(result.learner)

    @eqx.filter_jit  # one compiled program, not one per operation
    def right(one):
        values = one.named(one.predict(jnp.eye(5)[2]))
        w, b = one.head("right")
        h = one.learner.model.forward(jnp.eye(5)[2])[1][-1]
        return values, w @ h + b

    values, expected = right(one)
    assert set(values) == set(names)
    np.testing.assert_allclose(values["right"], expected, rtol=1e-5)
    assert one.question("left").gamma == 0.5
    # every seed learned, each from its own stream
    moved = np.abs(result.learner.learner.head_weights - horde.learner.head_weights[None])
    assert np.all(np.isfinite(moved)) and np.all(moved.max(axis=(1, 2)) > 1e-3)
    assert np.abs(result.metrics.head_errors[0] - result.metrics.head_errors[1]).max() > 0
    with pytest.raises(KeyError, match="no demon named 'up'"):
        one.head("up")

    off_policy = GVFQuestion(np.zeros((2, 6)), [0.5, 0.5], target_policy=[[0.5, 0.5]] * 2)
    with pytest.raises(ValueError, match="questions with a target_policy are off-policy"):
        TrunkHorde(off_policy, _mlp(5, 2, (8,), key=KEY), optax.sgd(0.1))
    with pytest.raises(ValueError, match="feature_dim \\+ 1 = 4"):
        TrunkHorde(questions, _mlp(3, 3, (8,), key=KEY), optax.sgd(0.1))
    with pytest.raises(ValueError, match="names must be 3 distinct names"):
        TrunkHorde(questions, network, optax.sgd(0.1), names=["a", "a", "b"])
    with pytest.raises(ValueError, match="one output per demon, out_size=3, got 2"):
        TrunkHorde(questions, _mlp(5, 2, (8,), key=KEY), optax.sgd(0.1))
    with pytest.raises(ValueError, match="next_observation"):
        horde.learn(TDTimeStep(jnp.ones(5), 0.0, 1.0, jnp.ones(4)))


def test_no_trunk_is_the_linear_horde(x64):
    """With `hidden_sizes=()` every demon is a linear TD(lambda) learner on the
    features: `Horde` with `TDLinearLearner(LMS)` demons, episode ends and
    truncations included."""
    n, steps = 4, 60
    rng = np.random.default_rng(6)
    questions = GVFQuestion(rng.normal(size=(3, n + 1)), [0.9, 0.5, 0.0], [0.5, 0.0, 0.9])
    trunkless = TrunkHorde(
        questions, _mlp(n, 3, (), key=NETWORK_KEY, dtype=jnp.float64), optax.sgd(0.05)
    )
    zero = jax.tree.map(jnp.zeros_like, trunkless.learner.model)  # Horde's demons start at 0
    trunkless = eqx.tree_at(lambda h: h.learner.model, trunkless, zero)
    horde = Horde(questions, TDLinearLearner(n, LMS(0.05)))
    data = _transitions(n, steps, 7)
    assert data[-1].any()  # some truncations
    timesteps = _timesteps(*data)
    ours, (ours_result, _) = _scan(trunkless, timesteps)
    linear, (linear_result, _) = _scan(horde, timesteps)
    np.testing.assert_allclose(ours_result.error, linear_result.error, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.learner.head_weights, linear.demons.weights, rtol=1e-10)
    np.testing.assert_allclose(ours.learner.head_biases, linear.demons.bias, rtol=1e-10)
    assert np.abs(linear.demons.weights).max() > 0.1
