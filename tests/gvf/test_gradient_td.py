"""Gradient-TD and off-policy TD against independent float64 NumPy transcriptions of
their papers, 300 transitions each (random features, random ratios, episode ends);
the identities between them; next features ignored where the discount is 0, alone
and in a Horde; importance ratios and their errors."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from alberta_eqx.gvf import GradientTDLearner, GVFQuestion, Horde, check_policy, importance_ratio
from alberta_eqx.optimizers import LMS
from alberta_eqx.streams import OffPolicyTimeStep
from alberta_eqx.td import TDLinearLearner
from tests._reference.gradient_td import gq_lambda as np_gq_lambda
from tests._reference.gradient_td import gtd2 as np_gtd2
from tests._reference.gradient_td import gtd_lambda as np_gtd_lambda
from tests._reference.gradient_td import offpolicy_td as np_offpolicy_td
from tests._reference.gradient_td import tdc as np_tdc

N, T = 5, 300


def _data(seed, on_policy=False):
    """Random transitions: features, rewards, discounts (0.9, or 0 at ~10% episode
    ends, where the next features are zeroed), importance ratios from random policy
    probabilities (a quarter of the target probabilities 0)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(T, N))
    x_next = rng.normal(size=(T, N))
    rewards = rng.normal(size=T)
    gammas = np.where(rng.random(T) < 0.1, 0.0, 0.9)
    x_next[gammas == 0] = 0
    b = rng.uniform(0.2, 1.0, T)
    pi = np.where(rng.random(T) < 0.25, 0.0, rng.uniform(0.0, 1.0, T))
    if on_policy:
        pi = b
    actions = rng.integers(0, 3, T)
    return x, rewards, gammas, x_next, b, pi, actions


def _with_bias(x, gammas=None):
    return np.concatenate([x, np.ones((len(x), 1))], axis=1)


def _run(learner, data, jit=False):
    """The primary and secondary weights (the bias's last) after every step; with
    `jit`, compiled once per learner structure and data shapes."""
    x, rewards, gammas, x_next, b, pi, actions = data
    timesteps = OffPolicyTimeStep(
        *(jnp.asarray(a) for a in (x, actions, rewards, gammas, x_next, b, pi))
    )
    w, v = (_scan_jit if jit else _scan)(learner, timesteps)
    return np.asarray(w), np.asarray(v)


def _scan(learner, timesteps):
    def step(learner, ts):
        learner, _ = learner.learn(ts)
        full = jnp.concatenate([learner.weights, learner.bias[None]])
        secondary = jnp.concatenate([learner.secondary[0], learner.secondary[1][None]])
        return learner, (full, secondary)

    return jax.lax.scan(step, learner, timesteps)[1]


_scan_jit = eqx.filter_jit(_scan)


def _reference_data(data):
    x, rewards, gammas, x_next, b, pi, _ = data
    # the bias's next feature is 1 (its value enters through gamma, 0 at episode ends)
    return _with_bias(x), rewards, gammas, _with_bias(x_next), pi / b


@pytest.mark.parametrize("lam", [0.0, 0.8])
def test_offpolicy_td_lambda_matches_transcription(x64, lam):
    data = _data(0)
    w, _ = _run(GradientTDLearner(N, "td", 0.01, lambda_=lam), data)
    ref = np.stack(np_offpolicy_td(_reference_data(data), 0.01, lam))
    np.testing.assert_allclose(w, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    ("method", "reference"), [("tdc", np_tdc), ("gtd2", np_gtd2)], ids=["tdc", "gtd2"]
)
def test_tdc_and_gtd2_match_transcriptions(x64, method, reference):
    data = _data(1)
    w, v = _run(GradientTDLearner(N, method, 0.01, 0.05), data)
    ref = reference(_reference_data(data), 0.01, 0.05)
    np.testing.assert_allclose(w, np.stack([r[0] for r in ref]), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(v, np.stack([r[1] for r in ref]), rtol=1e-10, atol=1e-12)
    assert np.abs(w[-1]).max() > 1e-2  # it learned something


@pytest.mark.parametrize("lam", [0.0, 0.9])
def test_gtd_lambda_matches_transcription(x64, lam):
    data = _data(2)
    w, v = _run(GradientTDLearner(N, "gtd", 0.01, 0.05, lambda_=lam), data)
    ref = np_gtd_lambda(_reference_data(data), 0.01, 0.05, lam)
    np.testing.assert_allclose(w, np.stack([r[0] for r in ref]), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(v, np.stack([r[1] for r in ref]), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("lam", [0.0, 0.9])
def test_gq_lambda_matches_transcription(x64, lam):
    data = _data(3)
    alpha, eta = 0.01, 5.0
    w, v = _run(GradientTDLearner(N, "gq", alpha, alpha * eta, lambda_=lam), data)
    ref = np_gq_lambda(_reference_data(data), alpha, eta, lam)
    np.testing.assert_allclose(w, np.stack([r[0] for r in ref]), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(v, np.stack([r[1] for r in ref]), rtol=1e-10, atol=1e-12)


def test_gtd_and_gq_at_lambda_zero_are_tdc(x64):
    """On-policy (rho = 1), GTD(0) is TDC step for step; GQ(0) is TDC on action
    features with rho = 1 whatever the ratios (it never uses them at lambda = 0).
    Off-policy, GTD(0) and TDC differ only in where rho sits in the secondary update
    (Sutton & Barto sec. 11.7 vs Maei 2011), which agree in expectation over actions:
    the last check."""
    on = _data(4, on_policy=True)
    tdc = _run(GradientTDLearner(N, "tdc", 0.01, 0.05), on)
    gtd = _run(GradientTDLearner(N, "gtd", 0.01, 0.05), on)
    np.testing.assert_allclose(gtd[0], tdc[0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gtd[1], tdc[1], rtol=1e-12, atol=1e-14)

    off = _data(5)
    gq = _run(GradientTDLearner(N, "gq", 0.01, 0.05), off)
    b, actions = off[4], off[6]
    tdc_on_actions = _run(GradientTDLearner(N, "tdc", 0.01, 0.05), (*off[:4], b, b, actions))
    np.testing.assert_allclose(gq[0], tdc_on_actions[0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gq[1], tdc_on_actions[1], rtol=1e-12, atol=1e-14)

    # The secondary updates' expectations over the action, for one state x and
    # secondary weights v: E_b[rho (delta_a - v.x) x] = E_b[rho delta_a x - (v.x) x]
    # when the target policy is covered (sum_a b(a) rho(a) = 1).
    rng = np.random.default_rng(6)
    xs, v = rng.normal(size=N), rng.normal(size=N)
    b_a, pi_a, delta_a = rng.dirichlet(np.ones(3)), rng.dirichlet(np.ones(3)), rng.normal(size=3)
    rho_a = pi_a / b_a
    sb = sum(b_a[a] * rho_a[a] * (delta_a[a] - v @ xs) * xs for a in range(3))
    maei = sum(b_a[a] * (rho_a[a] * delta_a[a] - v @ xs) * xs for a in range(3))
    np.testing.assert_allclose(sb, maei, rtol=1e-12)


def test_on_policy_tdc_with_zero_secondary_step_size_is_td0(x64):
    data = _data(7, on_policy=True)
    tdc_w, tdc_v = _run(GradientTDLearner(N, "tdc", 0.01, 0.0), data)
    assert np.all(tdc_v == 0)
    x, rewards, gammas, x_next, *_ = data
    td = TDLinearLearner(N, LMS(0.01), 0.0, dtype=jnp.float64)

    def step(learner, ts):
        learner, _ = learner.learn(ts)
        return learner, jnp.concatenate([learner.weights, learner.bias[None]])

    from alberta_eqx.streams import TDTimeStep

    _, td_w = jax.lax.scan(
        step, td, TDTimeStep(*(jnp.asarray(a) for a in (x, rewards, gammas, x_next)))
    )
    np.testing.assert_allclose(tdc_w, np.asarray(td_w), rtol=1e-12, atol=1e-14)


_LAMBDAS = {"td": 0.8, "tdc": 0.0, "gtd2": 0.0, "gtd": 0.8, "gq": 0.8}


@pytest.mark.parametrize("method", list(_LAMBDAS))
def test_next_features_do_not_enter_where_the_discount_is_zero(x64, method):
    """Demons select on gamma what x' enters (v(x'), the updates' x' terms) rather than
    zeroing x', so a Horde's demons share x': where gamma = 0, whatever x' holds does
    not enter. Alone: inf/NaN there changes nothing. In a Horde (each demon its own
    gamma and target policy, cut to 0 at episode ends): every demon equals the demon
    learned alone on the same transitions with x' zeroed there."""
    data = _data(8)
    x, rewards, gammas, x_next, b, pi, actions = data
    end = gammas == 0
    junk = np.where(end[:, None], np.array([np.inf, np.nan, -np.inf, 1e300, 0.0]), x_next)
    lam = _LAMBDAS[method]
    alone = GradientTDLearner(N, method, 0.01, 0.05, lam)
    clean_w, clean_v = _run(alone, data, jit=True)
    junk_w, junk_v = _run(alone, (x, rewards, gammas, junk, b, pi, actions), jit=True)
    assert np.all(np.isfinite(junk_w)) and np.abs(clean_w[-1]).max() > 1e-2
    np.testing.assert_array_equal(junk_w, clean_w)
    np.testing.assert_array_equal(junk_v, clean_v)

    # The Horde: finite next features at episode ends (its cumulants read x' there),
    # different from the zeros the demons alone see.
    k, rng = 4, np.random.default_rng(9)
    ends_next = np.where(end[:, None], rng.normal(size=x_next.shape), x_next)
    questions = GVFQuestion(
        rng.normal(size=(k, N + 1)), rng.uniform(0.5, 0.95, k), lam, rng.dirichlet(np.ones(3), k)
    )
    horde = Horde(questions, alone)
    steps = OffPolicyTimeStep(
        *(jnp.asarray(a) for a in (x, actions, rewards, 0.9 * ~end, ends_next, b, pi))
    )
    horde, _ = jax.lax.scan(lambda h, t: (h.learn(t)[0], None), horde, steps)
    signals = np.concatenate([rewards[:, None], ends_next], axis=1)
    c, g, policies = (
        np.asarray(a) for a in (questions.cumulant, questions.gamma, questions.target_policy)
    )
    for i in range(k):
        demon_data = (
            x,
            signals @ c[i],
            np.where(end, 0.0, g[i]),
            x_next,
            b,
            policies[i][actions],
            actions,
        )
        w, v = _run(alone, demon_data, jit=True)
        demon = horde.demon(f"demon_{i}")
        np.testing.assert_allclose(demon.weights, w[-1, :N], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(demon.bias, w[-1, N], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(demon.secondary[0], v[-1, :N], rtol=1e-9, atol=1e-12)


def test_importance_ratio_and_bad_inputs():
    np.testing.assert_allclose(
        importance_ratio(jnp.array([1.0, 0.0, 0.5]), jnp.array([0.25, 0.0, 0.5])), [4.0, 0.0, 1.0]
    )
    with pytest.raises(ValueError, match="behaviour_probability is 0"):
        importance_ratio(0.5, 0.0)
    with pytest.raises(ValueError, match=r"target_probability must be in \[0, 1\]"):
        importance_ratio(1.5, 0.5)
    with pytest.raises(ValueError, match="target_policy must sum to 1"):
        check_policy("target_policy", [0.5, 0.6])
    with pytest.raises(ValueError, match="behaviour_policy must be non-negative and finite"):
        check_policy("behaviour_policy", [-0.5, 1.5])
    learner = GradientTDLearner(3)
    bad = OffPolicyTimeStep(
        jnp.ones(3),
        jnp.array(0),
        jnp.array(0.0),
        jnp.array(0.9),
        jnp.ones(3),
        jnp.array(0.0),
        jnp.array(1.0),
    )
    with pytest.raises(ValueError, match="behaviour_probability"):
        learner.learn(bad)
    with pytest.raises(ValueError, match="lambda_ must be 0 for method 'tdc'"):
        GradientTDLearner(3, "tdc", lambda_=0.5)
    with pytest.raises(ValueError, match="method must be one of"):
        GradientTDLearner(3, "gtd3")
    with pytest.raises(ValueError, match="step_size must be > 0"):
        GradientTDLearner(3, step_size=0.0)
