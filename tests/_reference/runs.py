"""The reference computations of ours that `alberta-eqx replicate` prints and draws
beside its runs (not a paper's numbers): the papers' algorithms in NumPy float64,
vectorised over 100 seeds, nothing shared with `alberta_eqx`. Run as a script to
print them (a few minutes):

    python -m tests._reference.runs

Baird's counterexample (Sutton and Barto 2018, Example 11.1): semi-gradient
off-policy TD(0) (alpha 0.01, 1,000 steps) and TDC (alpha 0.005, beta 0.05, 20,000
steps) from the book's weights; Autostep against LMS (Mahmood et al. 2012, Table 1)
on Sutton's (1992) Experiment 1 task, 30,000 examples, the MSE over the last 10,000.
"""

import numpy as np

from tests._reference.baird import GAMMA, W0, X, td0_step
from tests._reference.baird import errors as baird_errors
from tests._reference.gradient_td import tdc_step

SEEDS = 100


def baird(steps=20_000, td_steps=1_000, seeds=SEEDS, seed=0):
    """Mean and standard error over seeds of TD(0)'s sqrt(VE) and |w| at `td_steps`,
    and TDC's sqrt(VE) and sqrt(PBE) at `td_steps` and at `steps`."""
    rng = np.random.default_rng(seed)
    s = rng.integers(7, size=seeds)
    w_td, w, v = np.tile(W0, (seeds, 1)), np.tile(W0, (seeds, 1)), np.zeros((seeds, 8))
    out = {}
    for t in range(1, steps + 1):
        solid = rng.random(seeds) < 1 / 7
        s2 = np.where(solid, 6, rng.integers(6, size=seeds))
        rho = np.where(solid, 7.0, 0.0)
        x, x2 = X[s], X[s2]
        if t <= td_steps:  # eq. 11.2
            w_td = td0_step(w_td, x, x2, rho, 0.01)
        w, v = tdc_step(w, v, x, 0.0, GAMMA, x2, rho, 0.005, 0.05)  # sec. 11.7
        s = s2
        if t == td_steps:
            out["td sqrt(VE)", t] = baird_errors(w_td)[0]
            out["td |w|", t] = np.linalg.norm(w_td, axis=-1)
        if t in (td_steps, steps):
            out["tdc sqrt(VE)", t], out["tdc sqrt(PBE)", t] = baird_errors(w)
    return {k: (a.mean(), a.std(ddof=1) / np.sqrt(seeds)) for k, a in out.items()}


def autostep_against_lms(steps=30_000, window=10_000, seeds=SEEDS, seed=0):
    """Mean and standard error over seeds of the final-window MSE of Autostep (mu 1e-2,
    tau 1e4, step-sizes from 0.1 / n, with a bias) and LMS at the same step-size, on
    Experiment 1: 20 N(0, 1) inputs, the target the sum of the first five with signs
    +-1, one sign flipping every 20 examples."""
    rng = np.random.default_rng(seed)
    n = 21
    alpha0, mu, tau = 0.1 / n, 1e-2, 1e4
    signs = rng.choice([-1.0, 1.0], size=(seeds, 5))
    w_a, h, v = (np.zeros((seeds, n)) for _ in range(3))
    alpha = np.full((seeds, n), alpha0)
    w_l = np.zeros((seeds, n))
    sq_a, sq_l = np.zeros(seeds), np.zeros(seeds)
    for t in range(steps):
        if t and t % 20 == 0:
            signs[np.arange(seeds), rng.integers(5, size=seeds)] *= -1
        x = np.concatenate([rng.standard_normal((seeds, 20)), np.ones((seeds, 1))], -1)
        y = (signs * x[:, :5]).sum(-1)
        delta = y - (w_a * x).sum(-1)
        delta_l = y - (w_l * x).sum(-1)
        if t >= steps - window:
            sq_a += delta**2 / window
            sq_l += delta_l**2 / window
        dxh = delta[:, None] * x * h  # Table 1
        v = np.maximum(np.abs(dxh), v + alpha * x**2 * (np.abs(dxh) - v) / tau)
        with np.errstate(divide="ignore", invalid="ignore"):
            alpha = np.where(v != 0, alpha * np.exp(mu * dxh / v), alpha)
        alpha = alpha / np.maximum((alpha * x**2).sum(-1, keepdims=True), 1.0)
        w_a = w_a + alpha * delta[:, None] * x
        h = h * (1 - alpha * x**2) + alpha * delta[:, None] * x
        w_l = w_l + alpha0 * delta_l[:, None] * x
    return {
        name: (a.mean(), a.std(ddof=1) / np.sqrt(seeds))
        for name, a in (("autostep", sq_a), ("lms", sq_l))
    }


if __name__ == "__main__":
    for name, (mean, stderr) in {**baird(), **autostep_against_lms()}.items():
        print(name, f"{mean:.4g} +- {stderr:.2g}")
