"""Independent float64 transcriptions of off-policy TD(lambda), TDC, GTD2, GTD(lambda)
and GQ(lambda), for the tests: NumPy only, nothing shared with `alberta_eqx`. The
feature vectors `phi` and `phi_next` already include the constant 1 of the bias when
there is one. With a `rate` (`tests._reference.centering.Rate`) the reward in `delta`
is `R - Rbar`, and `Rbar` is updated after the transition, by `beta rho delta` for the
state-value methods (Naik, Wan, Tomar and Sutton 2024, off-policy value-based
centering) and `beta delta` for GQ's action values."""

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


def tdc(data, alpha, beta, w=None, v=None, rate=None):
    """TDC (`tdc_step`) over the transitions `data = (phis, rewards, gammas,
    phis_next, rhos)` from the primary and secondary weights `w` and `v` (zeros when
    None). Returns the pair `(w, v)` after every transition."""
    phis, rewards, gammas, phis_next, rhos = data
    n = np.shape(phis)[1]
    w = np.zeros(n) if w is None else np.array(w, np.float64)
    v = np.zeros(n) if v is None else np.array(v, np.float64)
    out = []
    for phi, r, g, phin, rho in zip(phis, rewards, gammas, phis_next, rhos, strict=True):
        c = _centered(r, rate)
        if rate is not None:
            rate.update(r, c + g * _dot(w, phin) - _dot(w, phi), rho)  # w before the step
        w, v = tdc_step(w, v, phi, c, g, phin, rho, alpha, beta)
        out.append((w.copy(), v.copy()))
    return out


# The transcriptions below: plain loops over weights i, NumPy float64.
# `phi`, `phi_next` include the bias's constant 1 as their last element. `g_prev` is
# the previous transition's discount (0 before the first), which cuts the trace.


def _dot(a, b):
    return sum(a[i] * b[i] for i in range(len(a)))


def _centered(r, rate):
    return r if rate is None else rate.center(r)


def offpolicy_td(data, alpha, lam, rate=None):
    """Sutton & Barto 2018 sec. 12.9: z <- rho (gamma_t lambda z + x); w += alpha delta z."""
    phis, rewards, gammas, phis_next, rhos = data
    n = phis.shape[1]
    w, z, g_prev, out = np.zeros(n), np.zeros(n), 0.0, []
    for phi, r, g, phin, rho in zip(phis, rewards, gammas, phis_next, rhos, strict=True):
        delta = _centered(r, rate) + g * _dot(w, phin) - _dot(w, phi)
        for i in range(n):
            z[i] = rho * (g_prev * lam * z[i] + phi[i])
        for i in range(n):
            w[i] += alpha * delta * z[i]
        if rate is not None:
            rate.update(r, delta, rho)
        g_prev = g
        out.append(w.copy())
    return out


def gtd2(data, alpha, beta, rate=None):
    """Sutton & Barto 2018 sec. 11.7: w += alpha rho (x - gamma x') (x.v); v as TDC."""
    phis, rewards, gammas, phis_next, rhos = data
    n = phis.shape[1]
    w, v, out = np.zeros(n), np.zeros(n), []
    for phi, r, g, phin, rho in zip(phis, rewards, gammas, phis_next, rhos, strict=True):
        delta = _centered(r, rate) + g * _dot(w, phin) - _dot(w, phi)
        xv = _dot(phi, v)
        w_new = [w[i] + alpha * rho * (phi[i] - g * phin[i]) * xv for i in range(n)]
        v = np.array([v[i] + beta * rho * (delta - xv) * phi[i] for i in range(n)])
        w = np.array(w_new)
        if rate is not None:
            rate.update(r, delta, rho)
        out.append((w.copy(), v.copy()))
    return out


def gtd_lambda(data, alpha, beta, lam, rate=None):
    """Maei (2011), GTD(lambda) (Sutton & Barto 2018 sec. 12.11), constant lambda:
    e_t = rho_t (phi_t + gamma_t lambda e_{t-1});
    theta += alpha [delta e - gamma_{t+1} (1 - lambda) (e.w) phi_{t+1}];
    w += beta [delta e - (w.phi) phi]  (theta: primary, w: secondary, Maei's names)."""
    phis, rewards, gammas, phis_next, rhos = data
    n = phis.shape[1]
    theta, w, e, g_prev, out = np.zeros(n), np.zeros(n), np.zeros(n), 0.0, []
    for phi, r, g, phin, rho in zip(phis, rewards, gammas, phis_next, rhos, strict=True):
        delta = _centered(r, rate) + g * _dot(theta, phin) - _dot(theta, phi)
        for i in range(n):
            e[i] = rho * (phi[i] + g_prev * lam * e[i])
        ew, wphi = _dot(e, w), _dot(w, phi)
        for i in range(n):
            theta[i] += alpha * (delta * e[i] - g * (1 - lam) * ew * phin[i])
        for i in range(n):
            w[i] += beta * (delta * e[i] - wphi * phi[i])
        if rate is not None:
            rate.update(r, delta, rho)
        g_prev = g
        out.append((theta.copy(), w.copy()))
    return out


def gq_lambda(data, alpha, eta, lam, rate=None):
    """Maei & Sutton (2010), GQ(lambda), with gamma = 1 - beta (their termination
    probability), phi = phi(S_t, A_t), phibar' = sum_a pi(a|S_{t+1}) phi(S_{t+1}, a):
    delta = r + gamma theta.phibar' - theta.phi;  e_t = phi_t + gamma_t lambda rho_t e_{t-1};
    theta += alpha [delta e - gamma (1 - lambda) (w.e) phibar'];
    w += alpha eta [delta e - (w.phi) phi]."""
    phis, rewards, gammas, phibars, rhos = data
    n = phis.shape[1]
    theta, w, e, g_prev, out = np.zeros(n), np.zeros(n), np.zeros(n), 0.0, []
    for phi, r, g, phibar, rho in zip(phis, rewards, gammas, phibars, rhos, strict=True):
        delta = _centered(r, rate) + g * _dot(theta, phibar) - _dot(theta, phi)
        for i in range(n):
            e[i] = phi[i] + g_prev * lam * rho * e[i]
        we, wphi = _dot(w, e), _dot(w, phi)
        for i in range(n):
            theta[i] += alpha * (delta * e[i] - g * (1 - lam) * we * phibar[i])
        for i in range(n):
            w[i] += alpha * eta * (delta * e[i] - wphi * phi[i])
        if rate is not None:
            rate.update(r, delta)  # action values: no ratio
        g_prev = g
        out.append((theta.copy(), w.copy()))
    return out
