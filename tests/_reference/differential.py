"""Average-reward control and reward centering, transcribed in float64 NumPy from the
sources, for the tests of `alberta_eqx.control`'s differential agents:

- `differential_sarsa`: Sutton and Barto (2018), section 10.3, the box "Differential
  semi-gradient Sarsa for estimating q", with binary tile features (`grad q(S, A, w)`
  is the indicator of the active tiles) and, for lambda > 0, the replacing traces of
  the box "Sarsa(lambda) with binary features and linear function approximation"
  (section 12.7), the TD error being the differential one;
- `differential_q_learning`: Wan, Naik and Sutton (2021), "Learning and Planning in
  Average-Reward Markov Decision Processes", equations (5)-(6), tabular.
- `centered_sarsa`: Naik, Wan, Tomar and Sutton (2024), "Reward Centering": the
  discounted rule with `R - Rbar` in its TD error, `Rbar` updated by simple
  (`Rbar += beta (R - Rbar)`) or value-based (`Rbar += beta delta`) centering.

Each takes a recorded trajectory `(S, A, R, S', A')` of a continuing task and returns
the weights and `Rbar` after every transition.
"""

import numpy as np

from tests._reference.tiles import tiles


def differential_sarsa(trajectory, scale, num_tilings, size, alpha, beta, lam):
    w, z, r_bar = np.zeros(size), np.zeros(size), 0.0

    def F(s, a):
        return tiles(size, num_tilings, list(np.asarray(s, np.float64) * scale), [int(a)])

    weights, rates = [], []
    for s, a, r, s_next, a_next in trajectory:
        # delta <- R - Rbar + q(S', A', w) - q(S, A, w)
        delta = r - r_bar + sum(w[i] for i in F(s_next, a_next)) - sum(w[i] for i in F(s, a))
        for i in F(s, a):
            z[i] = 1.0  # replacing traces
        r_bar = r_bar + beta * delta  # Rbar <- Rbar + beta delta
        w = w + alpha * delta * z  # w <- w + alpha delta z  (z = grad q at lambda = 0)
        z = lam * z  # gamma = 1
        weights.append(w.copy())
        rates.append(r_bar)
    return np.asarray(weights), np.asarray(rates)


def differential_q_learning(trajectory, num_states, num_actions, alpha, eta):
    """`trajectory` of integer states `(s, a, r, s_next)`."""
    Q, r_bar = np.zeros((num_states, num_actions)), 0.0
    tables, rates = [], []
    for s, a, r, s_next in trajectory:
        delta = r - r_bar + Q[s_next].max() - Q[s, a]  # (5)
        Q[s, a] += alpha * delta
        r_bar += eta * alpha * delta  # (6)
        tables.append(Q.copy())
        rates.append(r_bar)
    return np.asarray(tables), np.asarray(rates)


def centered_sarsa(trajectory, scale, num_tilings, size, alpha, beta, gamma, simple, watkins):
    """One-step Sarsa (or, `watkins`, Q-learning) with reward centering, tile-coded."""
    w, r_bar = np.zeros(size), 0.0

    def F(s, a):
        return tiles(size, num_tilings, list(np.asarray(s, np.float64) * scale), [int(a)])

    def q(s, a):
        return sum(w[i] for i in F(s, a))

    weights, rates = [], []
    for s, a, r, s_next, a_next in trajectory:
        target = max(q(s_next, b) for b in (0, 1)) if watkins else q(s_next, a_next)
        delta = r - r_bar + gamma * target - q(s, a)
        r_bar = r_bar + beta * ((r - r_bar) if simple else delta)
        x = np.zeros(size)
        x[F(s, a)] = 1.0  # grad q(S, A): the active tiles (a collision counts once)
        w = w + alpha * delta * x
        weights.append(w.copy())
        rates.append(r_bar)
    return np.asarray(weights), np.asarray(rates)
