"""Reward centering and differential learning (`reward_rate=RewardRate(...)`) in the
learners that took it last: `TrueOnlineTDLearner`, `SwiftTDLearner`,
`SparseSwiftTDLearner`, `SwiftSarsa`, `TrunkHorde` and `GradientTDLearner`.

Each against its float64 NumPy transcription (`tests/_reference`, with
`centering.Rate`) over 300 transitions, with episode ends where the learner handles
them (True Online TD, the trunk's demons, gradient TD; the SwiftTD transcription is
the authors' package, which sees one continuing stream). The reduction: `Rbar` held
at a constant `c` (its step-size set to 0 after construction) is the plain learner on
the rewards `R - c`, step for step; and the shift changes the plain learner, so the
check could fail. Configs and bad inputs."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import alberta_eqx.optax as aeo
from alberta_eqx.config import from_config, to_config
from alberta_eqx.control import SwiftSarsa
from alberta_eqx.gvf import GradientTDLearner, GVFQuestion, Horde, TrunkHorde
from alberta_eqx.nn import MLP
from alberta_eqx.streams import OffPolicyTimeStep
from alberta_eqx.td import (
    RewardRate,
    SparseSwiftTDLearner,
    SparseTDTimeStep,
    SwiftTDLearner,
    TDTimeStep,
    TrueOnlineTDLearner,
)
from tests._reference import gradient_td as ref_gtd
from tests._reference import swifttd as ref_swift
from tests._reference.centering import Rate
from tests._reference.trunk import trunk_td_lambda

T, N = 300, 5
ALPHA, BETA, SHIFT = 0.05, 0.02, 1.5
TIGHT = {"rtol": 1e-9, "atol": 1e-11}


@eqx.filter_jit
def _scan(learner, steps):
    """The learner after every transition (its arrays stacked): one compiled program
    per learner structure, shared by the runs with and without a moving `Rbar`."""

    def body(learner, step):
        learner = learner.learn(step)[0]
        return learner, learner

    return jax.lax.scan(body, learner, steps)[1]


def _data(seed, gamma=0.9, ends=True):
    """Random features, rewards of mean 2 (a rate to learn), discount `gamma` with
    episode ends (discount 0) and truncations where `ends`."""
    rng = np.random.default_rng(seed)
    phis = rng.normal(size=(T + 1, N))
    rewards = 2.0 + phis[:-1] @ rng.normal(size=N) + 0.3 * rng.normal(size=T)
    gammas = np.where(ends & (rng.uniform(size=T) < 0.05), 0.0, gamma)
    truncated = ends & (rng.uniform(size=T) < 0.03) & (gammas != 0)
    return phis[:-1], rewards, gammas, phis[1:], truncated


def _td_steps(data):
    *floats, truncated = data
    return TDTimeStep(*(jnp.asarray(a, jnp.float64) for a in floats), jnp.asarray(truncated))


def _bias(phis):
    return np.hstack([phis, np.ones((len(phis), 1))])


def _frozen(learner, estimate):
    """`learner` with `Rbar` held at `estimate`: its rate's step-size 0 (refused at
    construction, so set afterwards)."""
    learner = eqx.tree_at(lambda m: m.reward_rate.estimate, learner, jnp.asarray(estimate))
    rate = learner.reward_rate
    return eqx.tree_at(lambda m: m.reward_rate.step_size, learner, jnp.zeros_like(rate.step_size))


def _check_reduction(plain, centered, steps, shifted):
    """`centered` with `Rbar` held at `SHIFT` (or per-demon values) equals `plain` on
    the stream `shifted` (its rewards minus `SHIFT`), which differs from `plain` on
    `steps`."""
    held = _scan(centered, steps)
    after = _scan(plain, shifted)
    unshifted = _scan(plain, steps)
    assert np.all(
        np.asarray(held.reward_rate.estimate) == np.asarray(centered.reward_rate.estimate)
    )
    held = eqx.tree_at(lambda m: m.reward_rate, held, None)
    moved = 0.0
    for a, b, c in zip(
        jax.tree.leaves(eqx.filter(after, eqx.is_inexact_array)),
        jax.tree.leaves(eqx.filter(held, eqx.is_inexact_array)),
        jax.tree.leaves(eqx.filter(unshifted, eqx.is_inexact_array)),
        strict=True,
    ):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-13)
        moved = max(moved, float(np.abs(np.asarray(a) - np.asarray(c)).max()))
    assert moved > 1e-2


# ---------------------------------------------------------------------------------
# True Online TD(lambda)


@pytest.fixture(scope="module")
def true_online(x64_module):
    data = _data(0)
    learner = TrueOnlineTDLearner(
        N, ALPHA, 0.9, dtype=jnp.float64, reward_rate=RewardRate(BETA, estimate=SHIFT)
    )
    return data, learner


def test_true_online_equals_the_transcription(x64, true_online):
    """Centered True Online TD(lambda) (JMLR Algorithm 1 with `R - Rbar`), value-based,
    over episodes with ends and truncations."""
    data, learner = true_online
    after = _scan(learner, _td_steps(data))
    rate = Rate(BETA)
    rate.rbar = SHIFT
    phis, rewards, gammas, phis_next, truncated = data
    want = ref_swift.true_online_td(
        _bias(phis), rewards, gammas, _bias(phis_next), truncated, ALPHA, 0.9, rate=rate
    )
    got = np.hstack([after.weights, after.bias[:, None]])
    np.testing.assert_allclose(got, np.stack([w for w, _ in want]), **TIGHT)
    np.testing.assert_allclose(after.reward_rate.estimate, rate.history, **TIGHT)
    assert abs(rate.history[-1] - SHIFT) > 0.05  # Rbar moved


def test_true_online_with_a_held_rate_is_the_plain_rule_on_shifted_rewards(x64, true_online):
    data, learner = true_online
    steps = _td_steps(data)
    plain = TrueOnlineTDLearner(N, ALPHA, 0.9, dtype=jnp.float64)
    _check_reduction(
        plain, _frozen(learner, SHIFT), steps, steps._replace(reward=steps.reward - SHIFT)
    )


@pytest.mark.slow
def test_differential_true_online_with_simple_centering(x64):
    """Discount 1, continuing (differential), `Rbar` the rewards' running average."""
    data = _data(1, gamma=1.0, ends=False)
    rate = RewardRate(BETA, update_from="reward")
    after = _scan(
        TrueOnlineTDLearner(N, 0.02, 0.5, dtype=jnp.float64, reward_rate=rate), _td_steps(data)
    )
    reference = Rate(BETA, simple=True)
    phis, rewards, gammas, phis_next, truncated = data
    want = ref_swift.true_online_td(
        _bias(phis), rewards, gammas, _bias(phis_next), truncated, 0.02, 0.5, rate=reference
    )
    got = np.hstack([after.weights, after.bias[:, None]])
    np.testing.assert_allclose(got, np.stack([w for w, _ in want]), **TIGHT)
    np.testing.assert_allclose(after.reward_rate.estimate, reference.history, **TIGHT)
    assert reference.history[-1] > 1.0


# ---------------------------------------------------------------------------------
# SwiftTD and Swift-Sarsa: the package's step(x_t, r_t - Rbar), Rbar from its delta

# (lambda_, initial_step_size, gamma, epsilon, max_step_size, step_size_decay,
# meta_step_size, eta_min): a setting where the bound binds and the decay acts
SETTING = (0.9, 0.05, 0.95, 1e-3, 0.2, 0.99, 3e-3, 1e-10)


def _swift(cls, n, rate, setting=SETTING, **kwargs):
    lam, alpha, _, eps, eta, decay, meta, eta_min = setting
    return cls(
        n,
        lam,
        alpha,
        eta,
        decay,
        meta,
        eta_min,
        eps,
        dtype=jnp.float64,
        reward_rate=rate,
        **kwargs,
    )


def _package_run(package, inputs, rewards, rate):
    """The package form's weights after each transition: its first step takes
    `x_0` in (no transition ends there), every later one ends a transition."""
    package.step(inputs[0], 0.0)
    weights = []
    for x, r in zip(inputs[1:], rewards, strict=True):
        package.step(x, rate.center(r))
        rate.update(r, package.delta)
        weights.append(package.w.copy())
    return np.array(weights)


def _swift_data(seed, n=N, density=0.4):
    """Continuing: sparse signed features (a fraction `density` non-zero), rewards of
    mean 2."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(T + 1, n)) * (rng.uniform(size=(T + 1, n)) < density)
    return x, 2.0 + rng.normal(size=T)


def _dense_steps(x, rewards):
    f = lambda a: jnp.asarray(a, jnp.float64)  # noqa: E731
    return TDTimeStep(f(x[:-1]), f(rewards), jnp.full(T, SETTING[2], jnp.float64), f(x[1:]))


@pytest.mark.parametrize("simple", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_swifttd_dense_equals_the_package_transcription(x64, simple):
    x, rewards = _swift_data(2)
    learner = _swift(
        SwiftTDLearner, N, RewardRate(BETA, update_from="reward" if simple else "td_error")
    )
    after = _scan(learner, _dense_steps(x, rewards))
    rate = Rate(BETA, simple)
    want = _package_run(ref_swift.SwiftTDNonSparse(N, *SETTING), list(x), rewards, rate)
    np.testing.assert_allclose(after.weights, want, **TIGHT)
    np.testing.assert_allclose(after.reward_rate.estimate, rate.history, **TIGHT)
    assert rate.history[-1] > 0.5


@pytest.mark.slow
@pytest.mark.parametrize("capacity", [None, 11])
def test_sparse_swifttd_equals_the_package_transcription(x64, capacity):
    """Both forms of the sparse learner against the package's `SwiftTD` on
    `(index, value)` pairs: a slot per feature (the mask), and fewer slots than
    features (the set; 12 features, about one active per step, `lambda = 0.5`, so
    that the live traces fit and none is dropped)."""
    n = N if capacity is None else 12
    setting = SETTING if capacity is None else (0.5, *SETTING[1:])
    x, rewards = _swift_data(3, n, 0.4 if capacity is None else 0.1)
    idx = jnp.asarray(np.where(x != 0, np.arange(n), -1), jnp.int32)
    values = jnp.asarray(x, jnp.float64)
    steps = SparseTDTimeStep(
        idx[:-1], values[:-1], jnp.asarray(rewards), jnp.full(T, SETTING[2]), idx[1:], values[1:]
    )
    learner = _swift(SparseSwiftTDLearner, n, RewardRate(BETA), setting, trace_capacity=capacity)
    after = _scan(learner, steps)
    rate = Rate(BETA)
    pairs = [[(i, x[t, i]) for i in range(n) if x[t, i] != 0] for t in range(T + 1)]
    want = _package_run(ref_swift.SwiftTD(n, *setting), pairs, rewards, rate)
    if capacity is not None:
        assert int(after.dropped_traces[-1]) == 0  # else the run departs from the package's
    np.testing.assert_allclose(after.weights, want, **TIGHT)
    np.testing.assert_allclose(after.reward_rate.estimate, rate.history, **TIGHT)


@pytest.mark.slow
def test_swifttd_with_a_held_rate_is_the_plain_rule_on_shifted_rewards(x64):
    x, rewards = _swift_data(4)
    steps = _dense_steps(x, rewards)
    plain = _swift(SwiftTDLearner, N, None)
    held = _frozen(_swift(SwiftTDLearner, N, RewardRate(BETA)), SHIFT)
    _check_reduction(plain, held, steps, steps._replace(reward=steps.reward - SHIFT))


@pytest.mark.slow
def test_swift_sarsa_equals_the_package_transcription_on_action_features(x64):
    """Differential Swift-Sarsa (discount 1) on a recorded continuing trajectory
    `(S, A, R, S', A')`: the package's dense form over the features `x(s, a)` (`x(s)`
    in the block of `a`) with `R - Rbar`."""
    k = 2
    x, rewards = _swift_data(5)
    actions = np.random.default_rng(6).integers(0, k, T + 1)
    lam, alpha, _, eps, eta, decay, meta, eta_min = SETTING
    agent = SwiftSarsa(
        N, k, 1.0, 0.1, lam, alpha, eta, decay, meta, eta_min, eps,
        dtype=jnp.float64, reward_rate=RewardRate(BETA),
    )  # fmt: skip

    @eqx.filter_jit
    def run(agent):
        def body(agent, t):
            s, a, r, s_next, a_next = t
            agent = agent.learn(s, a, r, jnp.ones(()), s_next, a_next, jnp.zeros((), bool))[0]
            return agent, (agent.weights, agent.reward_rate.estimate)

        f = lambda v: jnp.asarray(v, jnp.float64)  # noqa: E731
        a = jnp.asarray(actions)
        return jax.lax.scan(body, agent, (f(x[:-1]), a[:-1], f(rewards), f(x[1:]), a[1:]))[1]

    weights, rates = run(agent)
    blocks = np.zeros((T + 1, k, N))
    blocks[np.arange(T + 1), actions] = x
    rate = Rate(BETA)
    package = ref_swift.SwiftTDNonSparse(k * N, lam, alpha, 1.0, eps, eta, decay, meta, eta_min)
    want = _package_run(package, list(blocks.reshape(T + 1, -1)), rewards, rate)
    np.testing.assert_allclose(np.asarray(weights).reshape(T, -1), want, **TIGHT)
    np.testing.assert_allclose(rates, rate.history, **TIGHT)
    assert rate.history[-1] > 0.5


# ---------------------------------------------------------------------------------
# Gradient TD: value-based centering weighted by rho, except GQ's action values


def _off_policy_data(seed):
    """Random transitions with importance ratios (a quarter of the target
    probabilities 0), episode ends (discount 0, next features 0), rewards of mean 2."""
    rng = np.random.default_rng(seed)
    x, x_next = rng.normal(size=(T, N)), rng.normal(size=(T, N))
    rewards = 2.0 + rng.normal(size=T)
    gammas = np.where(rng.random(T) < 0.1, 0.0, 0.9)
    x_next[gammas == 0] = 0
    b = rng.uniform(0.2, 1.0, T)
    pi = np.where(rng.random(T) < 0.25, 0.0, rng.uniform(0.0, 1.0, T))
    steps = OffPolicyTimeStep(
        *(jnp.asarray(a) for a in (x, rng.integers(0, 3, T), rewards, gammas, x_next, b, pi))
    )
    return steps, (_bias(x), rewards, gammas, _bias(x_next), pi / b)


def _gtd_reference(method, data, lam, rate):
    alpha, beta = ALPHA / 5, 0.05
    if method == "td":
        return [(w, None) for w in ref_gtd.offpolicy_td(data, alpha, lam, rate=rate)]
    if method == "gq":
        return ref_gtd.gq_lambda(data, alpha, beta / alpha, lam, rate=rate)
    if method == "gtd":
        return ref_gtd.gtd_lambda(data, alpha, beta, lam, rate=rate)
    return {"tdc": ref_gtd.tdc, "gtd2": ref_gtd.gtd2}[method](data, alpha, beta, rate=rate)


@pytest.mark.parametrize(
    ("method", "lam", "simple"),
    [
        ("tdc", 0.0, False),
        pytest.param("td", 0.8, False, marks=pytest.mark.slow),
        pytest.param("gtd2", 0.0, False, marks=pytest.mark.slow),
        pytest.param("gtd", 0.9, False, marks=pytest.mark.slow),
        pytest.param("gq", 0.9, False, marks=pytest.mark.slow),
        pytest.param("gtd", 0.5, True, marks=pytest.mark.slow),
    ],
)
def test_gradient_td_equals_the_transcription(x64, method, lam, simple):
    steps, data = _off_policy_data(7)
    rate = RewardRate(BETA, update_from="reward" if simple else "td_error")
    learner = GradientTDLearner(
        N, method, ALPHA / 5, 0.05, lam, dtype=jnp.float64, reward_rate=rate
    )
    after = _scan(learner, steps)
    reference = Rate(BETA, simple)
    want = _gtd_reference(method, data, lam, reference)
    got = np.hstack([after.weights, after.bias[:, None]])
    np.testing.assert_allclose(got, np.stack([w for w, _ in want]), **TIGHT)
    if method != "td":
        secondary = np.hstack([after.secondary[0], after.secondary[1][:, None]])
        np.testing.assert_allclose(secondary, np.stack([v for _, v in want]), **TIGHT)
    np.testing.assert_allclose(after.reward_rate.estimate, reference.history, **TIGHT)
    assert reference.history[-1] > 0.3


@pytest.mark.slow
def test_gradient_td_rate_step_is_weighted_by_rho():
    """One transition with `rho = 2`: value-based centering moves `Rbar` by
    `beta rho delta` for state values and by `beta delta` for GQ's action values;
    simple centering by `beta (R - Rbar)`."""
    x = jnp.array([1.0, 0.0, 0.0, 0.0, 0.0])
    one = jnp.ones(())
    step = OffPolicyTimeStep(x, jnp.asarray(0), 2 * one, 0 * one, 0 * x, 0.5 * one, one)
    for method, update_from, want in [
        ("tdc", "td_error", BETA * 2 * 2.0),
        ("gq", "td_error", BETA * 2.0),
        ("tdc", "reward", BETA * 2.0),
    ]:
        rate = RewardRate(BETA, update_from=update_from)
        learner = GradientTDLearner(N, method, reward_rate=rate).learn(step)[0]
        assert float(learner.reward_rate.estimate) == pytest.approx(want, rel=1e-6)


@pytest.mark.slow
def test_gradient_td_with_a_held_rate_is_the_plain_rule_on_shifted_rewards(x64):
    steps, _ = _off_policy_data(8)
    plain = GradientTDLearner(N, "gtd", ALPHA / 5, 0.05, 0.9, dtype=jnp.float64)
    held = _frozen(
        GradientTDLearner(
            N, "gtd", ALPHA / 5, 0.05, 0.9, dtype=jnp.float64, reward_rate=RewardRate(BETA)
        ),
        SHIFT,
    )
    _check_reduction(plain, held, steps, steps._replace(reward=steps.reward - SHIFT))


# ---------------------------------------------------------------------------------
# TrunkHorde: one Rbar per demon, centering its cumulant


def _trunk(cumulant, gamma, lam, rate):
    network = eqx.filter_jit(MLP)(N, len(gamma), (4,), key=jax.random.key(1), dtype=jnp.float64)
    questions = GVFQuestion(cumulant, gamma, lam)
    return TrunkHorde(
        questions, network, optax.sgd(0.01), head_optimizer=optax.sgd(0.05), reward_rate=rate
    )


def _layers(model):
    (l1, l2) = model.layers
    return l1.weight, l1.bias, l2.weight, l2.bias


@pytest.mark.slow
@pytest.mark.parametrize("traced", [True, False])
def test_trunk_horde_equals_the_transcription(x64, traced):
    """Every demon's `Rbar_i` and the network after every step, with traces and on the
    trace-free path (every `gamma_i lambda_i = 0`)."""
    rng = np.random.default_rng(9)
    cumulant = rng.normal(size=(3, N + 1))
    cumulant[:, 0] = [1.0, 0.5, 0.0]  # the reward in two demons' cumulants
    gamma = np.array([0.9, 0.5, 0.0])
    lam = np.array([0.8, 0.3, 0.6]) if traced else np.zeros(3)
    horde = _trunk(cumulant, gamma, lam, RewardRate(BETA))
    assert (horde.trunk_traces is not None) == traced
    initial = [np.asarray(p) for p in _layers(horde.learner.model)]
    data = _data(10, gamma=1.0)
    after = _scan(horde, _td_steps(data))
    rates = [Rate(BETA) for _ in gamma]
    _, history = trunk_td_lambda(
        initial,
        cumulant,
        gamma,
        lam,
        *data,
        alpha=0.01,
        alpha_head=0.05,
        layer_norm=True,
        rates=rates,
    )
    ours = [np.asarray(p) for p in _layers(after.learner.model)]
    for i, layer in enumerate(ours):
        np.testing.assert_allclose(layer, np.stack([h[i] for h in history]), **TIGHT)
    want = np.stack([r.history for r in rates], axis=-1)
    np.testing.assert_allclose(after.reward_rate.estimate, want, **TIGHT)
    assert np.ptp(want[-1]) > 0.3  # one Rbar per demon


@pytest.mark.slow
def test_trunk_horde_with_held_rates_is_the_plain_rule_on_shifted_rewards(x64):
    """`Rbar_i` held at `c_i0 SHIFT` (demon i's cumulant weighs the reward by `c_i0`)
    is the plain Horde on the rewards `R - SHIFT`."""
    cumulant = np.random.default_rng(11).normal(size=(2, N + 1))
    gamma, lam = np.array([0.9, 0.5]), np.array([0.8, 0.0])
    steps = _td_steps(_data(12))
    plain = _trunk(cumulant, gamma, lam, None)
    held = _frozen(_trunk(cumulant, gamma, lam, RewardRate(BETA)), cumulant[:, 0] * SHIFT)
    _check_reduction(plain, held, steps, steps._replace(reward=steps.reward - SHIFT))


# ---------------------------------------------------------------------------------
# Configs and bad inputs


def _check_configs_and_bad_inputs(builds):
    """Each `build(rate)` round-trips its `RewardRate` through `to_config` /
    `from_config`, holds None without one, and refuses a rate that is not a
    `RewardRate`, naming `reward_rate`."""
    rate = RewardRate(0.05, 1.5, update_from="reward")
    for build in builds:
        learner = build(rate)
        again = from_config(to_config(learner), key=jax.random.key(0))
        got = again.demons.reward_rate if isinstance(again, Horde) else again.reward_rate
        assert got.update_from == "reward", type(learner).__name__
        np.testing.assert_allclose(got.estimate, 1.5)
        np.testing.assert_allclose(got.step_size, 0.05, rtol=1e-6)
        empty = build(None)
        assert (empty.demons if isinstance(empty, Horde) else empty).reward_rate is None
        with pytest.raises(TypeError, match="reward_rate"):
            build(0.1)


def test_configs_and_bad_inputs():
    _check_configs_and_bad_inputs(
        [
            lambda r: TrueOnlineTDLearner(N, reward_rate=r),
            lambda r: SwiftTDLearner(N, reward_rate=r),
            lambda r: SparseSwiftTDLearner(N, trace_capacity=3, reward_rate=r),
            lambda r: SwiftSarsa(N, 2, reward_rate=r),
            lambda r: GradientTDLearner(N, "gtd", lambda_=0.5, reward_rate=r),
        ]
    )


@pytest.mark.slow
def test_horde_configs_and_bad_inputs():
    """A `TrunkHorde`'s config holds the first demon's rate, as a `Horde`'s holds its
    first demon (here a gradient-TD one); the Horde built from it gives every demon
    that rate."""
    network = MLP(N, 2, (4,), key=jax.random.key(0))
    questions = GVFQuestion(np.eye(2, N + 1), [0.9, 0.0])
    off_policy = GVFQuestion(np.eye(2, N + 1), [0.9, 0.0], target_policy=[[0.5, 0.5]] * 2)
    build = lambda r: TrunkHorde(questions, network, aeo.lms(0.1), reward_rate=r)  # noqa: E731
    _check_configs_and_bad_inputs(
        [build, lambda r: Horde(off_policy, GradientTDLearner(N, reward_rate=r))]
    )
    assert build(RewardRate(0.1)).reward_rate.estimate.shape == (2,)  # one Rbar per demon
