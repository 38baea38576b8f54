"""SwiftTD and True Online TD(lambda) as Horde demons: a Horde of them, in one compiled
scan, equals the same learners run alone on each demon's transitions."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from alberta_eqx.gvf import GVFQuestion, Horde
from alberta_eqx.runners import run_learning_loop
from alberta_eqx.streams import TDTimeStep
from alberta_eqx.streams.random_walk import RandomWalkChainStream
from alberta_eqx.td import SwiftTDLearner, TrueOnlineTDLearner


@eqx.filter_jit
def _alone(learner, timesteps):
    final, _ = jax.lax.scan(lambda m, t: (m.learn(t)[0], None), learner, timesteps)
    return final


@pytest.mark.slow
def test_swifttd_and_true_online_demons_agree_with_demons_alone(x64):
    stream, k, steps = RandomWalkChainStream(19), 3, 400
    rng = np.random.default_rng(0)
    questions = GVFQuestion(
        cumulant=rng.normal(size=(k, 20)), gamma=[0.0, 0.5, 0.9], lambda_=[0.0, 0.8, 0.95]
    )
    key = jax.random.key(1)
    ts, _ = eqx.filter_jit(stream.chunk)(stream.init(key), jnp.asarray(0), steps)
    signals = np.concatenate([np.asarray(ts.reward)[:, None], np.asarray(ts.next_observation)], 1)
    live = np.asarray(ts.discount) > 0
    c, g, lam = (np.asarray(a) for a in (questions.cumulant, questions.gamma, questions.lambda_))
    demons = {
        "SwiftTD": lambda lam: SwiftTDLearner(19, lam, initial_step_size=0.05),
        "True Online TD": lambda lam: TrueOnlineTDLearner(19, 0.1, lam),
    }
    for name, make in demons.items():
        horde = Horde(questions, make(0.0))
        result = run_learning_loop(horde, stream, steps, key)
        assert result.metrics.error.shape == (steps, k)
        for i in range(k):
            # demon i's transitions: C_i = c_i . (R, x'), gamma_i [d > 0]
            alone = _alone(
                make(lam[i]),
                TDTimeStep(
                    ts.observation,
                    jnp.asarray(signals @ c[i]),
                    jnp.asarray(np.where(live, g[i], 0.0)),
                    ts.next_observation,
                ),
            )
            demon = result.learner.demon(f"demon_{i}")
            np.testing.assert_allclose(demon.weights, alone.weights, rtol=1e-9, atol=1e-12)
        assert np.abs(np.asarray(result.learner.demons.weights)).max() > 0.1, name
    swift = Horde(questions, demons["SwiftTD"](0.0))
    assert swift.step_size_snapshot().step_sizes.shape == (k, 19)


def test_an_on_policy_demon_refuses_off_policy_questions():
    questions = GVFQuestion(np.zeros((2, 4)), [0.5, 0.5], target_policy=[[0.5, 0.5]] * 2)
    with pytest.raises(ValueError, match="SwiftTDLearner demon learns on-policy only"):
        Horde(questions, SwiftTDLearner(3))
    with pytest.raises(ValueError, match="TrueOnlineTDLearner demon learns on-policy only"):
        Horde(questions, TrueOnlineTDLearner(3))


def test_a_swifttd_horde_round_trips_its_config():
    from alberta_eqx.config import from_config, to_config

    questions = GVFQuestion(np.zeros((2, 4)), [0.5, 0.2], [0.1, 0.9])
    horde = from_config(to_config(Horde(questions, SwiftTDLearner(3, initial_step_size=0.03))))
    assert isinstance(horde.demons, SwiftTDLearner)
    np.testing.assert_allclose(horde.demons.lambda_, [0.1, 0.9], rtol=1e-6)
    np.testing.assert_allclose(horde.demons.initial_step_size, [0.03, 0.03], rtol=1e-6)
