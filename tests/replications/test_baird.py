"""Baird's counterexample (Sutton & Barto 2018, Example 11.1): semi-gradient
off-policy TD(0) diverges (Figure 11.2); TDC drives the projected Bellman error to 0
while sqrt(VE) stays near 2 (Figure 11.5). A float64 NumPy transcription gives the
reference numbers (10 seeds); our stream and learners follow it transition for
transition, and the JAX replication lands within sampling error of it."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from alberta_eqx.gvf import GradientTDLearner
from alberta_eqx.replications.baird import (
    BAIRD,
    at_step,
    baird,
    projected_bellman_error,
    value_error,
)
from alberta_eqx.streams.baird import BairdStream, baird_features, baird_initial_weights
from tests._reference.baird import W0, X
from tests._reference.baird import data as np_data
from tests._reference.baird import errors as np_errors
from tests._reference.baird import td0 as np_td0
from tests._reference.baird import transitions as np_transitions
from tests._reference.gradient_td import tdc as np_tdc


@pytest.mark.slow
def test_numpy_transcription_gives_the_reference_numbers():
    """The issue's float64 NumPy numbers, averaged over seeds 0..9."""
    td, tdc_1k, tdc_20k = [], [], []
    for seed in range(10):
        transitions = np_transitions(seed, 20_000)
        w = np_td0(W0, transitions[:1000], 0.01)
        td.append((np_errors(w)[0], np.linalg.norm(w)))
        w, v = np_tdc(np_data(transitions[:1000]), 0.005, 0.05, W0)[-1]
        tdc_1k.append(np_errors(w))
        w, _ = np_tdc(np_data(transitions[1000:]), 0.005, 0.05, w, v)[-1]
        tdc_20k.append(np_errors(w))
    td, tdc_1k, tdc_20k = (np.mean(a, axis=0) for a in (td, tdc_1k, tdc_20k))
    assert round(td[0]) == 561 and round(td[1]) == 423
    assert round(tdc_1k[0], 2) == 1.93 and round(tdc_1k[1], 3) == 0.099
    assert round(tdc_20k[1], 3) == 0.007
    assert 1.9 < tdc_20k[0] < 2.0  # sqrt(VE) stays near 2


def test_errors_match_the_transcription(x64):
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 8))
    ve, pbe = zip(*(np_errors(wi) for wi in w), strict=True)
    np.testing.assert_allclose(value_error(jnp.asarray(w)), ve, rtol=1e-10)
    np.testing.assert_allclose(projected_bellman_error(jnp.asarray(w)), pbe, rtol=1e-8)
    np.testing.assert_allclose(baird_features(), X)
    # the book's starting weights: sqrt(VE) = sqrt((6 * 3^2 + 12^2) / 7)
    np.testing.assert_allclose(value_error(baird_initial_weights()), np.sqrt(198 / 7))


def test_stream_and_learners_follow_the_transcription(x64):
    """The same transitions, drawn by our stream, through the transcription and
    through GradientTDLearner: identical weights after 500 steps."""
    stream = BairdStream()
    key = jax.random.key(3)
    ts, _ = eqx.filter_jit(stream.chunk)(stream.init(key), jnp.asarray(0), 500)
    feats = np.asarray(ts.observation)
    states = [int(np.flatnonzero((f == X).all(1))[0]) for f in feats]
    nexts = [int(np.flatnonzero((f == X).all(1))[0]) for f in np.asarray(ts.next_observation)]
    rho = np.asarray(ts.target_probability / ts.behaviour_probability)
    assert states[1:] == nexts[:-1]  # one trajectory
    assert set(np.round(rho, 12)) == {0.0, 7.0}
    solid = np.asarray(ts.action) == 1
    assert np.all(np.asarray(nexts)[solid] == 6) and np.all(np.asarray(nexts)[~solid] < 6)
    assert 0.1 < solid.mean() < 0.19  # 1/7
    transitions = list(zip(states, nexts, rho, strict=True))

    @eqx.filter_jit
    def run(learner):
        learner = eqx.tree_at(lambda m: m.weights, learner, jnp.asarray(W0))
        final, _ = jax.lax.scan(lambda m, t: (m.learn(t)[0], None), learner, ts)
        return final

    td = run(GradientTDLearner(8, "td", 0.01, use_bias=False))
    np.testing.assert_allclose(td.weights, np_td0(W0, transitions, 0.01), rtol=1e-9)
    tdc = run(GradientTDLearner(8, "tdc", 0.005, 0.05, use_bias=False))
    w, v = np_tdc(np_data(transitions), 0.005, 0.05, W0)[-1]
    np.testing.assert_allclose(tdc.weights, w, rtol=1e-9)
    np.testing.assert_allclose(tdc.secondary[0], v, rtol=1e-9, atol=1e-12)


@pytest.mark.slow
def test_replication_reproduces_the_figures(x64):
    """Our JAX replication, 10 seeds of our own stream: TD(0) diverges (the weights
    grow without bound, Figure 11.2); TDC's sqrt(PBE) falls to about 0.007 by 20,000
    steps while sqrt(VE) stays near 2 (Figure 11.5). The tolerances are about three
    standard errors of the 10-seed mean (per-seed spread from the transcription:
    TD(0) sqrt(VE) 560 +- 110; TDC sqrt(PBE) at 1,000 steps 0.08 +- 0.05)."""
    curves = baird(num_steps=20_000, td_steps=2_000, num_seeds=10, segment=1_000)
    s = curves.steps
    td_ve, td_w = at_step(curves.td_sqrt_ve, s, 1000), at_step(curves.td_norm_w, s, 1000)
    assert 450 < td_ve < 670 and 340 < td_w < 510
    # divergence: |w| grows without bound, every seed, segment after segment
    assert np.all(np.diff(curves.td_norm_w, axis=1) > 0)
    assert np.all(curves.td_norm_w[:, -1] > 10 * np.linalg.norm(W0))
    assert abs(at_step(curves.tdc_sqrt_ve, s, 1000) - 1.93) < 0.03
    assert 0.03 < at_step(curves.tdc_sqrt_pbe, s, 1000) < 0.17
    assert 0.005 < at_step(curves.tdc_sqrt_pbe, s, 20_000) < 0.010
    assert 1.85 < at_step(curves.tdc_sqrt_ve, s, 20_000) < 2.0
    verdicts = BAIRD.verdicts(curves, 20_000)
    assert [v.outcome for v in verdicts] == ["PASS"] * 3, [v.line() for v in verdicts]
