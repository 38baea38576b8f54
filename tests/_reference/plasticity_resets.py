"""The unit resets' bookkeeping, step by step in float64 NumPy: continual backprop's
(Dohare et al. 2024, Algorithm 1; `cbp_bookkeeping`), and ReDo's dormancy test
(Sokar, Agarwal, Castro and Evci 2023; `redo_masks`), written from the paper
(Definition 3.1) and the online reading documented in `alberta_eqx.nonlinear.ReDo`:
every `period` steps, the mean of `|h_i|` over the period's examples, normalised by
its mean over the layer, compared with `tau`."""

import numpy as np


def redo_masks(hidden: np.ndarray, tau: float, period: int) -> np.ndarray:
    """The mask of the units ReDo resets at each step, `(steps, units)`, for one
    layer's activations `hidden` `(steps, units)`."""
    masks = np.zeros(hidden.shape, bool)
    for end in range(period, hidden.shape[0] + 1, period):
        expected = np.abs(hidden[end - period : end]).mean(axis=0)  # E|h_i| over the period
        layer_mean = expected.mean()
        score = expected / layer_mean if layer_mean > 0 else np.zeros_like(expected)
        masks[end - 1] = score <= tau
    return masks


def cbp_bookkeeping(hidden, outgoing, rho, eta, m, age=0):
    """Algorithm 1's bookkeeping for one layer, step by step, in float64 NumPy:
    u <- eta u + (1 - eta)|h| sum_k |w_k|; a += 1; count += rho * #mature; replace
    floor(count) mature units of lowest utility; reset their u and a. The ages start
    at `age` (Python ints: they never wrap)."""
    n = hidden.shape[1]
    u, a, count = np.zeros(n), np.full(n, age, np.int64), 0.0
    replaced = []
    for h, w in zip(hidden, outgoing, strict=True):
        u = eta * u + (1 - eta) * np.abs(h) * np.abs(w).sum(0)
        a = a + 1
        mature = np.flatnonzero(a > m)
        count += rho * mature.size
        number = int(np.floor(count))
        count -= number
        chosen = mature[np.argsort(u[mature], kind="stable")[:number]]
        mask = np.zeros(n, bool)
        mask[chosen] = True
        u[mask], a[mask] = 0, 0
        replaced.append(mask)
    return u, a, np.array(replaced)
