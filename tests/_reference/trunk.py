"""An independent float64 transcription of semi-gradient TD(lambda) for GVF demons
on a shared one-hidden-layer trunk, for the tests.

Written from Sutton and Barto (2018, sec. 12.2) and the Horde's GVF questions
(Sutton et al. 2011), nothing shared with `alberta_eqx`: plain NumPy float64, the
gradients derived by hand. The network is

    a = W1 x + b1,   u = LayerNorm(a) (or u = a),   h = leaky_relu(u),
    v_i = W2[i] . h + b2[i]

with the parameterless LayerNorm `u = (a - mean(a)) / sqrt(var(a) + eps)`. Per
transition `(x, R, d, x', truncated)` demon `i` has the cumulant
`C_i = c_i . (R, x')`, the continuation `g_i = gamma_i` if `d > 0` else 0, and

    delta_i = C_i + g_i v_i(x') - v_i(x)         (v_i(x') left out where g_i = 0)
    e_i <- gprev_i lambda_i e_i + grad v_i(x)    (over every parameter)
    theta <- theta + alpha sum_i delta_i e_i

with `gprev_i` the previous transition's `g_i` (0 before the first transition and
after a truncated one). `grad v_i` is zero on the other demons' heads, so the heads
take `alpha_head delta_i e_i` (their own) and the trunk `alpha sum_i delta_i e_i`.

With `rates` (one `tests._reference.centering.Rate` per demon) demon `i`'s cumulant
is centered, `C_i - Rbar_i` in `delta_i`, and `Rbar_i` is updated after the step.
"""

import numpy as np

EPS = 1e-5
SLOPE = 0.01


def forward(params, x, layer_norm):
    """`(v, cache)`: every demon's value and what the gradient needs."""
    W1, b1, W2, b2 = params
    a = W1 @ x + b1
    if layer_norm:
        mu = a.mean()
        s = np.sqrt(((a - mu) ** 2).mean() + EPS)
        u = (a - mu) / s
    else:
        mu, s, u = None, None, a
    h = np.where(u >= 0, u, SLOPE * u)
    return W2 @ h + b2, (a, mu, s, u, h)


def gradients(params, x, layer_norm):
    """Per demon `i`, `dv_i / d(W1, b1, W2, b2)` (arrays with the demon axis first)."""
    W2 = params[2]
    k = W2.shape[0]
    _, (a, mu, s, u, h) = forward(params, x, layer_norm)
    dh_du = np.where(u >= 0, 1.0, SLOPE)
    n = len(a)
    if layer_norm:
        # du_j / da_m = (delta_jm - 1/n) / s - (a_j - mu)(a_m - mu) / (n s^3)
        J = (np.eye(n) - 1.0 / n) / s - np.outer(a - mu, a - mu) / (n * s**3)
    else:
        J = np.eye(n)
    gW1, gb1, gW2, gb2 = [], [], [], []
    for i in range(k):
        dv_du = W2[i] * dh_du
        dv_da = J.T @ dv_du
        gW1.append(np.outer(dv_da, x))
        gb1.append(dv_da)
        gW2_i = np.zeros_like(W2)
        gW2_i[i] = h
        gb2_i = np.zeros(k)
        gb2_i[i] = 1.0
        gW2.append(gW2_i)
        gb2.append(gb2_i)
    return [np.array(g) for g in (gW1, gb1, gW2, gb2)]


def trunk_td_lambda(
    params, cumulant, gamma, lam, xs, rewards, discounts, xs_next, truncated,
    alpha, alpha_head, layer_norm, rates=None,
):  # fmt: skip
    """Run the demons over the transitions. Returns, per step, the values `v(x)`
    before the update and the parameters `(W1, b1, W2, b2)` after it."""
    W1, b1, W2, b2 = (np.array(p, np.float64) for p in params)
    k = W2.shape[0]
    traces = [np.zeros((k, *p.shape)) for p in (W1, b1, W2, b2)]
    gprev = np.zeros(k)
    values, history = [], []
    for x, r, d, x_next, cut in zip(xs, rewards, discounts, xs_next, truncated, strict=True):
        params = (W1, b1, W2, b2)
        v, _ = forward(params, x, layer_norm)
        v_next, _ = forward(params, x_next, layer_norm)
        signals = np.concatenate([[r], x_next])
        g = np.where(d > 0, gamma, 0.0)
        delta = np.empty(k)
        c = np.array([cumulant[i] @ signals for i in range(k)])
        for i in range(k):
            bootstrap = g[i] * v_next[i] if g[i] != 0 else 0.0
            c_i = c[i] if rates is None else rates[i].center(c[i])
            delta[i] = c_i + bootstrap - v[i]
        grads = gradients(params, x, layer_norm)
        for e, grad in zip(traces, grads, strict=True):
            for i in range(k):
                e[i] = gprev[i] * lam[i] * e[i] + grad[i]
        step = [np.tensordot(delta, e, 1) for e in traces]  # sum_i delta_i e_i
        W1 = W1 + alpha * step[0]
        b1 = b1 + alpha * step[1]
        W2 = W2 + alpha_head * step[2]
        b2 = b2 + alpha_head * step[3]
        for i in range(k if rates is not None else 0):
            rates[i].update(c[i], delta[i])
        gprev = np.zeros(k) if cut else g
        values.append(v)
        history.append((W1.copy(), b1.copy(), W2.copy(), b2.copy()))
    return np.array(values), history
