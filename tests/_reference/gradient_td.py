"""An independent float64 transcription of TDC, for the tests: NumPy only, nothing
shared with `alberta_eqx`. The feature vectors `phi` and `phi_next` already include
the constant 1 of the bias when there is one."""

import numpy as np


def tdc(data, alpha, beta, w=None, v=None):
    """TDC (Sutton et al. 2009; Sutton & Barto 2018 sec. 11.7, with importance
    sampling): `w += alpha rho (delta x - gamma x' (x.v))`, `v += beta rho (delta -
    v.x) x`, over the transitions `data = (phis, rewards, gammas, phis_next, rhos)`
    from the primary and secondary weights `w` and `v` (zeros when None). Returns the
    pair `(w, v)` after every transition."""
    phis, rewards, gammas, phis_next, rhos = data
    n = np.shape(phis)[1]
    w = np.zeros(n) if w is None else np.array(w, np.float64)
    v = np.zeros(n) if v is None else np.array(v, np.float64)
    out = []
    for phi, r, g, phin, rho in zip(phis, rewards, gammas, phis_next, rhos, strict=True):
        delta = r + g * (w @ phin) - w @ phi
        xv = phi @ v
        w, v = w + alpha * rho * (delta * phi - g * phin * xv), v + beta * rho * (delta - xv) * phi
        out.append((w.copy(), v.copy()))
    return out
