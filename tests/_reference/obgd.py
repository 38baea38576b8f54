"""Independent float64 transcriptions of ObGD and AdaptiveObGD (Elsayed, Vasan and
Mahmood 2024, Algorithm 3 and Appendix B), written as the authors' `optim.py` writes
them (a trace per weight, decayed by a constant `gamma * lambda` and zeroed after the
last step of an episode), for a linear value function `v = w . x` whose input `x`
already holds the constant 1 of a bias. Nothing is shared with `alberta_eqx`.
"""

import math

import numpy as np


def _td_error(w, x, r, gamma_next, x_next):
    n = len(w)
    v = sum(w[i] * x[i] for i in range(n))
    v_next = sum(w[i] * x_next[i] for i in range(n)) if gamma_next != 0 else 0.0
    return r + gamma_next * v_next - v


def obgd(xs, rewards, discounts, xs_next, w0, alpha, kappa, gamma, lam):
    """ObGD TD(lambda). `discounts[t]` is `gamma` or 0 where the episode ends after
    step t. Returns the weights and the effective step-size after every step."""
    n = len(w0)
    w, e = np.array(w0, float), np.zeros(n)
    out = []
    for x, r, g, x_next in zip(xs, rewards, discounts, xs_next, strict=True):
        delta = _td_error(w, x, r, g, x_next)
        z_sum = 0.0
        for i in range(n):
            e[i] = gamma * lam * e[i] + x[i]  # the gradient of v is x
            z_sum += abs(e[i])
        delta_bar = max(abs(delta), 1.0)
        dot_product = delta_bar * z_sum * alpha * kappa
        step_size = alpha / dot_product if dot_product > 1 else alpha
        for i in range(n):
            w[i] += step_size * delta * e[i]
        if g == 0:  # reset=done
            e[:] = 0.0
        out.append((w.copy(), step_size))
    return out


def adaptive_obgd(xs, rewards, discounts, xs_next, w0, alpha, kappa, gamma, lam, beta2, eps):
    """AdaptiveObGD TD(lambda), as `obgd`. Returns the weights after every step."""
    n = len(w0)
    w, e, v = np.array(w0, float), np.zeros(n), np.zeros(n)
    out = []
    for counter, (x, r, g, x_next) in enumerate(
        zip(xs, rewards, discounts, xs_next, strict=True), start=1
    ):
        delta = _td_error(w, x, r, g, x_next)
        z_sum = 0.0
        for i in range(n):
            e[i] = gamma * lam * e[i] + x[i]
            v[i] = beta2 * v[i] + (1 - beta2) * (delta * e[i]) ** 2
            v_hat = v[i] / (1 - beta2**counter)
            z_sum += abs(e[i] / math.sqrt(v_hat + eps))
        delta_bar = max(abs(delta), 1.0)
        dot_product = delta_bar * z_sum * alpha * kappa
        step_size = alpha / dot_product if dot_product > 1 else alpha
        for i in range(n):
            v_hat = v[i] / (1 - beta2**counter)
            w[i] += step_size * delta * e[i] / math.sqrt(v_hat + eps)
        if g == 0:
            e[:] = 0.0
        out.append(w.copy())
    return out


def bound(update, delta, kappa):
    """The bound on any update `u` (a list of arrays): `u / max(kappa max(|delta|, 1)
    ||u / delta||_1, 1)`, for `delta != 0`."""
    l1 = sum(float(np.sum(np.abs(np.asarray(u) / delta))) for u in update)
    scale = 1.0 / max(kappa * max(abs(delta), 1.0) * l1, 1.0)
    return [scale * np.asarray(u) for u in update]


def sparse_zero_count(fan_in, sparsity):
    """How many incoming weights of each unit sparse initialisation zeroes."""
    return math.ceil(sparsity * fan_in)
