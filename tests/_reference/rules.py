"""Independent float64 transcriptions of the published algorithms, for the tests.

Written as the papers write them: plain Python loops over weights `i`, NumPy float64,
nothing shared with `alberta_eqx`. The input vector `x` already includes the constant
1 of the bias when there is one.
"""

import math

import numpy as np


def lms(xs, ys, alpha):
    """LMS: w_i <- w_i + alpha delta x_i. Returns the weights after every step."""
    n = xs.shape[1]
    w = np.zeros(n)
    out = []
    for x, y in zip(xs, ys, strict=True):
        delta = y - sum(w[i] * x[i] for i in range(n))
        for i in range(n):
            w[i] += alpha * delta * x[i]
        out.append((w.copy(), np.full(n, alpha)))
    return out


def idbd(xs, ys, alpha0, theta):
    """Sutton (1992), Figure 2. Returns (w, alpha) after every step."""
    n = xs.shape[1]
    w, h, beta = np.zeros(n), np.zeros(n), np.full(n, math.log(alpha0))
    out = []
    for x, y in zip(xs, ys, strict=True):
        delta = y - sum(w[i] * x[i] for i in range(n))
        alpha = np.zeros(n)
        for i in range(n):
            beta[i] += theta * delta * x[i] * h[i]
            alpha[i] = math.exp(beta[i])
            w[i] += alpha[i] * delta * x[i]
            h[i] = h[i] * max(0.0, 1 - alpha[i] * x[i] * x[i]) + alpha[i] * delta * x[i]
        out.append((w.copy(), alpha.copy()))
    return out


def autostep(xs, ys, alpha0, mu, tau):
    """Mahmood, Sutton, Degris and Pilarski (2012), Table 1. Returns (w, alpha, v)."""
    n = xs.shape[1]
    w, h, v, alpha = np.zeros(n), np.zeros(n), np.zeros(n), np.full(n, alpha0)
    out = []
    for x, y in zip(xs, ys, strict=True):
        delta = y - sum(w[i] * x[i] for i in range(n))
        for i in range(n):
            dxh = delta * x[i] * h[i]
            v[i] = max(abs(dxh), v[i] + (1 / tau) * alpha[i] * x[i] ** 2 * (abs(dxh) - v[i]))
            if v[i] != 0:
                alpha[i] = alpha[i] * math.exp(mu * dxh / v[i])
        m = max(sum(alpha[i] * x[i] ** 2 for i in range(n)), 1.0)
        for i in range(n):
            alpha[i] = alpha[i] / m
            w[i] = w[i] + alpha[i] * delta * x[i]
            h[i] = h[i] * (1 - alpha[i] * x[i] ** 2) + alpha[i] * delta * x[i]
        out.append((w.copy(), alpha.copy(), v.copy()))
    return out


def ema_normalizer(xs, decay, eps):
    """The 0.2.x OnlineNormalizer recurrence (ALGORITHMS.md). Returns (x_hat, mean, var)."""
    mean, var = np.zeros(xs.shape[1]), np.ones(xs.shape[1])
    out = []
    for count, x in enumerate(xs, start=1):
        d = min(decay, 1 - 1 / (count + 1))
        new_mean = mean + (1 - d) * (x - mean)
        var = np.maximum(d * var + (1 - d) * (x - mean) * (x - new_mean), eps)
        mean = new_mean
        out.append(((x - mean) / (np.sqrt(var) + eps), mean.copy(), var.copy()))
    return out


def flipping_regression(seed, steps=300, n=6, scale=1.0):
    """Regression examples `(xs, ys)`: features of unequal scales, a linear target
    with noise, whose sign flips halfway so that step-sizes have something to adapt
    to (the supervised rules' tests)."""
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(steps, n)) * rng.uniform(0.3, 2.0, size=n)
    w_true = rng.normal(size=n)
    ys = (xs @ w_true + 0.3 * rng.normal(size=steps)) * scale
    # flip the target halfway so the step-sizes have something to adapt to
    ys[steps // 2 :] *= -1
    return xs, ys
