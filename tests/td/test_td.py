"""TD learners: against float64 transcriptions of the papers, against their supervised
counterparts, and on the 19-state random walk's known values."""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from alberta_eqx.learners import LinearLearner
from alberta_eqx.nn import MLP
from alberta_eqx.optimizers import IDBD, LMS, Autostep
from alberta_eqx.replications.random_walk import random_walk_19, rms_error
from alberta_eqx.runners import (
    StepSizeTrackingConfig,
    run_learning_loop,
    run_learning_loop_batched,
)
from alberta_eqx.streams.random_walk import RandomWalkChainStream, episode_ends
from alberta_eqx.td import TDLinearLearner, TDTimeStep
from tests._reference import rules as reference
from tests._reference import td as reference_td


def _transitions(seed, steps=300, n=5):
    """A trajectory of random features, rewards linear in them (the sign flipped
    halfway, so the step-sizes have something to adapt to), discount 0.9 with
    occasional episode ends, where `next_observation` holds junk the learner must
    ignore."""
    rng = np.random.default_rng(seed)
    phis = rng.normal(size=(steps + 1, n)) * rng.uniform(0.3, 1.5, size=n)
    rewards = phis[:-1] @ rng.normal(size=n) + 0.2 * rng.normal(size=steps)
    rewards[steps // 2 :] *= -1
    gammas = np.where(rng.uniform(size=steps) < 0.05, 0.0, 0.9)
    return phis[:-1], rewards, gammas, phis[1:]


def _augment(phis, use_bias):
    return np.hstack([phis, np.ones((len(phis), 1))]) if use_bias else phis


@eqx.filter_jit
def _trajectory(learner, timesteps):
    """The learner after a scan of `learner.learn` over `timesteps`, and after every
    transition its weights (bias last), step-sizes and TD error. Module-level and
    jitted: the hyperparameters are array leaves, so every case with the same
    structure (optimizer type, bias, shapes) shares one compilation."""

    def step(learner, timestep):
        learner, result = learner.learn(timestep)
        params, alphas = learner.weights, learner.step_sizes
        if learner.bias is not None:
            params = jnp.append(params, learner.bias)
            alphas = jnp.append(alphas, learner.bias_step_size)
        return learner, (params, alphas, result.error)

    return jax.lax.scan(step, learner, timesteps)


def _run(learner, data):
    """Weights (bias last) and step-sizes after every transition."""
    timesteps = TDTimeStep(*(jnp.asarray(a, jnp.float64) for a in data))
    _, (w, a, _) = _trajectory(learner, timesteps)
    return np.asarray(w), np.asarray(a)


def _reference_inputs(data, use_bias):
    phis, rewards, gammas, phis_next = data
    return _augment(phis, use_bias), rewards, gammas, _augment(phis_next, use_bias)


# float64 against float64 over 300 transitions: agreement to rounding.
RTOL, ATOL = 1e-9, 1e-12


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("lam", [0.0, 0.8])
def test_td_lambda_matches_reference(use_bias, lam):
    data = _transitions(0)
    with jax.enable_x64(True):
        learner = TDLinearLearner(5, LMS(0.02), lam, use_bias, dtype=jnp.float64)
        w, a = _run(learner, data)
    ref = reference_td.td_lambda(*_reference_inputs(data, use_bias), 0.02, lam)
    np.testing.assert_allclose(w, np.stack([r[0] for r in ref]), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(a, np.stack([r[1] for r in ref]), rtol=RTOL)


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("semi_gradient", [True, False])
@pytest.mark.parametrize(("lam", "alpha0", "theta"), [(0.0, 0.05, 0.05), (0.8, 0.01, 0.1)])
def test_tdidbd_matches_algorithms_3_and_4(use_bias, semi_gradient, lam, alpha0, theta):
    data = _transitions(1)
    with jax.enable_x64(True):
        optimizer = IDBD(alpha0, meta_step_size=theta)
        learner = TDLinearLearner(
            5, optimizer, lam, use_bias, semi_gradient=semi_gradient, dtype=jnp.float64
        )
        w, a = _run(learner, data)
    ref = reference_td.tidbd(*_reference_inputs(data, use_bias), alpha0, theta, lam, semi_gradient)
    ref_a = np.stack([r[1] for r in ref])
    # the step-sizes must actually have moved, or this test would prove little
    assert np.max(np.abs(np.log(ref_a[-1] / alpha0))) > 0.1
    np.testing.assert_allclose(a, ref_a, rtol=RTOL)
    np.testing.assert_allclose(w, np.stack([r[0] for r in ref]), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("semi_gradient", [True, False])
def test_autotdidbd_matches_reference(use_bias, semi_gradient):
    # lambda = 0 is covered by the reduction to Autostep below
    data = _transitions(2)
    alpha0, mu, tau, lam = 0.02, 0.05, 100.0, 0.8
    with jax.enable_x64(True):
        optimizer = Autostep(alpha0, meta_step_size=mu, tau=tau)
        learner = TDLinearLearner(
            5, optimizer, lam, use_bias, semi_gradient=semi_gradient, dtype=jnp.float64
        )
        w, a = _run(learner, data)
    ref = reference_td.auto_tidbd(
        *_reference_inputs(data, use_bias), alpha0, mu, tau, lam, semi_gradient
    )
    ref_a = np.stack([r[1] for r in ref])
    assert np.max(np.abs(np.log(ref_a[-1] / alpha0))) > 0.1
    np.testing.assert_allclose(a, ref_a, rtol=RTOL)
    np.testing.assert_allclose(w, np.stack([r[0] for r in ref]), rtol=RTOL, atol=ATOL)


def test_autotdidbd_normalizers_match_reference():
    data = _transitions(3)
    with jax.enable_x64(True):
        learner = TDLinearLearner(
            5,
            Autostep(0.02, meta_step_size=0.05, tau=100.0),
            0.5,
            use_bias=False,
            dtype=jnp.float64,
        )
        learner, _ = _trajectory(learner, TDTimeStep(*(jnp.asarray(a, jnp.float64) for a in data)))
        v = np.asarray(learner.step_size_snapshot().step_size_normalizers)
    ref = reference_td.auto_tidbd(*data, 0.02, 0.05, 100.0, 0.5, True)
    np.testing.assert_allclose(v, ref[-1][2], rtol=RTOL)


# --- lambda = 0 and gamma = 0: the supervised rules, exactly --------------------------


@pytest.mark.parametrize(
    ("optimizer", "semi_gradient"),
    [
        (lambda: LMS(0.03), True),
        (lambda: IDBD(0.02, meta_step_size=0.05), True),
        (lambda: IDBD(0.02, meta_step_size=0.05), False),
        (lambda: Autostep(0.02, meta_step_size=0.05, tau=100.0), True),
        (lambda: Autostep(0.02, meta_step_size=0.05, tau=100.0), False),
    ],
)
def test_td_reduces_to_supervised(optimizer, semi_gradient):
    phis, rewards, _, phis_next = _transitions(4)
    steps = len(rewards)
    with jax.enable_x64(True):
        td = TDLinearLearner(
            5, optimizer(), lambda_=0.0, semi_gradient=semi_gradient, dtype=jnp.float64
        )
        supervised = LinearLearner(5, optimizer(), dtype=jnp.float64)
        timesteps = TDTimeStep(
            jnp.asarray(phis), jnp.asarray(rewards), jnp.zeros(steps), jnp.asarray(phis_next)
        )

        def both(learners, t):
            td, supervised = learners
            td, td_result = td.learn(jax.tree.map(lambda a: a[t], timesteps))
            supervised, result = supervised.update(timesteps.observation[t], timesteps.reward[t])
            pair = (td.weights, td.bias, td.step_sizes, supervised.weights, supervised.bias)
            return (td, supervised), (
                *pair,
                supervised.step_sizes,
                td_result.metrics.squared_error,
                result.metrics.squared_error,
            )

        _, out = jax.lax.scan(both, (td, supervised), jnp.arange(steps))
    td_w, td_b, td_a, w, b, a, td_se, se = map(np.asarray, out)
    assert np.max(np.abs(np.log(a[-1] / a[0]))) > 0.1 or isinstance(optimizer(), LMS)
    np.testing.assert_allclose(td_w, w, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(td_b, b, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(td_a, a, rtol=1e-12)
    np.testing.assert_allclose(td_se, se, rtol=1e-12, atol=1e-14)


def test_update_is_a_one_step_target():
    """`update(x, y)` is the transition with discount 0, whatever lambda is."""
    phis, rewards, _, _ = _transitions(5, steps=20)
    td = TDLinearLearner(5, IDBD(0.02, meta_step_size=0.05), lambda_=0.9)
    supervised = LinearLearner(5, IDBD(0.02, meta_step_size=0.05))
    xs, ys = jnp.asarray(phis, jnp.float32), jnp.asarray(rewards, jnp.float32)
    update = eqx.filter_jit(lambda learner, x, y: learner.update(x, y)[0])
    for x, y in zip(xs, ys, strict=True):
        td = update(td, x, y)
        supervised = update(supervised, x, y)
    np.testing.assert_allclose(td.weights, supervised.weights, rtol=1e-5, atol=1e-6)


# --- the 19-state random walk -------------------------------------------------------


def test_random_walk_true_values_solve_the_bellman_equations():
    stream = RandomWalkChainStream(19)
    expected = reference_td.random_walk_values(19)
    np.testing.assert_allclose(expected, (np.arange(1, 20) - 10) / 10, atol=1e-12)
    np.testing.assert_allclose(stream.true_values(), expected, atol=1e-6)
    with pytest.raises(ValueError, match="discount"):
        RandomWalkChainStream(19, discount=0.9).true_values()


def test_random_walk_transitions():
    stream = RandomWalkChainStream(19)
    steps = 20_000
    # one compiled program per chunk length, not one per operation of an eager chunk
    chunk = eqx.filter_jit(lambda stream, state, t0, n: stream.chunk(state, t0, n))
    ts, _ = chunk(stream, stream.init(jax.random.key(0)), jnp.asarray(0), steps)
    obs, reward, discount, nxt = map(np.asarray, ts[:4])
    assert np.all(obs.sum(1) == 1)  # one-hot, never terminal
    here = obs.argmax(1) + 1
    terminal = discount == 0
    there = np.where(terminal, np.where(reward > 0, 20, 0), nxt.argmax(1) + 1)
    assert set(np.unique(there - here)) == {-1, 1}
    assert np.all(nxt[terminal] == 0) and np.all(discount[~terminal] == 1)
    assert np.all(reward[~terminal] == 0) and set(np.unique(reward[terminal])) == {-1, 1}
    # every episode starts in the middle, and the next step follows on
    assert here[0] == 10 and np.all(here[1:][terminal[:-1]] == 10)
    np.testing.assert_array_equal(nxt[:-1][~terminal[:-1]], obs[1:][~terminal[:-1]])
    ends = episode_ends(discount)
    np.testing.assert_array_equal(ends, np.flatnonzero(terminal))
    # the expected episode length from the middle of 19 states is 10 * 10 = 100 steps
    assert 85 < steps / len(ends) < 115
    # chunks agree with one long chunk (the coin of step t comes from fold_in(key, t))
    first, state = chunk(stream, stream.init(jax.random.key(0)), jnp.asarray(0), 7_000)
    second, _ = chunk(stream, state, jnp.asarray(7_000), 13_000)
    np.testing.assert_array_equal(np.concatenate([first.reward, second.reward]), reward)


@pytest.mark.parametrize(
    "optimizer",
    [LMS(0.01), IDBD(0.01, meta_step_size=0.01), Autostep(0.01)],
    ids=lambda o: type(o).__name__,
)
@pytest.mark.slow
def test_random_walk_converges_to_true_values(optimizer):
    """About 1000 episodes; RMS error against (i - 10) / 10 below 0.05, averaged over
    8 seeds (one seed's error at one instant still carries the walk's noise)."""
    stream = RandomWalkChainStream(19)
    learner = TDLinearLearner(19, optimizer, lambda_=0.5, use_bias=False)
    keys = jax.random.split(jax.random.key(0), 8)
    result = run_learning_loop_batched(learner, stream, 100_000, keys)
    errors = np.asarray(rms_error(result.learner, stream.true_values()))
    assert errors.shape == (8,)
    assert errors.mean() < 0.05 and errors.max() < 0.1, errors
    # ... from 0.6 (`sqrt(mean(v**2))` with all values 0 at the start)
    initial = rms_error(learner, stream.true_values())
    np.testing.assert_allclose(initial, np.sqrt(np.mean(((np.arange(1, 20) - 10) / 10) ** 2)))


# Autostep (it has step-size normalizers to track) on the 19-state walk, tracked every
# 500 steps: the batched test's single runs and the grid test's tracked run share one
# compiled program.
_TRACKED_LEARNER = TDLinearLearner(19, Autostep(0.05), lambda_=0.7)
_TRACKING = StepSizeTrackingConfig(500)


def _tracked_single(key):
    return run_learning_loop(
        _TRACKED_LEARNER, RandomWalkChainStream(19), 2_000, key, step_size_tracking=_TRACKING
    )


@pytest.fixture(scope="module")
def lms_grid():
    """Two LMS step-sizes on two seeds of the 19-state walk, and the keys."""
    keys = jax.random.split(jax.random.key(0), 2)
    # built in one compiled program rather than op by op
    learners = eqx.filter_jit(
        eqx.filter_vmap(lambda a: TDLinearLearner(19, LMS(a), 0.5, use_bias=False))
    )(jnp.asarray([0.01, 0.1]))
    return run_learning_loop_batched(learners, RandomWalkChainStream(19), 1_000, keys), keys


@pytest.mark.slow
def test_batched_over_seeds_matches_single_runs():
    stream = RandomWalkChainStream(19)
    keys = jax.random.split(jax.random.key(3), 2)
    batched = run_learning_loop_batched(
        _TRACKED_LEARNER, stream, 2_000, keys, step_size_tracking=_TRACKING
    )
    assert batched.metrics.squared_error.shape == (2, 2_000)
    assert batched.step_size_history.step_sizes.shape == (2, 4, 19)
    for i in range(2):
        single = _tracked_single(keys[i])
        np.testing.assert_allclose(batched.learner.weights[i], single.learner.weights, rtol=1e-5)
        np.testing.assert_allclose(
            batched.metrics.error[i], single.metrics.error, rtol=1e-5, atol=1e-6
        )


def test_hyperparameter_grid_over_seeds(lms_grid):
    result, _ = lms_grid
    stream = RandomWalkChainStream(19)
    assert rms_error(result.learner, stream.true_values()).shape == (2, 2)
    tracked = _tracked_single(jax.random.key(0))
    assert tracked.step_size_history.step_size_normalizers.shape == (4, 19)


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="optimizer"):
        TDLinearLearner(3, "lms")
    with pytest.raises(ValueError, match="lambda_"):
        TDLinearLearner(3, lambda_=1.5)
    with pytest.raises(TypeError, match="semi_gradient"):
        TDLinearLearner(3, semi_gradient="yes")
    with pytest.raises(ValueError, match="meta_step_size"):
        Autostep(meta_step_size=0.0)
    with pytest.raises(ValueError, match="num_states"):
        RandomWalkChainStream(4)
    with pytest.raises(ValueError, match=r"optimizer\.init"):
        IDBD().step_sizes((jnp.zeros(3),))


def test_reference_is_the_supervised_rule_at_gamma_zero():
    """The TD transcriptions themselves reduce to `reference.py`'s at lambda = gamma = 0
    (a check on the references, independent of alberta_eqx)."""
    phis, rewards, _, phis_next = _transitions(6, steps=60)
    zeros = np.zeros(len(rewards))
    td = reference_td.tidbd(phis, rewards, zeros, phis_next, 0.05, 0.05, 0.0, False)
    sup = reference.idbd(phis, rewards, 0.05, 0.05)
    np.testing.assert_allclose([r[0] for r in td], [r[0] for r in sup], rtol=1e-12)
    td = reference_td.auto_tidbd(phis, rewards, zeros, phis_next, 0.05, 0.05, 100.0, 0.0, True)
    sup = reference.autostep(phis, rewards, 0.05, 0.05, 100.0)
    np.testing.assert_allclose([r[1] for r in td], [r[1] for r in sup], rtol=1e-12)


@pytest.mark.slow
def test_random_walk_19_replication_shapes():
    # Short, but with the defaults' seeds, sweep and segments: the segments compile to
    # the programs that `test_random_walk_19_documented_results` runs, so that test
    # (in the same file, hence the same worker) reuses them instead of compiling its own.
    result = random_walk_19(num_episodes=10)
    assert result.td_lambda.shape == result.tdidbd.shape == (30, 2)
    assert result.autotdidbd.shape == (30, 2) and result.episodes.shape == (2,)
    assert result.best_step_size in (0.005, 0.01, 0.02, 0.05, 0.1, 0.2)
    assert result.sweep_error.shape == (6,)
    assert np.all(np.diff(result.episodes) > 0)
    # everything starts at 0, where the RMS error is 0.6: after 10 episodes it is lower
    assert np.all(result.td_lambda[:, -1] < 0.6)


@pytest.mark.slow
@pytest.mark.optimized
def test_random_walk_19_documented_results():
    """The numbers `random_walk_19`'s docstring quotes, at its defaults: TD(lambda)'s
    best step-size 0.02 with RMS error 0.051 after 1000 episodes, TD-IDBD 0.036,
    AutoTDIDBD 0.034 (means over 30 seeds, to the quoted precision)."""
    result = random_walk_19()
    assert result.best_step_size == 0.02
    np.testing.assert_allclose(result.td_lambda[:, -1].mean(), 0.051, atol=0.0015)
    np.testing.assert_allclose(result.tdidbd[:, -1].mean(), 0.036, atol=0.0015)
    np.testing.assert_allclose(result.autotdidbd[:, -1].mean(), 0.034, atol=0.0015)
    from alberta_eqx.replications.random_walk import RANDOM_WALK_19

    verdicts = RANDOM_WALK_19.verdicts(result, 100_000)
    assert [v.outcome for v in verdicts] == ["PASS"] * 3, [v.line() for v in verdicts]


def test_grid_cell_equals_the_configuration_alone(lms_grid):
    grid, keys = lms_grid
    alone = run_learning_loop(
        TDLinearLearner(19, LMS(0.1), 0.5, use_bias=False),
        RandomWalkChainStream(19),
        1_000,
        keys[1],
    )
    np.testing.assert_allclose(grid.learner.weights[1, 1], alone.learner.weights, rtol=1e-5)
    np.testing.assert_allclose(grid.metrics.error[1, 1], alone.metrics.error, rtol=1e-5, atol=1e-6)


# Time limits, and TD(lambda) for any differentiable learner (TDMLPLearner).


def _with_truncations(data, seed=7):
    """`data` with a time-limit flag on some non-terminal transitions."""
    rng = np.random.default_rng(seed)
    truncated = (rng.uniform(size=len(data[1])) < 0.05) & (data[2] != 0)
    truncated[10] = data[2][10] != 0
    assert truncated.any()
    return (*data, truncated)


def _stack(data):
    *floats, truncated = data
    return TDTimeStep(*(jnp.asarray(a, jnp.float64) for a in floats), jnp.asarray(truncated))


def test_a_truncation_bootstraps_and_cuts_the_trace():
    data = _with_truncations(_transitions(3))
    with jax.enable_x64(True):
        learner = TDLinearLearner(5, LMS(0.02), 0.8, dtype=jnp.float64)
        _, (w, _, _) = _trajectory(learner, _stack(data))
        _, (uncut, _, _) = _trajectory(learner, _stack((*data[:4], np.zeros(300, bool))))
    phis, rewards, gammas, phis_next, truncated = data
    expected = reference_td.td_lambda_cut(
        _augment(phis, True), rewards, gammas, _augment(phis_next, True), truncated, 0.02, 0.8
    )
    np.testing.assert_allclose(w, np.stack(expected), rtol=RTOL, atol=ATOL)
    assert not np.allclose(uncut, w)  # the flag changed the run


@eqx.filter_jit
def _td_mlp_scan(learner, timesteps):
    def step(learner, timestep):
        learner, result = learner.learn(timestep)
        layer = learner.model.layers[-1]
        return learner, (jnp.append(layer.weight[0], layer.bias), result.error)

    return jax.lax.scan(step, learner, timesteps)[1]


def _td_mlp_run(learner, timesteps):
    """The last layer's weights (bias last) and the TD error after every transition."""
    return jax.tree.map(np.asarray, _td_mlp_scan(learner, timesteps))


def _zero_linear_mlp(learner, w0=None):
    """The learner with its (only) layer's weights set to `w0` (bias last), or 0."""
    layer = learner.model.layers[0]
    w0 = np.zeros(layer.weight.shape[1] + 1) if w0 is None else w0
    weight = jnp.asarray(w0[None, :-1], layer.weight.dtype)
    bias = jnp.asarray(w0[-1:], layer.bias.dtype)
    return eqx.tree_at(
        lambda s: (s.model.layers[0].weight, s.model.layers[0].bias), learner, (weight, bias)
    )


@functools.cache
def _transformation(rule):
    """One optax transformation per rule, made once: the learner holds it as a static
    field, compared by identity, so the two lambdas of a rule share one compilation."""
    import optax

    import alberta_eqx.optax as aeo

    return {
        "td": lambda: optax.sgd(0.02),
        "tdidbd": lambda: aeo.idbd(meta_step_size=0.05, initial_step_size=0.02),
        "autotdidbd": lambda: aeo.autostep(meta_step_size=0.01, initial_step_size=0.02, tau=100.0),
    }[rule]()


@pytest.mark.parametrize("lam", [0.0, 0.8])
@pytest.mark.parametrize("rule", ["td", "tdidbd", "autotdidbd"])
def test_td_mlp_without_hidden_layer_is_td_linear(lam, rule):
    """TD(lambda), TD-IDBD and AutoTDIDBD (semi-gradient) through optax on the MLP's
    pytree equal TDLinearLearner's, truncations included."""
    from alberta_eqx import TDMLPLearner

    data = _with_truncations(_transitions(4))
    with jax.enable_x64(True):
        optimizer = {
            "td": lambda: LMS(0.02),
            "tdidbd": lambda: IDBD(0.02, meta_step_size=0.05),
            "autotdidbd": lambda: Autostep(0.02, meta_step_size=0.01, tau=100.0),
        }[rule]()
        mlp = TDMLPLearner(
            MLP(5, "scalar", (), key=jax.random.key(0), dtype=jnp.float64),
            _transformation(rule),
            lambda_=lam,
        )
        got, errors = _td_mlp_run(_zero_linear_mlp(mlp), _stack(data))
        linear = TDLinearLearner(5, optimizer, lam, dtype=jnp.float64)
        _, (expected, _, expected_errors) = _trajectory(linear, _stack(data))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(errors, expected_errors, rtol=1e-12, atol=1e-14)


def test_replacing_traces_on_binary_features():
    import optax

    from alberta_eqx import TDMLPLearner

    rng = np.random.default_rng(5)
    phis = (rng.uniform(size=(301, 6)) < 0.3).astype(float)
    rewards = rng.normal(size=300)
    gammas = np.where(rng.uniform(size=300) < 0.05, 0.0, 0.9)
    data = (phis[:-1], rewards, gammas, phis[1:], np.zeros(300, bool))
    with jax.enable_x64(True):
        mlp = TDMLPLearner(
            MLP(6, "scalar", (), key=jax.random.key(0), dtype=jnp.float64),
            optax.sgd(0.05),
            lambda_=0.9,
            trace_type="replacing",
        )
        got, _ = _td_mlp_run(_zero_linear_mlp(mlp), _stack(data))
    expected = reference_td.td_lambda_cut(
        _augment(data[0], True),
        rewards,
        gammas,
        _augment(data[3], True),
        data[4],
        0.05,
        0.9,
        replacing=True,
    )
    np.testing.assert_allclose(got, np.stack(expected), rtol=1e-10, atol=1e-13)
    accumulating = reference_td.td_lambda_cut(
        _augment(data[0], True), rewards, gammas, _augment(data[3], True), data[4], 0.05, 0.9
    )
    assert not np.allclose(np.stack(accumulating), got)


def test_stream_td_lambda_is_obgd_on_the_learners_trace():
    """TDMLPLearner with alberta_eqx.optax.obgd follows the paper's ObGD TD(lambda)
    (reference_obgd, the authors' trace reset after an episode's end)."""
    import alberta_eqx.optax as aeo
    from alberta_eqx import TDMLPLearner
    from tests._reference import obgd as reference_obgd

    phis, rewards, gammas, phis_next = _transitions(6)
    w0 = np.array([0.1, -0.2, 0.3, 0.0, 0.2, 0.05])
    with jax.enable_x64(True):
        mlp = TDMLPLearner(
            MLP(5, "scalar", (), key=jax.random.key(0), dtype=jnp.float64),
            aeo.obgd(1.0, kappa=2.0),
            lambda_=0.8,
        )
        data = (phis, rewards, gammas, phis_next, np.zeros(300, bool))
        got, _ = _td_mlp_run(_zero_linear_mlp(mlp, w0), _stack(data))
    expected = reference_obgd.obgd(
        _augment(phis, True), rewards, gammas, _augment(phis_next, True), w0, 1.0, 2.0, 0.9, 0.8
    )
    np.testing.assert_allclose(got, np.stack([w for w, _ in expected]), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("rule", ["autostep", "obgd"])
@pytest.mark.slow
def test_td_mlp_with_lambda_zero_is_the_supervised_update_on_the_td_target(rule):
    import alberta_eqx.optax as aeo
    from alberta_eqx import MLPLearner, TDMLPLearner

    tx = aeo.autostep(initial_step_size=0.05) if rule == "autostep" else aeo.obgd(1.0, kappa=2.0)
    phis, rewards, gammas, phis_next = _transitions(8, steps=30, n=3)
    with jax.enable_x64(True):
        model = MLP(
            3, "scalar", (6, 4), key=jax.random.key(1), activation=jax.nn.relu, sparsity=0.5,
            dtype=jnp.float64,
        )  # fmt: skip
        td = TDMLPLearner(model, tx, lambda_=0.0)
        supervised = MLPLearner(model, tx)
        predict = eqx.filter_jit(lambda learner, x: learner.predict(x))
        update = eqx.filter_jit(lambda learner, x, y: learner.update(x, y))
        learn = eqx.filter_jit(lambda learner, step: learner.learn(step))
        for t in range(30):
            target = rewards[t] + gammas[t] * predict(supervised, jnp.asarray(phis_next[t]))
            supervised, expected = update(supervised, jnp.asarray(phis[t]), target)
            step = TDTimeStep(*(jnp.asarray(a[t]) for a in (phis, rewards, gammas, phis_next)))
            td, result = learn(td, step)
            np.testing.assert_allclose(result.error, expected.error, rtol=1e-12)
        for a, b in zip(
            jax.tree.leaves(eqx.filter(td.model, eqx.is_array)),
            jax.tree.leaves(eqx.filter(supervised.model, eqx.is_array)),
            strict=True,
        ):
            np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-14)


def test_td_mlp_learns_the_random_walk_and_checks_arguments():
    import alberta_eqx.optax as aeo
    from alberta_eqx import TDMLPLearner

    stream = RandomWalkChainStream()
    learner = TDMLPLearner(
        MLP(stream.feature_dim, "scalar", (), key=jax.random.key(0)),
        aeo.lms(0.1),
        lambda_=0.8,
    )
    result = run_learning_loop(learner, stream, 3000, jax.random.key(0))
    first, last = (
        np.mean(result.metrics.squared_error[:300]),
        np.mean(result.metrics.squared_error[-300:]),
    )
    assert last < first
    with pytest.raises(ValueError, match="lambda_ must be in"):
        TDMLPLearner(
            MLP(
                3, "scalar", (4,), key=jax.random.key(0), activation=jax.nn.relu, layer_norm=False
            ),
            aeo.lms(0.1),
            lambda_=1.5,
        )
    with pytest.raises(ValueError, match="trace_type must be"):
        TDMLPLearner(
            MLP(
                3, "scalar", (4,), key=jax.random.key(0), activation=jax.nn.relu, layer_norm=False
            ),
            aeo.lms(0.1),
            trace_type="dutch",
        )


def test_gymnax_stream_marks_truncations():
    gymnax = pytest.importorskip("gymnax")
    from alberta_eqx.streams.environments import GymnaxTDStream

    env, params = gymnax.make("CartPole-v1")
    params = params.replace(max_steps_in_episode=8)
    stream = GymnaxTDStream(env, params)
    steps, _ = stream.chunk(stream.init(jax.random.key(0)), jnp.asarray(0), 200)
    truncated = np.asarray(steps.truncated)
    assert truncated.any()
    # a truncated transition bootstraps: its discount is not 0
    assert np.all(np.asarray(steps.discount)[truncated & ~(np.asarray(steps.discount) == 0)] > 0)
    lengths = np.diff(np.flatnonzero(truncated | (np.asarray(steps.discount) == 0)))
    assert lengths.max() <= 8
