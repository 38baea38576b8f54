"""An independent float64 transcription of differential (average-reward) semi-gradient
TD(lambda) and of discounted TD(lambda) with reward centering, for the tests.

Sutton and Barto (2018), section 10.3: the differential TD error (10.10)
`delta = R - Rbar + v(S') - v(S)`, `Rbar <- Rbar + beta delta`, here with the
accumulating trace of section 12.2 (`e <- gamma_prev lambda e + phi`,
`w <- w + alpha delta e`); Naik, Wan, Tomar and Sutton (2024): the same with a
discount `gamma < 1` (value-based centering), or `Rbar <- Rbar + beta (R - Rbar)`
(simple centering). Plain Python loops over the weights, NumPy float64, nothing
shared with `alberta_eqx`. `phi` includes the constant 1 of the bias where there is
one.
"""

import numpy as np


def centered_td_lambda(phis, rewards, gammas, phis_next, alpha, lam, beta, simple, w0=None):
    """Returns `(w, Rbar)` after every transition, stacked: `(T, n)` and `(T,)`."""
    n = phis.shape[1]
    w = np.zeros(n) if w0 is None else np.array(w0, np.float64)
    e = np.zeros(n)
    rbar = 0.0
    gamma_prev = 0.0
    ws, rates = [], []
    for phi, r, gamma, phi_next in zip(phis, rewards, gammas, phis_next, strict=True):
        v = sum(w[i] * phi[i] for i in range(n))
        v_next = sum(w[i] * phi_next[i] for i in range(n)) if gamma != 0 else 0.0
        delta = r - rbar + gamma * v_next - v
        for i in range(n):
            e[i] = gamma_prev * lam * e[i] + phi[i]
            w[i] += alpha * delta * e[i]
        rbar += beta * ((r - rbar) if simple else delta)
        gamma_prev = gamma
        ws.append(w.copy())
        rates.append(rbar)
    return np.array(ws), np.array(rates)


class Rate:
    """`Rbar` for the transcriptions of the other learners (their `rate=` argument):
    Sutton and Barto (2018), section 10.3, and Naik, Wan, Tomar and Sutton (2024).
    `center(R) = R - Rbar`; after the transition, value-based centering
    `Rbar += beta rho delta` (`rho = 1` on-policy; off-policy state values weight the
    rate's step by the importance-sampling ratio as they weight the value's) or simple
    centering `Rbar += beta (R - Rbar)`. `history`: `Rbar` after every update."""

    def __init__(self, beta, simple=False):
        self.beta, self.simple, self.rbar, self.history = beta, simple, 0.0, []

    def center(self, r):
        return r - self.rbar

    def update(self, r, delta, rho=1.0):
        self.rbar += self.beta * ((r - self.rbar) if self.simple else rho * delta)
        self.history.append(self.rbar)
