"""Independent float64 transcriptions of the TD step-size rules, for the tests.

Written as Kearney, Veeriah, Travnik, Pilarski and Sutton (2019) write them: plain
Python loops over weights `i`, NumPy float64, nothing shared with `alberta_eqx`. The
feature vectors `phi` and `phi_next` already include the constant 1 of the bias when
there is one. The trace decays with the discount of the previous transition
(`gamma_prev`, 0 before the first), so that an episode's end cuts it.
"""

import math

import numpy as np


def _transitions(phis, rewards, gammas, phis_next, lam):
    """Yield `(phi, phi_next, R, gamma, e)` per transition, with the accumulating
    trace `e_i <- gamma_prev lambda e_i + phi_i` already updated (a fresh array)."""
    n = phis.shape[1]
    e = np.zeros(n)
    gamma_prev = 0.0
    for phi, r, gamma, phi_next in zip(phis, rewards, gammas, phis_next, strict=True):
        for i in range(n):
            e[i] = gamma_prev * lam * e[i] + phi[i]
        yield phi, phi_next, r, gamma, e
        gamma_prev = gamma


def _delta(w, phi, r, gamma, phi_next):
    n = len(w)
    v = sum(w[i] * phi[i] for i in range(n))
    v_next = sum(w[i] * phi_next[i] for i in range(n)) if gamma != 0 else 0.0
    return r + gamma * v_next - v


def td_lambda(phis, rewards, gammas, phis_next, alpha, lam):
    """TD(lambda): w_i <- w_i + alpha delta e_i. Returns (w, alpha) after every step."""
    n = phis.shape[1]
    w = np.zeros(n)
    out = []
    for phi, phi_next, r, gamma, e in _transitions(phis, rewards, gammas, phis_next, lam):
        delta = _delta(w, phi, r, gamma, phi_next)
        for i in range(n):
            w[i] += alpha * delta * e[i]
        out.append((w.copy(), np.full(n, alpha)))
    return out


def tidbd(phis, rewards, gammas, phis_next, alpha0, theta, lam, semi_gradient):
    """TD-IDBD: Algorithm 3 (semi-gradient) or Algorithm 4 (ordinary gradient).
    Returns (w, alpha) after every step."""
    n = phis.shape[1]
    w, h, beta = np.zeros(n), np.zeros(n), np.full(n, math.log(alpha0))
    out = []
    for phi, phi_next, r, gamma, e in _transitions(phis, rewards, gammas, phis_next, lam):
        delta = _delta(w, phi, r, gamma, phi_next)
        alpha = np.zeros(n)
        for i in range(n):
            if semi_gradient:
                beta[i] += theta * delta * phi[i] * h[i]
            else:
                beta[i] -= theta * delta * (gamma * phi_next[i] - phi[i]) * h[i]
            alpha[i] = math.exp(beta[i])
            w[i] += alpha[i] * delta * e[i]
            if semi_gradient:
                decay = max(0.0, 1 - alpha[i] * phi[i] * e[i])
            else:
                decay = max(0.0, 1 + alpha[i] * e[i] * (gamma * phi_next[i] - phi[i]))
            h[i] = h[i] * decay + alpha[i] * delta * e[i]
        out.append((w.copy(), alpha.copy()))
    return out


def auto_tidbd(phis, rewards, gammas, phis_next, alpha0, mu, tau, lam, semi_gradient):
    """AutoTDIDBD: Autostep's normaliser and overshoot guard on TD-IDBD, with
    `d_i = phi_i` (semi-gradient) or `phi_i - gamma phi'_i`. Returns (w, alpha, v)."""
    n = phis.shape[1]
    w, h, v, alpha = np.zeros(n), np.zeros(n), np.zeros(n), np.full(n, alpha0)
    out = []
    for phi, phi_next, r, gamma, e in _transitions(phis, rewards, gammas, phis_next, lam):
        delta = _delta(w, phi, r, gamma, phi_next)
        d = [phi[i] if semi_gradient else phi[i] - gamma * phi_next[i] for i in range(n)]
        for i in range(n):
            dxh = delta * d[i] * h[i]
            v[i] = max(abs(dxh), v[i] + (1 / tau) * alpha[i] * d[i] * e[i] * (abs(dxh) - v[i]))
            if v[i] != 0:
                alpha[i] = alpha[i] * math.exp(mu * dxh / v[i])
        m = max(sum(alpha[i] * d[i] * e[i] for i in range(n)), 1.0)
        for i in range(n):
            alpha[i] = alpha[i] / m
            w[i] += alpha[i] * delta * e[i]
            h[i] = h[i] * max(0.0, 1 - alpha[i] * d[i] * e[i]) + alpha[i] * delta * e[i]
        out.append((w.copy(), alpha.copy(), v.copy()))
    return out


def random_walk_values(num_states):
    """The undiscounted values of the random walk's states 1..n, by solving the
    Bellman equations `v = P (r + v)` as a linear system."""
    p = np.zeros((num_states, num_states))
    expected_reward = np.zeros(num_states)
    for s in range(num_states):
        for step in (-1, 1):
            nxt = s + step
            if nxt < 0:
                expected_reward[s] += 0.5 * -1
            elif nxt >= num_states:
                expected_reward[s] += 0.5 * 1
            else:
                p[s, nxt] += 0.5
    return np.linalg.solve(np.eye(num_states) - p, expected_reward)


def td_lambda_cut(phis, rewards, gammas, phis_next, truncated, alpha, lam, replacing=False):
    """TD(lambda) with time limits: a truncated transition bootstraps with its own
    discount, and the next transition starts a new episode, so its trace starts
    afresh (`gamma_prev = 0`). With `replacing`, the replacing trace for binary
    features (Sutton and Barto 2018, sec. 12.3): `e_i = 1` where `phi_i = 1`, else
    `gamma_prev lambda e_i`. Returns the weights after every step."""
    n = phis.shape[1]
    w, e = np.zeros(n), np.zeros(n)
    gamma_prev = 0.0
    out = []
    for phi, r, gamma, phi_next, cut in zip(
        phis, rewards, gammas, phis_next, truncated, strict=True
    ):
        for i in range(n):
            if replacing and phi[i] == 1:
                e[i] = 1.0
            else:
                e[i] = gamma_prev * lam * e[i] + phi[i]
        delta = _delta(w, phi, r, gamma, phi_next)
        for i in range(n):
            w[i] += alpha * delta * e[i]
        gamma_prev = 0.0 if cut else gamma
        out.append(w.copy())
    return out
