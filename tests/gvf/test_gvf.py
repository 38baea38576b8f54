"""GVF questions and the Horde: a thousand linear demons in one compiled scan agree
with the same demons learned one at a time; off-policy demons; names; bad inputs."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from alberta_eqx.gvf import GradientTDLearner, GVFQuestion, Horde
from alberta_eqx.optimizers import IDBD, LMS, Autostep
from alberta_eqx.runners import run_learning_loop, run_learning_loop_batched
from alberta_eqx.streams import OffPolicyTimeStep, TDTimeStep
from alberta_eqx.streams.baird import BairdStream
from alberta_eqx.streams.random_walk import RandomWalkChainStream
from alberta_eqx.td import TDLinearLearner


def _questions(k, n, seed, policies=None):
    rng = np.random.default_rng(seed)
    return GVFQuestion(
        cumulant=rng.normal(size=(k, n + 1)),
        gamma=rng.uniform(0, 0.95, k),
        lambda_=rng.uniform(0, 1, k),
        target_policy=policies,
    )


@eqx.filter_jit
def _alone(learner, timesteps):
    """One learner over the transitions, compiled once per structure."""
    final, _ = jax.lax.scan(lambda m, t: (m.learn(t)[0], None), learner, timesteps)
    return final


@pytest.mark.parametrize(
    "optimizer",
    [
        IDBD(0.02, meta_step_size=0.01),
        pytest.param(LMS(0.02), marks=pytest.mark.slow),
        pytest.param(Autostep(0.02), marks=pytest.mark.slow),
    ],
    ids=lambda o: type(o).__name__,
)
def test_thousand_demons_in_one_scan_agree_with_demons_alone(x64, optimizer):
    stream, k, steps = RandomWalkChainStream(19), 1000, 500
    questions = _questions(k, 19, 0)
    horde = Horde(questions, TDLinearLearner(19, optimizer))
    key = jax.random.key(1)
    result = run_learning_loop(horde, stream, steps, key)
    assert result.metrics.error.shape == (steps, k)
    assert np.all(np.isfinite(result.learner.demons.weights))

    # The same demons, one at a time, on the same transitions, with the cumulants and
    # continuations computed here in NumPy.
    ts, _ = eqx.filter_jit(stream.chunk)(stream.init(key), jnp.asarray(0), steps)
    signals = np.concatenate([np.asarray(ts.reward)[:, None], np.asarray(ts.next_observation)], 1)
    live = np.asarray(ts.discount) > 0
    c, g, lam = (np.asarray(a) for a in (questions.cumulant, questions.gamma, questions.lambda_))
    for i in np.random.default_rng(2).choice(k, 4, replace=False):
        alone = _alone(
            TDLinearLearner(19, optimizer, lam[i]),
            TDTimeStep(
                ts.observation,
                jnp.asarray(signals @ c[i]),
                jnp.asarray(np.where(live, g[i], 0.0)),
                ts.next_observation,
            ),
        )
        demon = result.learner.demon(f"demon_{i}")
        np.testing.assert_allclose(demon.weights, alone.weights, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(demon.bias, alone.bias, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(demon.step_sizes, alone.step_sizes, rtol=1e-9, atol=1e-12)
    assert np.abs(np.asarray(result.learner.demons.weights)).max() > 0.1


@pytest.mark.parametrize(
    ("optimizer", "semi_gradient"),
    [(LMS(0.05), True), (IDBD(0.05, meta_step_size=0.02), False)],
    ids=["LMS", "IDBD"],
)
def test_next_features_do_not_enter_where_the_discount_is_zero(x64, optimizer, semi_gradient):
    """A demon takes gamma v(phi') and gamma phi' by selecting on gamma (so a Horde's
    demons share phi'): where gamma = 0, whatever phi' holds (inf, NaN) does not enter."""
    rng = np.random.default_rng(7)
    steps, n = 60, 4
    discount = np.where(rng.uniform(size=steps) < 0.3, 0.0, 0.9)
    next_x = rng.normal(size=(steps, n))
    junk = np.where(discount[:, None] == 0, np.array([np.inf, np.nan, -np.inf, 1e300]), next_x)
    clean = np.where(discount[:, None] == 0, 0.0, next_x)
    x, reward = rng.normal(size=(steps, n)), rng.normal(size=steps)
    finals = [
        _alone(
            TDLinearLearner(n, optimizer, 0.7, semi_gradient=semi_gradient),
            TDTimeStep(*map(jnp.asarray, t)),
        )
        for t in ((x, reward, discount, junk), (x, reward, discount, clean))
    ]
    assert np.all(np.isfinite(finals[0].weights))
    np.testing.assert_array_equal(finals[0].weights, finals[1].weights)
    np.testing.assert_array_equal(finals[0].bias, finals[1].bias)


@pytest.mark.slow
def test_off_policy_demons_agree_with_demons_alone(x64):
    stream, k, steps = BairdStream(), 50, 300
    rng = np.random.default_rng(3)
    policies = rng.dirichlet(np.ones(2), size=k)
    questions = _questions(k, 8, 4, policies)
    horde = Horde(questions, GradientTDLearner(8, "gtd", 0.005, 0.05))
    key = jax.random.key(5)
    result = run_learning_loop(horde, stream, steps, key)
    ts, _ = eqx.filter_jit(stream.chunk)(stream.init(key), jnp.asarray(0), steps)
    signals = np.concatenate([np.asarray(ts.reward)[:, None], np.asarray(ts.next_observation)], 1)
    actions = np.asarray(ts.action)
    for i in (0, 17, 49):
        q = horde.question(f"demon_{i}")
        alone = _alone(
            GradientTDLearner(8, "gtd", 0.005, 0.05, q.lambda_),
            OffPolicyTimeStep(
                ts.observation,
                ts.action,
                jnp.asarray(signals @ np.asarray(q.cumulant)),
                jnp.full(steps, q.gamma),
                ts.next_observation,
                ts.behaviour_probability,
                jnp.asarray(policies[i][actions]),
            ),
        )
        demon = result.learner.demon(f"demon_{i}")
        np.testing.assert_allclose(demon.weights, alone.weights, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(demon.secondary[0], alone.secondary[0], rtol=1e-9, atol=1e-12)


def test_many_seeds_names_and_predictions():
    stream = RandomWalkChainStream(5)
    names = ["reward", "left", "right"]
    c = np.zeros((3, 6))
    c[0, 0], c[1, 1], c[2, 4] = 1, 1, 1  # the reward, states 1 and 4 next
    horde = Horde(GVFQuestion(c, [0.9, 0.5, 0.0], 0.5), TDLinearLearner(5, LMS(0.1)), names)
    result = run_learning_loop_batched(horde, stream, 2000, jax.random.split(jax.random.key(0), 4))
    assert result.metrics.error.shape == (4, 2000, 3)
    assert result.learner.batch_shape == (4,)
    assert result.learner.demon("left").weights.shape == (4, 5)
    one = jax.tree.map(lambda a: a[0] if eqx.is_array(a) else a, result.learner)
    values = one.named(one.predict(jnp.eye(5)[2]))
    assert set(values) == set(names)
    right = one.demon("right")
    np.testing.assert_allclose(values["right"], right.weights[2] + right.bias, rtol=1e-6)
    assert float(jnp.abs(one.demons.weights).max()) > 0.1
    with pytest.raises(KeyError, match="no demon named 'up'"):
        one.demon("up")


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="target_policy must sum to 1"):
        GVFQuestion(np.zeros((2, 4)), [0.5, 0.5], target_policy=[[0.5, 0.6], [0.5, 0.5]])
    with pytest.raises(ValueError, match="gamma must be in"):
        GVFQuestion(np.zeros((1, 4)), [1.5])
    with pytest.raises(ValueError, match="cumulant must have shape"):
        GVFQuestion(np.zeros((3, 4)), [0.5, 0.5])
    questions = GVFQuestion(np.zeros((2, 4)), [0.5, 0.5], target_policy=[[0.5, 0.5]] * 2)
    with pytest.raises(ValueError, match="a TDLinearLearner demon learns on-policy only"):
        Horde(questions, TDLinearLearner(3))
    with pytest.raises(ValueError, match="feature_dim \\+ 1 = 6"):
        Horde(questions, GradientTDLearner(5, "gtd"))
    with pytest.raises(ValueError, match="names must be 2 distinct names"):
        Horde(questions, GradientTDLearner(3, "gtd"), names=["a", "a"])
    with pytest.raises(ValueError, match="questions' lambda_ must be 0 for 'tdc' demons"):
        Horde(GVFQuestion(np.zeros((2, 4)), [0.5, 0.5], 0.5), GradientTDLearner(3, "tdc"))
    horde = Horde(questions, GradientTDLearner(3, "gtd"))
    # the behaviour policy never takes action 1, which the questions' policies do
    bad = OffPolicyTimeStep(
        jnp.ones(3), jnp.array(1), jnp.array(0.0), jnp.array(0.9), jnp.ones(3),
        jnp.array(0.0), jnp.array(1.0),
    )  # fmt: skip
    with pytest.raises(ValueError, match="behaviour_probability is 0"):
        horde.learn(bad)
    on_policy = TDTimeStep(jnp.ones(3), jnp.array(0.0), jnp.array(0.9), jnp.ones(3))
    with pytest.raises(TypeError, match="off-policy questions need an OffPolicyTimeStep"):
        horde.learn(on_policy)


def test_a_truncation_cuts_every_td_demons_traces(x64):
    """A `TDTimeStep`'s `truncated` reaches each TD demon, whose next step then starts
    its trace afresh: the Horde equals its demons alone, and differs without it."""
    questions = _questions(2, 3, 4)
    horde = Horde(questions, TDLinearLearner(3, LMS(0.1)), names=("a", "b"))
    rng = np.random.default_rng(5)
    x = rng.normal(size=(3, 3))

    def steps(truncated):
        return [
            TDTimeStep(x[0], jnp.array(1.0), jnp.array(0.9), x[1], jnp.array(truncated)),
            TDTimeStep(x[1], jnp.array(-0.5), jnp.array(0.9), x[2], jnp.array(False)),
        ]

    def run(learner, timesteps):
        for t in timesteps:
            learner = learner.learn(t)[0]
        return learner

    cut = run(horde, steps(True))
    for i, name in enumerate(horde.names):
        c, g = np.asarray(questions.cumulant[i]), float(questions.gamma[i])
        alone = [  # demon i's transition: C_i = c_i . (R, x'), gamma_i [d > 0]
            TDTimeStep(t.observation, c @ np.r_[float(t.reward), t.next_observation],
                       jnp.array(g), t.next_observation, t.truncated)
            for t in steps(True)
        ]  # fmt: skip
        demon = run(horde.demon(name), alone)
        np.testing.assert_allclose(cut.demon(name).weights, demon.weights, rtol=1e-12)
    uncut = run(horde, steps(False))
    assert not np.allclose(cut.demons.weights, uncut.demons.weights)
