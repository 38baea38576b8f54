"""Sarsa(lambda) and Watkins's Q(lambda) with tile coding, transcribed in float64 NumPy
from Sutton and Barto (2018), for the tests of `alberta_eqx.control`'s linear agents.
Nothing shared with `alberta_eqx`."""

import numpy as np

from tests._reference.tiles import tiles


def sarsa_lambda(
    trajectory, scale, num_tilings, size, alpha, lam, gamma, watkins, w=None, beta=None
):
    """The box "Sarsa(lambda) with binary features and linear function approximation"
    with replacing traces, in float64, over a recorded trajectory
    `(S, A, R, terminated, truncated, S', A')`: no bootstrap from a terminal `S'`,
    the trace reset at an episode's end (terminated or truncated); Watkins's Q(lambda)
    bootstraps from the max and cuts the trace after a non-greedy A'. From weights `w`
    (default 0); with `beta`, the reward rate `Rbar` (from 0) is subtracted from every
    reward and updated by `beta delta` (section 10.3's box). Returns the weights after
    every transition and whether each recorded A' was greedy under these weights."""
    w, z, r_bar = np.zeros(size) if w is None else np.array(w, np.float64), np.zeros(size), 0.0

    def F(s, a):
        return tiles(size, num_tilings, list(np.asarray(s, np.float64) * scale), [int(a)])

    def q(s, a):
        return sum(w[i] for i in F(s, a))

    weights, greedy = [], []
    for s, a, r, terminated, truncated, s_next, a_next in trajectory:
        delta = r - r_bar
        for i in F(s, a):
            delta -= w[i]
            z[i] = 1.0  # replacing
        q_next = [q(s_next, b) for b in range(3 if len(s) == 2 else 2)]
        is_greedy = q_next[a_next] == max(q_next)
        if not terminated:
            delta += gamma * (max(q_next) if watkins else q_next[a_next])
        w = w + alpha * delta * z
        if beta is not None:
            r_bar += beta * delta
        z = 0 * z if terminated or truncated or (watkins and not is_greedy) else gamma * lam * z
        weights.append(w.copy())
        greedy.append(is_greedy)
    return np.asarray(weights), np.asarray(greedy)
