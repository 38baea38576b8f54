"""`alberta-eqx replicate swifttd` and `swift-sarsa`: the true values of the test states
against a float64 NumPy rollout, the reduced sweep (each lane of the vectorised sweep
equals its learner run alone), the spread's rule, the report and the figure."""

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import pytest

from alberta_eqx.replications import REPLICATIONS
from alberta_eqx.replications import swifttd as st
from alberta_eqx.replications.random_walk import rms_error
from alberta_eqx.runners import run_learning_loop
from alberta_eqx.streams.mountain_car import MountainCar

matplotlib.use("Agg")


def _numpy_energy_pumping_return(position: float, velocity: float, gamma: float) -> float:
    """Example 10.1's dynamics in float64 under throttle = sign of the velocity
    (forward at 0), from `(position, velocity)` until the right bound: the return of
    rewards -1."""
    total, weight = 0.0, 1.0
    for _ in range(10_000):
        throttle = 1.0 if velocity >= 0 else -1.0
        velocity += 0.001 * throttle - 0.0025 * np.cos(3 * position)
        velocity = np.clip(velocity, -0.07, 0.07)
        position = np.clip(position + velocity, -1.2, 0.5)
        if position == -1.2:
            velocity = 0.0
        total -= weight
        if position == 0.5:
            return total
        weight *= gamma
    raise AssertionError("no episode end")


@pytest.mark.slow
def test_mountain_car_true_values_are_the_energy_pumping_returns(x64):
    """The Monte Carlo values of `_test_states` (one rollout: the policy and dynamics
    are deterministic) equal a float64 NumPy transcription's returns."""
    env = MountainCar()
    observations, values = st._test_states(
        env, env.default_params, st._energy_pumping, lambda o: o, 0.99,
        jax.random.key(3), num_states=4, spacing=40,
    )  # fmt: skip
    states = zip(np.asarray(observations), np.asarray(values), strict=True)
    for (position, velocity), value in states:
        expected = _numpy_energy_pumping_return(float(position), float(velocity), 0.99)
        assert value == pytest.approx(expected, rel=1e-9), (position, velocity)
    assert np.ptp(np.asarray(values)) > 1  # states at different distances from the goal


def test_the_spread_counts_a_diverged_step_size_as_infinite():
    errors = np.array([[[0.5, 0.4], [0.5, 0.3]], [[0.5, 0.2], [0.5, np.nan]]])  # (S, seeds, P)
    result = st.Sensitivity(("p",), np.array([0.1, 1.0]), np.array([1, 2]), {"p": {"m": errors}})
    np.testing.assert_allclose(result.final("p", "m"), [0.35, np.inf])
    assert result.spread("p", "m") == np.inf
    finite = st.Sensitivity(("p",), np.array([0.1, 1.0]), np.array([1, 2]),
                            {"p": {"m": errors[:1].repeat(2, 0) * [[[1]], [[2]]]}})  # fmt: skip
    assert finite.spread("p", "m") == pytest.approx(0.35)


@pytest.fixture(scope="module")
def walk_sweep():
    """The reduced sweep: the random walk, every method at the 9 step-sizes, 2 seeds of
    1,000 steps, one measurement."""
    return st.swifttd_sensitivity(
        num_steps=1_000, num_seeds=2, problems=("random walk",), num_points=1
    )


@pytest.mark.slow
def test_the_reduced_sweep(walk_sweep):
    """Each lane of a method's one compiled sweep is the learner run alone on its
    seed's stream; the smallest step-size barely moves the values from 0; the report
    names every method's spread; the figure is titled and labelled; a 1,000-step run
    does not test the claim."""
    result = walk_sweep
    errors = result.errors["random walk"]
    assert set(errors) == set(st.METHODS)
    problem = st.random_walk_problem()
    keys = jax.random.split(jax.random.key(0), 2)
    initial = float(jnp.sqrt(jnp.mean(problem.true_values**2)))
    for method in st.METHODS:
        assert errors[method].shape == (9, 2, 1)
        assert errors[method][0, :, -1] == pytest.approx(initial, abs=0.02), method
    for method in ("True Online TD(lambda)", "SwiftTD"):  # alone: one compilation each
        learner = st.METHODS[method](19, 0.8, st.STEP_SIZES[4])
        alone = run_learning_loop(learner, problem.stream, 1_000, keys[1])
        expected = rms_error(alone.learner, problem.true_values)
        assert errors[method][4, 1, -1] == pytest.approx(float(expected), rel=1e-4), method
    lines = REPLICATIONS["swifttd"].report(result)
    for method in st.METHODS:
        assert any(line.strip().startswith(method) and "spread" in line for line in lines)
    fig = REPLICATIONS["swifttd"].figure(result)
    assert "SwiftTD" in fig._suptitle.get_text()
    ax = fig.axes[0]
    assert ax.get_title() == "random walk" and ax.get_legend() is not None
    verdicts = REPLICATIONS["swifttd"].verdicts(result, 1_000)
    assert {v.outcome for v in verdicts} == {"not tested at this length"}
