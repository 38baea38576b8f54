"""Baird's counterexample (Sutton & Barto 2018, Example 11.1) in NumPy float64, for
the tests and the reference runs: the book's MDP, features and starting weights, the
errors sqrt(VE) and sqrt(PBE), semi-gradient off-policy TD(0) and the behaviour's
transitions. Nothing shared with `alberta_eqx`."""

import numpy as np

GAMMA = 0.99
X = np.zeros((7, 8))
X[np.arange(6), np.arange(6)], X[:6, 7] = 2, 1
X[6, 6], X[6, 7] = 1, 2
W0 = np.array([1, 1, 1, 1, 1, 1, 10, 1.0])


def errors(w):
    """(sqrt VE, sqrt PBE) of weights `(..., 8)` with mu uniform: the true values are
    0; `delta_bar(s) = gamma v(7) - v(s)`; `Pi = X (X' D X)^+ X' D`."""
    d = np.eye(7) / 7
    v = w @ X.T
    delta_bar = GAMMA * v[..., 6:7] - v
    pi = X @ np.linalg.pinv(X.T @ d @ X) @ X.T @ d
    return np.sqrt(np.mean(v**2, -1)), np.sqrt(np.sum((delta_bar @ pi.T) ** 2 / 7, -1))


def td0_step(w, x, x_next, rho, alpha):
    """One step of semi-gradient off-policy TD(0) (eq. 11.2, reward 0):
    `w += alpha rho delta x`, over leading run axes (`rho` has them alone)."""
    delta = GAMMA * (w * x_next).sum(-1) - (w * x).sum(-1)
    return w + alpha * np.asarray(rho)[..., None] * delta[..., None] * x


def td0(w, transitions, alpha):
    """`td0_step` over the transitions `(s, s', rho)` from the weights `w`."""
    for s, s2, rho in transitions:
        w = td0_step(w, X[s], X[s2], rho, alpha)
    return w


def data(transitions):
    """Transitions `(s, s', rho)` (reward 0) as the TD transcriptions' features,
    rewards, discounts, next features and ratios (`tests._reference.gradient_td`)."""
    s, s2, rho = (np.array(a) for a in zip(*transitions, strict=True))
    return X[s], np.zeros(len(s)), np.full(len(s), GAMMA), X[s2], rho


def transitions(seed, n):
    """Behaviour: solid (to the lower state, rho = 7) with probability 1/7, else
    dashed (to a uniform upper state, rho = 0); the first state uniform."""
    rng = np.random.default_rng(seed)
    s, out = rng.integers(7), []
    for _ in range(n):
        if rng.random() < 1 / 7:
            s2, rho = 6, 7.0
        else:
            s2, rho = rng.integers(6), 0.0
        out.append((s, s2, rho))
        s = s2
    return out
