"""An independent float64 transcription of TDC, for the tests: NumPy only, nothing
shared with `alberta_eqx`. The feature vectors `phi` and `phi_next` already include
the constant 1 of the bias when there is one."""

import numpy as np


def tdc_step(w, v, x, reward, gamma, x_next, rho, alpha, beta):
    """One TDC update (Sutton et al. 2009; Sutton & Barto 2018 sec. 11.7, with
    importance sampling): `w += alpha rho (delta x - gamma x' (x.v))`, `v += beta rho
    (delta - v.x) x`, with `delta = r + gamma w.x' - w.x`. Features and weights have
    the features on the last axis; leading axes (and those of `reward`, `gamma`,
    `rho`) are independent runs. Returns the new `(w, v)`."""
    r, g, rho = (np.asarray(a, np.float64)[..., None] for a in (reward, gamma, rho))
    delta = r + g * np.sum(w * x_next, -1, keepdims=True) - np.sum(w * x, -1, keepdims=True)
    xv = np.sum(x * v, -1, keepdims=True)
    return w + alpha * rho * (delta * x - g * x_next * xv), v + beta * rho * (delta - xv) * x


def tdc(data, alpha, beta, w=None, v=None):
    """TDC (`tdc_step`) over the transitions `data = (phis, rewards, gammas,
    phis_next, rhos)` from the primary and secondary weights `w` and `v` (zeros when
    None). Returns the pair `(w, v)` after every transition."""
    phis, rewards, gammas, phis_next, rhos = data
    n = np.shape(phis)[1]
    w = np.zeros(n) if w is None else np.array(w, np.float64)
    v = np.zeros(n) if v is None else np.array(v, np.float64)
    out = []
    for phi, r, g, phin, rho in zip(phis, rewards, gammas, phis_next, rhos, strict=True):
        w, v = tdc_step(w, v, phi, r, g, phin, rho, alpha, beta)
        out.append((w.copy(), v.copy()))
    return out
