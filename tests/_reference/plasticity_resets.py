"""ReDo's dormancy test (Sokar, Agarwal, Castro and Evci 2023), step by step in float64
NumPy, written from the paper (Definition 3.1) and the online reading documented in
`alberta_eqx.nonlinear.ReDo`: every `period` steps, the mean of `|h_i|` over the
period's examples, normalised by its mean over the layer, compared with `tau`."""

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
