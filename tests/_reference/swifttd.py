"""Independent float64 transcriptions of the `swifttd` package's three forms
(`SwiftTDNonSparse`, `SwiftTD`, `SwiftTDBinaryFeatures`, Javed, Sharifnassab and
Sutton 2024), line for line from the package's `src/cpp/SwiftTD.cpp`, and of True Online
TD(lambda) (van Seijen et al. 2016, JMLR, Algorithm 1). Plain Python loops over
features, NumPy float64, nothing shared with `alberta_eqx`.

The package's objects see one observation at a time: `step(x, r)` returns
`v = w . x` and learns from the transition that ended in `x` with reward `r` (its TD
error is kept in `delta`, for the centered runs' `Rbar`).
"""

import math

import numpy as np


def _exp(value):
    """`exp`, infinite where it overflows (as C++'s `exp`; `math.exp` raises)."""
    return math.exp(value) if value < 709 else math.inf


class _State:
    def __init__(self, n, lam, alpha, gamma, eps, eta, decay, meta, eta_min):
        self.lam, self.gamma, self.eps, self.eta = lam, gamma, eps, eta
        self.decay, self.meta, self.eta_min = decay, meta, eta_min
        for name in ("w", "z", "z_delta", "delta_w", "h", "h_old", "h_temp", "z_bar", "p"):
            setattr(self, name, np.zeros(n))
        self.last_alpha = np.zeros(n)
        self.beta = np.full(n, math.log(alpha))
        self.v_old = 0.0
        self.v_delta = 0.0
        self.eligible = []  # the sparse forms' setOfEligibleItems
        self.bound_steps = 0  # steps where the bound on the rate of learning bound

    def _trace_step(self, i, delta):
        """The first loop's body for feature `i` (identical in the three forms)."""
        self.delta_w[i] = delta * self.z[i] - self.z_delta[i] * self.v_delta
        self.w[i] += self.delta_w[i]
        self.beta[i] += self.meta / _exp(self.beta[i]) * (delta - self.v_delta) * self.p[i]
        if _exp(self.beta[i]) > self.eta or math.isinf(_exp(self.beta[i])):
            self.beta[i] = math.log(self.eta)
        # sic: the package compares exp(beta) with log(eta_min)
        if _exp(self.beta[i]) < math.log(self.eta_min):
            self.beta[i] = math.log(self.eta_min)
        self.h_old[i] = self.h[i]
        self.h[i] = self.h_temp[i] + delta * self.z_bar[i] - self.z_delta[i] * self.v_delta
        self.h_temp[i] = self.h[i]
        self.z_delta[i] = 0.0
        self.z[i] *= self.gamma * self.lam
        self.p[i] *= self.gamma * self.lam
        self.z_bar[i] *= self.gamma * self.lam


class SwiftTDNonSparse(_State):
    """`SwiftTDNonSparse::Step` over a dense feature vector."""

    def step(self, x, r):
        n = len(x)
        v = sum(self.w[i] * x[i] for i in range(n))
        delta = self.delta = r + self.gamma * v - self.v_old
        for i in range(n):
            self._trace_step(i, delta)
        self.v_delta = 0.0
        tau = sum(_exp(self.beta[i]) * x[i] * x[i] for i in range(n))
        b = sum(self.z[i] * x[i] for i in range(n))
        self.bound_steps += tau > self.eta
        for i in range(n):
            self.v_delta += self.delta_w[i] * x[i]
            multiplier = self.eta / tau if tau > 0 and self.eta / tau < 1 else 1.0
            self.z_delta[i] = multiplier * _exp(self.beta[i]) * x[i]
            self.z[i] += self.z_delta[i] * (1 - b)
            self.p[i] += self.h_old[i] * x[i]
            self.z_bar[i] += self.z_delta[i] * (1 - b - self.z_bar[i] * x[i])
            self.h_temp[i] = (
                self.h[i]
                - self.h_old[i] * x[i] * (self.z[i] - self.z_delta[i])
                - self.h[i] * self.z_delta[i] * x[i]
            )
            if tau > self.eta:
                self.h_temp[i] = self.h[i] = self.h_old[i] = self.z_bar[i] = 0.0
                self.beta[i] += math.log(self.decay) * x[i] * x[i]
        self.v_old = v
        return v


class SwiftTD(_State):
    """`SwiftTD::Step` over `(index, value)` pairs; `SwiftTDBinaryFeatures::Step` is
    this with every value 1 (`step_binary`)."""

    def step(self, pairs, r):
        v = sum(self.w[i] * x for i, x in pairs)
        delta = self.delta = r + self.gamma * v - self.v_old
        position = 0
        while position < len(self.eligible):
            i = self.eligible[position]
            self._trace_step(i, delta)
            if self.z[i] <= self.last_alpha[i] * self.eps:
                self.z[i] = self.p[i] = self.z_bar[i] = self.delta_w[i] = 0.0
                self.eligible[position] = self.eligible[-1]
                self.eligible.pop()
            else:
                position += 1
        self.v_delta = 0.0
        rate = sum(_exp(self.beta[i]) * x * x for i, x in pairs)
        e = max(self.eta, rate)
        t = sum(self.z[i] * x for i, x in pairs)
        self.bound_steps += self.eta / e < 1
        for i, x in pairs:
            if self.z[i] == 0:
                self.eligible.append(i)
            self.v_delta += self.delta_w[i] * x
            self.z_delta[i] = (self.eta / e) * _exp(self.beta[i]) * x
            self.last_alpha[i] = (self.eta / e) * _exp(self.beta[i])
            if self.eta / e < 1:
                self.h_temp[i] = self.h[i] = self.h_old[i] = self.z_bar[i] = 0.0
                self.beta[i] += math.log(self.decay) * x * x
            self.z[i] += self.z_delta[i] * (1 - t)
            self.p[i] += self.h_old[i] * x
            self.z_bar[i] += self.z_delta[i] * (1 - t - self.z_bar[i] * x)
            self.h_temp[i] = (
                self.h[i]
                - self.h_old[i] * x * (self.z[i] - self.z_delta[i])
                - self.h[i] * self.z_delta[i] * x
            )
        self.v_old = v
        return v

    def step_binary(self, indices, r):
        return self.step([(i, 1.0) for i in indices], r)


def true_online_td(phis, rewards, gammas, phis_next, truncated, alpha, lam, rate=None):
    """True Online TD(lambda), JMLR Algorithm 1, one transition at a time; an episode
    (re)starts after a transition with discount 0 or a truncation. With a `rate`
    (`tests._reference.centering.Rate`) the reward in `delta` is `R - Rbar`, and `Rbar`
    is updated after the transition. Returns (w, V) after every transition, V the
    value of `phi` before the update."""
    n = phis.shape[1]
    w, e = np.zeros(n), np.zeros(n)
    v_old, start = 0.0, True
    out = []
    for phi, r, gamma, phi_next, cut in zip(
        phis, rewards, gammas, phis_next, truncated, strict=True
    ):
        if start:  # a new episode: e <- 0, V_old <- 0
            e[:] = 0.0
            v_old, gamma_prev = 0.0, 0.0
        v = sum(w[i] * phi[i] for i in range(n))
        v_next = sum(w[i] * phi_next[i] for i in range(n)) if gamma != 0 else 0.0
        delta = (r if rate is None else rate.center(r)) + gamma * v_next - v
        e_phi = sum(e[i] * phi[i] for i in range(n))
        for i in range(n):  # dutch trace
            e[i] = gamma_prev * lam * e[i] + (1 - alpha * gamma_prev * lam * e_phi) * phi[i]
        for i in range(n):
            w[i] += alpha * (delta + v - v_old) * e[i] - alpha * (v - v_old) * phi[i]
        if rate is not None:
            rate.update(r, delta)
        v_old = v_next
        gamma_prev = gamma
        start = gamma == 0 or bool(cut)
        out.append((w.copy(), v))
    return out
