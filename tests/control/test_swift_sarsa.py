"""Swift-Sarsa and the operant conditioning benchmark: the agent's step against a float64
NumPy transcription of Swift-Sarsa (SwiftTD's dense rule over per-action weight
blocks), and, with the step-size optimisation, the bound and the decay off, against a
transcription of True Online Sarsa(lambda) (Sutton and Barto 2018, section 12.7, the box);
the environment against its specification; and, at reduced size, the benchmark's
qualitative result."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from alberta_eqx.control import ControlTransition, SwiftSarsa, run_operant
from alberta_eqx.streams.operant import OperantConditioning, OperantParams

K, N = 3, 6  # actions, features


def _transitions(seed, steps=300):
    """Random signed features, actions, rewards; discount 0.9 with episode ends
    (discount 0) and a few truncations."""
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(steps + 1, N)) * (rng.uniform(size=(steps + 1, N)) < 0.6)
    actions = rng.integers(0, K, size=steps + 1)
    rewards = rng.normal(size=steps) + (actions[:-1] == 0)
    discounts = np.where(rng.uniform(size=steps) < 0.05, 0.0, 0.9)
    truncated = (rng.uniform(size=steps) < 0.03) & (discounts != 0)
    assert (discounts == 0).any() and truncated.any()
    return xs[:-1], actions[:-1], rewards, discounts, xs[1:], actions[1:], truncated


@eqx.filter_jit
def _agent_run(agent, data):
    """The agent's `learn` over the transitions: weights after each step and the
    predictions (one compiled program for every test that gives it the same shapes)."""

    def step(agent, t):
        agent, result = agent.learn(*t)
        return agent, (agent.weights, result.prediction)

    x, a, r, g, xn, an, tr = data
    f = lambda v: jnp.asarray(v, agent.learner.weights.dtype)  # noqa: E731
    steps = (f(x), jnp.asarray(a), f(r), f(g), f(xn), jnp.asarray(an), jnp.asarray(tr))
    return jax.lax.scan(step, agent, steps)


def swift_sarsa_reference(data, lam, alpha0, eta, decay, theta):
    """Swift-Sarsa in float64 NumPy, one transition `(S, A, R, gamma, S', A')` at a
    time, over per-action weight blocks `w[a]`: the traces take `x(S, A)` in (every
    step-size scaled by `eta / max(eta, sum alpha x^2)`; where the bound binds the
    meta-traces are reset and the active step-sizes decay), then the weights, the
    step-sizes and the meta-traces learn from `delta = R + gamma q(S', A') - q_old`
    and every trace decays by `gamma lambda`. Episode starts cut the traces."""
    x_all, a_all, r_all, g_all, xn_all, an_all, tr_all = data
    shape = (K, N)
    w, z, z_delta, delta_w, p, z_bar, h, h_old, h_temp = (np.zeros(shape) for _ in range(9))
    beta = np.full(shape, np.log(alpha0))
    v_old, gamma_prev, binds = 0.0, 0.0, 0
    weights, predictions = [], []
    for t in range(len(r_all)):
        x = np.zeros(shape)
        x[a_all[t]] = x_all[t]
        xn = np.zeros(shape)
        xn[an_all[t]] = xn_all[t]
        if gamma_prev == 0:  # an episode starts
            z[:], p[:], z_bar[:] = 0, 0, 0
            v_delta, v_old = 0.0, np.sum(w * x)
        else:  # the change the last update made to q(S, A)
            v_delta = np.sum(delta_w * x)
        # take x(S, A) in
        alpha = np.exp(beta)
        rate, b = np.sum(alpha * x * x), np.sum(z * x)
        z_delta = eta / max(eta, rate) * alpha * x
        z = z + z_delta * (1 - b)
        p = p + h_old * x
        z_bar = z_bar + z_delta * (1 - b - z_bar * x)
        h_temp = h - h_old * x * (z - z_delta) - h * z_delta * x
        if rate > eta:
            binds += 1
            h, h_old, h_temp, z_bar = (np.zeros(shape) for _ in range(4))
            beta = beta + np.log(decay) * x * x
        # learn
        gamma = g_all[t]
        v_next = 0.0 if gamma == 0 else np.sum(w * xn)
        delta = r_all[t] + gamma * v_next - v_old
        predictions.append(v_old)
        delta_w = delta * z - z_delta * v_delta
        w = w + delta_w
        beta = beta + theta / np.exp(beta) * (delta - v_delta) * p
        beta = np.where(np.exp(beta) > eta, np.log(eta), beta)
        h_old, h = h, h_temp + delta * z_bar - z_delta * v_delta
        h_temp = h
        z, p, z_bar = (gamma * lam * v for v in (z, p, z_bar))
        v_old, gamma_prev = v_next, (0.0 if tr_all[t] else gamma)
        weights.append(w.copy())
    return np.array(weights), np.array(predictions), np.exp(beta), binds


def true_online_sarsa_reference(data, lam, alpha):
    """True Online Sarsa(lambda) (Sutton and Barto 2018, section 12.7) in float64 NumPy, over
    state-action features `x(s, a)` (`x(s)` in the block of `a`)."""
    x_all, a_all, r_all, g_all, xn_all, an_all, tr_all = data
    w, z = np.zeros(K * N), np.zeros(K * N)
    q_old, gamma_prev = 0.0, 0.0
    weights = []
    for t in range(len(r_all)):
        x = np.zeros(K * N)
        x[a_all[t] * N : (a_all[t] + 1) * N] = x_all[t]
        xn = np.zeros(K * N)
        xn[an_all[t] * N : (an_all[t] + 1) * N] = xn_all[t]
        if gamma_prev == 0:
            z[:], q_old = 0, 0.0
        gamma = g_all[t]
        q, q_next = w @ x, (0.0 if gamma == 0 else w @ xn)
        delta = r_all[t] + gamma * q_next - q
        z = gamma_prev * lam * z + (1 - alpha * gamma_prev * lam * (z @ x)) * x
        w = w + alpha * (delta + q - q_old) * z - alpha * (q - q_old) * x
        q_old, gamma_prev = q_next, (0.0 if tr_all[t] else gamma)
        weights.append(w.reshape(K, N))
    return np.array(weights)


@pytest.mark.parametrize(
    "lam, alpha0, eta, decay, theta, binding",
    [(0.9, 0.05, 0.1, 0.99, 1e-2, True), (0.7, 0.01, 1.0, 0.999, 1e-2, False)],
)
def test_matches_float64_transcription(lam, alpha0, eta, decay, theta, binding):
    data = _transitions(0)
    w_ref, v_ref, alpha_ref, binds = swift_sarsa_reference(data, lam, alpha0, eta, decay, theta)
    # the first setting's bound binds on many steps (the decay and the resets act), the
    # second's never does (the meta-gradient alone moves the step-sizes)
    assert (binds > 10) == binding and (binds == 0) != binding
    with jax.enable_x64(True):
        agent = SwiftSarsa(
            N,
            K,
            lambda_=lam,
            initial_step_size=alpha0,
            max_step_size=eta,
            step_size_decay=decay,
            meta_step_size=theta,
            dtype=jnp.float64,
        )
        agent, (w, v) = _agent_run(agent, data)
        alpha = np.asarray(agent.step_sizes)
    np.testing.assert_allclose(v, v_ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(w, w_ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(alpha, alpha_ref, rtol=1e-9)
    assert not np.allclose(alpha_ref, alpha0)  # the step-sizes did move


def test_is_true_online_sarsa_without_step_size_optimisation():
    data = _transitions(1)
    alpha = 0.02
    w_ref = true_online_sarsa_reference(data, 0.8, alpha)
    with jax.enable_x64(True):
        agent = SwiftSarsa(
            N,
            K,
            lambda_=0.8,
            initial_step_size=alpha,
            max_step_size=1e6,
            step_size_decay=1.0,
            meta_step_size=0.0,
            dtype=jnp.float64,
        )
        _, (w, _) = _agent_run(agent, data)
    np.testing.assert_allclose(w, w_ref, rtol=1e-10, atol=1e-13)


@eqx.filter_jit
def _update_and_learn(agent, x):
    """A first step by `learn`; then `update` (the control loop's call) and, from the
    same agent, `learn` on the transition `update` saw, with its next action."""
    one, two, no = jnp.asarray(1), jnp.asarray(2), jnp.asarray(False)
    agent, _ = agent.learn(x, one, jnp.float32(1.0), jnp.float32(0.9), x, one, no)
    transition = ControlTransition(x, two, jnp.float32(0.5), x, no, no)
    new, next_action = agent.update(jax.random.key(0), transition)
    same, _ = agent.learn(x, two, jnp.float32(0.5), jnp.float32(0.99), x, next_action, no)
    return agent.values(x), new.weights, next_action, same.weights


def test_update_draws_next_action_from_values_before_learning():
    """`update` bootstraps from the ε-greedy action it returns (greedy here), drawn with
    the weights before the update, and learns like `learn`."""
    agent = SwiftSarsa(N, K, exploration=0.0, initial_step_size=0.1)
    x = jnp.arange(N, dtype=jnp.float32) / N
    q, new, next_action, same = _update_and_learn(agent, x)
    assert int(next_action) == int(jnp.argmax(q)) == 1
    np.testing.assert_array_equal(new, same)


def test_matches_the_authors_package_where_the_forms_agree():
    """Against the authors' `swiftsarsa` package (0.1.6, `SwiftSarsa`, float32) where
    its sparse form and our dense form compute the same: binary features, a continuing
    stream, no trace cut (`epsilon = 0`) and a bound that never binds, with the
    step-sizes meta-learned. The package's `learn(x_t, r_t, gamma, a_t)` returns
    `q(x_t, a_t)` before its update, our transition `t`'s prediction."""
    package = pytest.importorskip(
        "swiftsarsa", reason="the authors' swiftsarsa package (wheels for CPython 3.11 on Linux)"
    )
    rng = np.random.default_rng(0)
    steps, gamma, lam, alpha0, eta, decay, theta = 600, 0.9, 0.8, 0.01, 10.0, 0.99, 1e-2
    xs = (rng.uniform(size=(steps + 1, N)) < 0.4).astype(np.float32)
    actions = rng.integers(0, K, size=steps + 1)
    rewards = (rng.normal(size=steps + 1) + (actions == 0)).astype(np.float32)
    reference = package.SwiftSarsa(N, K, lam, alpha0, theta, eta, decay, 0.0, 1e-8)
    values = []
    for x, r, a in zip(xs, rewards, actions, strict=True):
        pairs = [(int(i), 1.0) for i in np.flatnonzero(x)]
        values.append(reference.learn(pairs, float(r), gamma, int(a)))
    agent = SwiftSarsa(
        N,
        K,
        discount=gamma,
        lambda_=lam,
        initial_step_size=alpha0,
        max_step_size=eta,
        step_size_decay=decay,
        meta_step_size=theta,
        epsilon=0.0,
    )
    f = lambda v: jnp.asarray(v, jnp.float32)  # noqa: E731
    no = np.zeros(steps, bool)
    data = (xs[:-1], actions[:-1], rewards[1:], np.full(steps, gamma), xs[1:], actions[1:], no)
    agent, (_, v) = _agent_run(agent, data)
    values = np.array(values)
    assert np.abs(np.asarray(agent.step_sizes) - alpha0).max() > 0.02  # meta-learned
    np.testing.assert_allclose(v, values[:-1], rtol=1e-5, atol=1e-5 * np.sqrt(np.mean(values**2)))
    last = [(int(i), 1.0) for i in np.flatnonzero(xs[-1])]
    np.testing.assert_allclose(agent.values(f(xs[-1])), reference.get_action_values(last), 1e-5)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(exploration=1.5), "exploration"),
        (dict(exploration=-0.1), "exploration"),
        (dict(lambda_=1.2), "lambda_"),
        (dict(max_step_size=0.0), "max_step_size"),
        (dict(step_size_decay=0.0), "step_size_decay"),
        (dict(step_size_decay=1.5), "step_size_decay"),
        (dict(initial_step_size=-1.0), "initial_step_size"),
        (dict(meta_step_size=-1.0), "meta_step_size"),
        (dict(discount=0.0), "discount"),
        (dict(feature_dim=0), "feature_dim"),
        (dict(num_actions=0), "num_actions"),
    ],
)
def test_bad_hyperparameters_are_refused(kwargs, name):
    args = dict(feature_dim=N, num_actions=K) | kwargs
    with pytest.raises(ValueError, match=name):
        SwiftSarsa(**args)


# -- the environment


@eqx.filter_jit
def _roll(env, params, steps, seed):
    """`steps` steps with uniformly random actions: the states stepped from, the
    actions, the rewards and the observations reached."""
    reset_key, key = jax.random.split(jax.random.fold_in(jax.random.key(0), seed))
    _, state = env.reset(reset_key, params)

    def body(state, k):
        action_key, step_key = jax.random.split(k)
        action = jax.random.randint(action_key, (), 0, env.num_actions)
        obs, new, reward, term, trunc, _ = env.step(step_key, state, action, params)
        return new, (state, action, reward, obs, term | trunc)

    _, out = jax.lax.scan(body, state, jax.random.split(key, steps))
    return out


@pytest.fixture(scope="module")
def rolled():
    env = OperantConditioning(40, 3)
    rolls = [_roll(env, OperantParams(jnp.asarray(c)), 3000, s) for s, c in enumerate((0.0, 0.05))]
    return env, *(jax.tree.map(np.asarray, r) for r in rolls)


@pytest.mark.slow
def test_environment_dynamics(rolled):
    env, (states, actions, rewards, obs, ends), _ = rolled
    # reward 1 exactly when the action is the cue of the state it was taken in
    np.testing.assert_array_equal(rewards, (actions == states.cue).astype(rewards.dtype))
    assert not ends.any()  # continuing
    # the observation: the cue one-hot, then the noise signals
    cues = obs[:, : env.num_actions]
    np.testing.assert_array_equal(cues.sum(axis=1), 1)
    np.testing.assert_array_equal(np.argmax(cues, axis=1)[:-1], states.cue[1:])
    np.testing.assert_array_equal(obs[:-1, env.num_actions :], states.noise[1:])
    # the cue is uniform over the actions
    frequencies = np.bincount(states.cue, minlength=env.num_actions) / len(states.cue)
    assert np.abs(frequencies - 1 / 3).max() < 4 * np.sqrt(2 / 9 / len(states.cue))
    # without changes the probabilities stay, and each noise signal is on with its own
    p = states.noise_probabilities
    np.testing.assert_array_equal(p, np.broadcast_to(p[0], p.shape))
    on = states.noise.mean(axis=0)
    assert np.all(np.abs(on - p[0]) < 4.5 * np.sqrt(p[0] * (1 - p[0]) / len(on)) + 1e-3)
    assert p[0].min() < 0.2 and p[0].max() > 0.8  # drawn from [0, 1]


def test_noise_probabilities_change_at_their_rate(rolled):
    _, _, (states, *_) = rolled
    p = states.noise_probabilities
    changed = (p[1:] != p[:-1]).mean()
    assert abs(changed - 0.05) < 4 * np.sqrt(0.05 * 0.95 / p[1:].size)
    fresh = p[1:][p[1:] != p[:-1]]
    assert abs(fresh.mean() - 0.5) < 0.05 and fresh.min() >= 0 and fresh.max() <= 1


def test_environment_arguments_are_checked():
    with pytest.raises(ValueError, match="num_signals"):
        OperantConditioning(3, 3)
    with pytest.raises(ValueError, match="num_actions"):
        OperantConditioning(10, 0)


# -- the benchmark's qualitative result, reduced


@pytest.mark.slow
@pytest.mark.optimized
def test_swift_sarsa_is_robust_where_fixed_step_size_sarsa_is_not():
    """100 signals (2 cues, 98 noise), 8,000 steps, 3 seeds, ε = 0.1 (the optimum is
    0.95 a step): from every initial step-size in 1e-4 ... 1e-1 Swift-Sarsa's reward in
    the last quarter is near the optimum and its largest weights are the cued
    action's cue weights; True Online Sarsa(lambda) with the step-size fixed at 1e-4 or
    1e-1 stays near chance (0.5)."""
    env = OperantConditioning(100, 2)
    keys = jax.random.split(jax.random.key(0), 3)

    def run(alpha, **kwargs):
        agent = SwiftSarsa(100, 2, 0.9, 0.1, 0.8, alpha, **kwargs)
        return run_operant(agent, env, keys, 8000, 4)

    for alpha in (1e-4, 1e-3, 1e-2, 1e-1):
        rewards, agents = run(alpha, max_step_size=0.1, meta_step_size=1e-3)
        assert rewards[:, -1].min() > 0.92, (alpha, rewards)
        w = np.asarray(agents.weights)  # (seeds, actions, signals)
        cue = w[:, [0, 1], [0, 1]]
        assert (cue.min(axis=1) > np.abs(w[:, :, 2:]).max(axis=(1, 2))).all(), alpha
    for alpha in (1e-4, 1e-1):
        fixed = dict(max_step_size=1e6, step_size_decay=1.0, meta_step_size=0.0)
        rewards, _ = run(alpha, **fixed)
        assert rewards[:, -1].max() < 0.6, (alpha, rewards)
