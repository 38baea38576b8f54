"""Every published check of `alberta-eqx replicate` can say PASS and can say FAIL: each
replication's checks are fed a result built to meet the paper's claims and one built to
miss them, and a run too short to test a claim says so instead of asserting it."""

import numpy as np
import pytest

from alberta_eqx.replications import REPLICATIONS, access_control, mahmood2012, reward_centering
from alberta_eqx.replications.baird import BairdCurves
from alberta_eqx.replications.continual_backprop import ContinualBackpropResult
from alberta_eqx.replications.mahmood2012 import AutostepScale
from alberta_eqx.replications.mountain_car import MountainCarSweep
from alberta_eqx.replications.plasticity import PlasticityResult
from alberta_eqx.replications.random_walk import RandomWalk19
from alberta_eqx.replications.stream_ac import StreamACCartPole
from alberta_eqx.replications.stream_x_minatar import StreamXResult
from alberta_eqx.replications.sutton1992 import (
    Experiment1,
    Experiment2,
    _sweep,
)
from alberta_eqx.replications.swift_sarsa import OPERANT_METHODS, OperantSweep
from alberta_eqx.replications.swifttd import METHODS, PROBLEMS, STEP_SIZES, Sensitivity

SEEDS = 10
_rng = np.random.default_rng(0)


def _noisy(value, shape, spread=0.01):
    return value * (1 + spread * _rng.standard_normal(shape))


def experiment1(lms, idbd):
    per_seed = {k: _noisy(v, (3, SEEDS)) for k, v in (("lms", lms), ("idbd", idbd))}
    return Experiment1(
        lms=_sweep([0.02, 0.04, 0.06], per_seed["lms"], per_seed["lms"]),
        idbd=_sweep([0.002, 0.005, 0.01], per_seed["idbd"], per_seed["idbd"]),
    )


def experiment2(relevant, irrelevant):
    return Experiment2(
        _noisy(relevant, (SEEDS, 5)), np.full((SEEDS, 15), irrelevant), history=None
    )


def autostep(step_size_spread, error_spread):
    scales = np.array([1e-3, 1.0, 1e3])
    alphas = np.tile(np.geomspace(0.005, 0.1, 21), (3, SEEDS, 4, 1))
    alphas[0] *= 1 + step_size_spread
    errors = 2.3 * scales[:, None] ** 2 * np.ones((3, SEEDS))
    errors[2] *= 1 + error_spread
    return AutostepScale(scales, errors, 2 * errors, alphas, np.array([1, 2, 3, 4]))


def random_walk(factor):
    def curve(value):
        return np.tile(_noisy(value * factor, (SEEDS,), 0.001)[:, None], (1, 5))

    return RandomWalk19(
        episodes=np.arange(5) * 200.0,
        td_lambda=curve(0.051),
        tdidbd=curve(0.036),
        autotdidbd=curve(0.034),
        step_sizes=np.array([0.01, 0.02]),
        sweep_error=np.array([0.06, 0.05]),
        best_step_size=0.02,
        lambda_=0.8,
    )


def continual_backprop(bp_late, cbp_late):
    bins = 50
    bp = np.full((SEEDS, bins), 0.8)
    bp[:, -5:] = bp_late
    cbp = np.full((SEEDS, bins), 0.7)
    cbp[:, -5:] = cbp_late
    return ContinualBackpropResult(
        steps=np.arange(1, bins + 1) * 20_000.0,
        backprop=_noisy(bp, bp.shape, 0.05),
        continual_backprop=_noisy(cbp, cbp.shape, 0.05),
        early_bins=slice(1, 6),
        late_bins=slice(45, 50),
    )


def baird(growth, pbe, ve):
    steps = np.arange(0, 20_001, 1_000)
    norm = 10.3 * growth ** np.arange(2)[None, :] * np.ones((SEEDS, 1))
    pbe_curve = np.tile(np.geomspace(5.0, pbe, steps.size), (SEEDS, 1))
    ve_curve = np.tile(np.r_[5.3, np.full(steps.size - 1, ve)], (SEEDS, 1))
    return BairdCurves(steps, norm * 1.3, norm, ve_curve, pbe_curve, td_steps=1_000)


def mountain_car(zero, middle, largest):
    lambdas = np.array([0.0, 0.92, 0.99])
    sizes = np.array([0.2, 1.0, 1.8])
    mean = np.array(
        [[300.0, zero, zero + 10], [290.0, middle, middle + 5], [250.0, 200.0, largest]]
    )
    return MountainCarSweep(
        sizes, lambdas, np.empty((3, 3, 0)), mean, np.full((3, 3), 1.0), 50, 15_000
    )


def cartpole(reaching):
    curve_steps = np.arange(10_000, 500_001, 10_000)
    curve = np.full((SEEDS, curve_steps.size), 100.0)
    curve[:reaching, 10:] = 450.0
    return StreamACCartPole(
        returns=np.empty((SEEDS, 0)),
        end_steps=np.empty((SEEDS, 0), int),
        num_episodes=np.full(SEEDS, 300),
        final_average=curve[:, -1],
        curve_steps=curve_steps,
        curve=curve,
        num_steps=500_000,
        wall_seconds=1.0,
    )


def access(passing: bool):
    """Zhang's policy and values at every seed (visited at 0..6 free servers), or a
    policy accepting priority 1 everywhere and never 8, with values upside down."""
    zhang = access_control.ZHANG
    policy, values = zhang.policy.copy(), zhang.values.copy()
    rates = np.array([2.3, 2.5, 2.6])
    if not passing:
        policy[0, 1:], policy[3, :] = 1, 0
        values, rates = -values, rates + 2.8
    occupancy = np.r_[np.full(7, 1 / 7), np.zeros(4)]
    seeds = rates.size
    return access_control.AccessControlResult(
        policy=np.tile(policy, (seeds, 1, 1)),
        values=np.tile(values, (seeds, 1, 1)),
        reward_rate=rates,
        average_reward=np.full(seeds, 2.6),
        occupancy=np.tile(occupancy, (seeds, 1)),
        num_steps=2_000_000,
        wall_seconds=1.0,
    )


def swifttd(swift_spread):
    """Every method's final error falls from 1 to 0.2 across the step-sizes (spread
    0.8), SwiftTD's from `0.2 + swift_spread` to 0.2."""
    sizes = np.asarray(STEP_SIZES)
    errors = {}
    for problem in PROBLEMS:
        errors[problem] = {}
        for method in METHODS:
            top = 0.2 + (swift_spread if method == "SwiftTD" else 0.8)
            final = np.linspace(top, 0.2, sizes.size)
            errors[problem][method] = np.tile(final[:, None, None], (1, 3, 2))
    return Sensitivity(tuple(PROBLEMS), sizes, np.array([10_000, 20_000]), errors)


def swift_sarsa(swift, fixed):
    """Last-tenth rewards: Swift-Sarsa's lowest `swift`, the fixed step-size's `fixed`
    at every step-size."""
    sizes = np.array([1e-4, 1e-2])
    rewards = {}
    for method, last in zip(OPERANT_METHODS, ((0.95, swift), (fixed, fixed)), strict=True):
        rewards[method] = np.tile(np.asarray(last)[:, None, None], (1, 3, 10))
    return OperantSweep(sizes, rewards, 30_000, 60_000)


def centering(passing: bool):
    """Reward rates over the run per (learner, gamma, offset), the same at every
    window, with seed noise; step-size 1 the best. Passing: centering gains 0.1, 0.3,
    0.6 at gamma 0.9, 0.99, 0.999 and offsets cost the uncentered learner 0.3; failing:
    centering loses 0.1 everywhere and the offsets cost the centered learner 0.3."""
    rng = np.random.default_rng(0)
    base = np.array([2.4, 2.2, 1.8])[:, None] * np.ones(3)  # (gamma, offset)
    gain = np.array([0.1, 0.3, 0.6])[:, None] if passing else -0.1
    uncentered = base - (0.3 if passing else 0.0) * (np.arange(3) != 1)
    centered = base + gain - (0.0 if passing else 0.3) * (np.arange(3) != 1)
    rates = np.stack([uncentered, centered])[:, :, :, None, None, None]
    step_sizes = np.array([-0.5, 0.0, -0.5])[:, None, None]
    curves = rates + step_sizes + rng.normal(0, 0.01, (2, 3, 3, 3, SEEDS, 1))
    return reward_centering.RewardCenteringResult(
        curves=np.repeat(curves, 20, axis=-1),
        reward_rate=np.zeros((2, 3, 3, 3, SEEDS)),
        num_steps=100_000,
        window=5_000,
        wall_seconds=1.0,
    )


def stream_x(late: float) -> StreamXResult:
    """Two seeds of Breakout with returns 1 in the first 5% of the run and `late`
    in their last 100 episodes."""
    steps = 5_000_000
    ends = np.linspace(steps / 400, steps, 400).astype(np.int64)
    returns = np.where(ends <= 0.05 * steps, 1.0, late)
    return StreamXResult(
        game="breakout",
        agent="q",
        configs=[{}, {}],
        returns=np.tile(returns, (2, 1)),
        end_steps=np.tile(ends, (2, 1)),
        num_episodes=np.array([400, 400]),
        num_steps=steps,
        wall_seconds=1.0,
    )


def plasticity(sgd_late, upgd_late, cbp_late):
    """Accuracy 0.8 on the early tasks, the given accuracies on the last tenth."""
    tasks = 200

    def curve(late):
        acc = np.full((SEEDS, tasks), 0.8)
        acc[:, -20:] = late
        return _noisy(acc, acc.shape, 0.02)

    curves = {"SGD": curve(sgd_late), "UPGD": curve(upgd_late), "CBP": curve(cbp_late)}
    dormant = {k: np.zeros((SEEDS, 2, 2)) for k in curves}
    return PlasticityResult(
        {"input-permuted": curves}, {"input-permuted": dormant}, num_steps=1_000_000
    )


# name -> (a result meeting every claim, one missing every claim)
CASES = {
    "sutton1992-exp1": (experiment1(3.5, 1.5), experiment1(5.0, 3.0)),
    "sutton1992-exp2": (experiment2(0.13, 0.005), experiment2(0.2, 0.0077)),
    "autostep-scale": (autostep(0.0, 0.0), autostep(0.1, 0.1)),
    "random-walk-19": (random_walk(1.0), random_walk(1.5)),
    "continual-backprop": (continual_backprop(1.5, 0.7), continual_backprop(0.8, 0.8)),
    "baird": (baird(40.0, 0.007, 1.93), baird(1.0, 0.1, 5.0)),
    "mountain-car": (mountain_car(230.0, 185.0, np.nan), mountain_car(200.0, 200.0, 210.0)),
    "stream-ac-cartpole": (cartpole(9), cartpole(7)),
    "access-control": (access(True), access(False)),
    "swifttd": (swifttd(0.05), swifttd(0.9)),
    "swift-sarsa": (swift_sarsa(0.93, 0.5), swift_sarsa(0.6, 0.95)),
    "reward-centering": (centering(True), centering(False)),
    "stream-x-minatar": (stream_x(5.0), stream_x(0.5)),
    "plasticity": (plasticity(0.5, 0.8, 0.8), plasticity(0.8, 0.4, 0.4)),
}


def test_every_replication_has_checks_and_a_case():
    assert set(CASES) == set(REPLICATIONS)
    for name, replication in REPLICATIONS.items():
        assert replication.checks, name


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_check_passes_and_fails(name):
    replication = REPLICATIONS[name]
    passing, failing = CASES[name]
    for result, outcome in ((passing, "PASS"), (failing, "FAIL")):
        for check, verdict in zip(
            replication.checks, replication.verdicts(result, replication.steps), strict=True
        ):
            line = verdict.line()
            assert verdict.outcome == outcome, line
            assert line.startswith(f"{check.claim} — {outcome} ("), line
            assert verdict.measured and verdict.measured in line
            record = verdict.record()
            assert record["outcome"] == outcome and record["passed"] is (outcome == "PASS")


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_short_run_does_not_assert_what_it_cannot_test(name):
    replication = REPLICATIONS[name]
    passing, _ = CASES[name]
    for check, verdict in zip(
        replication.checks, replication.verdicts(passing, replication.quick_steps), strict=True
    ):
        if replication.quick_steps < check.steps_needed(passing):
            assert verdict.outcome == "not tested at this length", verdict.line()
            assert f"needs {check.steps_needed(passing):,} steps" in verdict.line()
        else:
            assert verdict.outcome == "PASS", verdict.line()


def test_the_continual_backprop_quick_run_does_not_claim_growth():
    """Issue 22: `--quick` (200,000 steps) printed that the error grows beside early
    and late errors that did not differ; now its verdicts say it is too short."""
    replication = REPLICATIONS["continual-backprop"]
    assert replication.quick_steps < 1_000_000
    verdicts = replication.verdicts(continual_backprop(0.8, 0.8), replication.quick_steps)
    assert [v.outcome for v in verdicts] == ["not tested at this length"] * 2


def test_a_known_failure_says_what_is_known():
    _, failing = CASES["sutton1992-exp2"]
    relevant, irrelevant = REPLICATIONS["sutton1992-exp2"].verdicts(failing, 250_000)
    assert relevant.why == ""
    assert "float64 NumPy transcription" in irrelevant.why and irrelevant.why in irrelevant.line()


def test_a_sweep_without_the_settings_a_claim_names_does_not_test_it():
    passing, _ = CASES["mountain-car"]
    small = passing._replace(lambdas=np.array([0.0, 0.92, 0.96]))
    intermediate, largest = REPLICATIONS["mountain-car"].verdicts(small, 15_000)
    assert intermediate.outcome == "PASS"
    assert largest.outcome == "not tested" and "no lambda 0.99" in largest.line()


def test_one_seed_cannot_test_a_paired_difference():
    result = continual_backprop(1.5, 0.7)
    one = result._replace(
        backprop=result.backprop[:1], continual_backprop=result.continual_backprop[:1]
    )
    verdicts = REPLICATIONS["continual-backprop"].verdicts(one, 1_000_000)
    assert [v.outcome for v in verdicts] == ["not tested"] * 2
    assert all("one seed" in v.line() for v in verdicts)


@pytest.mark.slow
def test_the_reference_marks_are_our_reference_runs():
    """Baird's stars and Autostep's reference are what tests/_reference/runs.py (float64
    NumPy, 100 seeds, nothing shared with alberta_eqx) computes, to their rounding."""
    from alberta_eqx.replications.baird import REFERENCE
    from tests._reference import runs as reference_runs

    baird = reference_runs.baird()
    pairs = [
        (REFERENCE["td"][1000]["sqrt_ve"], baird["td sqrt(VE)", 1000][0], 0.05),
        (REFERENCE["td"][1000]["norm_w"], baird["td |w|", 1000][0], 0.05),
        (REFERENCE["tdc"][1000]["sqrt_ve"], baird["tdc sqrt(VE)", 1000][0], 5e-4),
        (REFERENCE["tdc"][1000]["sqrt_pbe"], baird["tdc sqrt(PBE)", 1000][0], 5e-5),
        (REFERENCE["tdc"][20000]["sqrt_pbe"], baird["tdc sqrt(PBE)", 20000][0], 5e-6),
    ]
    autostep = reference_runs.autostep_against_lms()
    pairs += [
        (mahmood2012._AUTOSTEP_REFERENCE[name], autostep[name][0], 0.005)
        for name in ("autostep", "lms")
    ]
    for quoted, computed, rounding in pairs:
        assert abs(quoted - computed) <= rounding, (quoted, computed)
