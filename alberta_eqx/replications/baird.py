"""Baird's counterexample (Sutton and Barto 2018, Example 11.1): semi-gradient
off-policy TD(0) diverges (Figure 11.2) while TDC drives the projected Bellman error
to 0 with the value error staying near 2 (Figure 11.5).

Both errors weigh the seven states by `mu`, the behaviour policy's state
distribution, which is uniform. The true values are 0, so
`VE(w) = sum_s mu(s) v_w(s)^2`. The projected Bellman error is
`PBE(w) = || Pi delta_bar_w ||_mu^2`, with `delta_bar_w(s) = E_pi[R + gamma v_w(S') -
v_w(s)] = gamma v_w(lower) - v_w(s)` (the target policy always goes to the lower
state) and `Pi = X (X^T D X)^+ X^T D` the `mu`-weighted projection onto the span of
the features (`D = diag(mu)`; `X^T D X` is singular with 8 features of 7 states, so
the pseudo-inverse).

`BAIRD` is what `alberta-eqx replicate baird` runs:
the lines it prints beside the published numbers, the published checks and the figure.
"""

from typing import NamedTuple, cast

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from alberta_eqx.experiments.segments import Progress, in_segments
from alberta_eqx.gvf import GradientTDLearner
from alberta_eqx.replications.verdicts import (
    Check,
    Replication,
    mean_stderr,
)
from alberta_eqx.streams.baird import LOWER, BairdStream, baird_features, baird_initial_weights

# Our reference computation, not a paper's numbers (the book draws Figures 11.2 and
# 11.5 and prints no values): the book's settings in NumPy float64, 100 seeds
# (`python -m tests._reference.runs`), the mean over seeds at each step.
REFERENCE = {
    "td": {1000: {"sqrt_ve": 581.9, "norm_w": 438.7}},
    "tdc": {1000: {"sqrt_ve": 1.938, "sqrt_pbe": 0.0772}, 20000: {"sqrt_pbe": 0.00736}},
}
REFERENCE_LABEL = "our float64 NumPy reference, 100 seeds"


def value_error(
    weights: Float[Array, "*batch 8"], discount: float = 0.99
) -> Float[Array, "*batch"]:
    """`sqrt(VE)`: the `mu`-weighted RMS of the values (the true values are 0)."""
    del discount  # the true values are 0 whatever the discount
    values = weights @ baird_features(weights.dtype).T
    return jnp.sqrt(jnp.mean(values**2, axis=-1))


def projected_bellman_error(
    weights: Float[Array, "*batch 8"], discount: float = 0.99
) -> Float[Array, "*batch"]:
    """`sqrt(PBE)`: the `mu`-weighted norm of the projected expected TD error under the
    target policy (module docstring)."""
    x = baird_features(weights.dtype)
    mu = jnp.full(7, 1 / 7, weights.dtype)
    values = weights @ x.T
    delta_bar = discount * values[..., LOWER : LOWER + 1] - values
    projection = x @ jnp.linalg.pinv(x.T @ (mu[:, None] * x)) @ x.T * mu  # Pi = X (X'DX)^+ X'D
    projected = delta_bar @ projection.T
    return jnp.sqrt(jnp.sum(mu * projected**2, axis=-1))


class BairdCurves(NamedTuple):
    """Learning curves, measured after every `segment` steps.

    **Fields:**

    - `steps`: `(points,)` the steps done at each measurement (0 first: the book's
      starting weights).
    - `td_sqrt_ve`, `td_norm_w`: `(seeds, points)` semi-gradient off-policy TD(0)'s
      `sqrt(VE)` and `|w|`.
    - `tdc_sqrt_ve`, `tdc_sqrt_pbe`: `(seeds, points)` TDC's.
    - `td_steps`: how many of the steps TD(0) ran (it diverges; its curve is shorter).
    """

    steps: np.ndarray
    td_sqrt_ve: np.ndarray
    td_norm_w: np.ndarray
    tdc_sqrt_ve: np.ndarray
    tdc_sqrt_pbe: np.ndarray
    td_steps: int


def baird(
    *,
    num_steps: int = 20_000,
    td_steps: int = 1_000,
    num_seeds: int = 10,
    segment: int = 100,
    seed: int = 0,
    progress: Progress | None = None,
) -> BairdCurves:
    """Semi-gradient off-policy TD(0) (`alpha = 0.01`, `td_steps` steps) and TDC
    (`alpha = 0.005`, `beta = 0.05`, `num_steps` steps) on Baird's counterexample from
    the book's weights `(1, 1, 1, 1, 1, 1, 10, 1)`, no bias, through
    `run_learning_loop_batched` in segments of `segment` steps, in float64 (as the
    reference numbers).

    **Arguments:**

    - `num_steps`: TDC's run length.
    - `td_steps`: TD(0)'s run length (its weights grow about 1.5% per 100 steps).
    - `num_seeds`: independent runs (every learner sees the same ones).
    - `segment`: steps between measurements (must divide both run lengths).
    - `seed`: the streams' root key.
    - `progress`: called with the number of steps after every segment.
    """
    for name, n in (("num_steps", num_steps), ("td_steps", td_steps)):
        if n % segment:
            raise ValueError(f"segment ({segment}) must divide {name} ({n})")
    with jax.enable_x64(True):  # the reference numbers are float64
        return _baird(num_steps, td_steps, num_seeds, segment, seed, progress)


def _baird(num_steps, td_steps, num_seeds, segment, seed, progress) -> BairdCurves:
    stream = BairdStream()
    keys = jax.random.split(jax.random.key(seed), num_seeds)
    start = baird_initial_weights()

    def run(learner: GradientTDLearner, n: int) -> np.ndarray:
        learner = eqx.tree_at(lambda m: m.weights, learner, start.astype(learner.weights.dtype))
        results = in_segments(learner, stream, n, keys, progress, segment_steps=segment)
        first = np.broadcast_to(np.asarray(start), (num_seeds, 8))  # step 0
        # `cast`: a RunResult holds the learner it was given, trained, but its type
        # is not generic in the learner's.
        trained = (cast(GradientTDLearner, r.learner) for r in results)
        return np.stack([first, *(np.asarray(t.weights) for t in trained)], axis=1)

    td = run(GradientTDLearner(8, "td", 0.01, use_bias=False), td_steps)
    tdc = run(GradientTDLearner(8, "tdc", 0.005, 0.05, use_bias=False), num_steps)
    steps = np.arange(num_steps // segment + 1) * segment
    return BairdCurves(
        steps=steps,
        td_sqrt_ve=np.asarray(value_error(jnp.asarray(td))),
        td_norm_w=np.linalg.norm(td, axis=-1),
        tdc_sqrt_ve=np.asarray(value_error(jnp.asarray(tdc))),
        tdc_sqrt_pbe=np.asarray(projected_bellman_error(jnp.asarray(tdc))),
        td_steps=td_steps,
    )


def at_step(curve: np.ndarray, steps: np.ndarray, step: int) -> float:
    """The mean over seeds of `curve` (seeds, points) at `step`."""
    index = int(np.flatnonzero(steps == step)[0])
    return float(np.mean(curve[:, index]))


def table(curves: BairdCurves) -> list[tuple[str, int, float, float, float]]:
    """Rows `(quantity, step, this run: mean over seeds, its standard error,
    reference)` for every number of our reference computation (`REFERENCE`) the run
    reached."""
    series = {
        "td": {"sqrt_ve": curves.td_sqrt_ve, "norm_w": curves.td_norm_w},
        "tdc": {"sqrt_ve": curves.tdc_sqrt_ve, "sqrt_pbe": curves.tdc_sqrt_pbe},
    }
    rows = []
    for method, points in REFERENCE.items():
        for step, numbers in points.items():
            for quantity, reference in numbers.items():
                curve = series[method][quantity]
                if step > curves.steps[curve.shape[1] - 1] or step not in curves.steps:
                    continue
                index = int(np.flatnonzero(curves.steps == step)[0])
                values = curve[:, index]
                stderr = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else np.nan
                name = {"sqrt_ve": "sqrt(VE)", "sqrt_pbe": "sqrt(PBE)", "norm_w": "|w|"}[quantity]
                label = f"{'TD(0)' if method == 'td' else 'TDC'} {name}"
                rows.append((label, step, float(values.mean()), float(stderr), reference))
    return rows


def plot(curves: BairdCurves):
    """The learning curves (mean over seeds): TD(0)'s sqrt(VE) and |w| growing without
    bound (Figure 11.2), TDC's sqrt(VE) and sqrt(PBE) (Figure 11.5), our float64
    reference computation's numbers as stars (the book prints none); returns the
    figure."""
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    n = curves.td_sqrt_ve.shape[1]
    left.plot(curves.steps[:n], curves.td_sqrt_ve.mean(0), c="C0", label="sqrt(VE)")
    left.plot(curves.steps[:n], curves.td_norm_w.mean(0), c="C1", label="|w|")
    left.set(xlabel="steps", yscale="log", title="semi-gradient off-policy TD(0), alpha 0.01")
    right.plot(curves.steps, curves.tdc_sqrt_ve.mean(0), c="C0", label="sqrt(VE)")
    right.plot(curves.steps, curves.tdc_sqrt_pbe.mean(0), c="C2", label="sqrt(PBE)")
    right.set(xlabel="steps", yscale="log", title="TDC, alpha 0.005, beta 0.05")
    colours = {"sqrt_ve": "C0", "norm_w": "C1", "sqrt_pbe": "C2"}
    for method, ax in (("td", left), ("tdc", right)):
        for step, numbers in REFERENCE[method].items():
            for quantity, value in numbers.items():
                ax.plot([step], [value], "*", c=colours[quantity], ms=10)
    right.plot([], [], "*", c="k", label=REFERENCE_LABEL)
    left.legend()
    right.legend()
    fig.suptitle(
        "Sutton and Barto (2018), Example 11.1 (Figs. 11.2 and 11.5), "
        f"mean of {curves.td_sqrt_ve.shape[0]} seeds"
    )
    return fig


def _baird_report(curves: BairdCurves) -> list[str]:
    lines = [f"{'':16}{'step':>7} {'this run':>9} {'+- s.e.':>8} {'reference':>10}"]
    for label, step, mean, stderr, reference in table(curves):
        lines.append(f"{label:16}{step:7d} {mean:9.4g} {stderr:8.2g} {reference:10g}")
    lines.append(f"reference: {REFERENCE_LABEL} (the book prints no values)")
    return lines


def _baird_diverges(curves: BairdCurves) -> tuple[bool, str]:
    norm = curves.td_norm_w
    growing = bool(np.all(np.diff(norm, axis=1) > 0) and np.all(norm[:, -1] > 10 * norm[:, 0]))
    mean, stderr = mean_stderr(norm[:, -1])
    return (
        growing,
        f"|w| {norm[0, 0]:.1f} -> {mean:.0f} +- {stderr:.0f} s.e. at step {curves.td_steps:,}",
    )


def _baird_at(curve: np.ndarray, curves: BairdCurves, step: int) -> tuple[float, float]:
    """Mean and standard error over seeds of `curve` at `step` (NaN if not reached)."""
    if step not in curves.steps[: curve.shape[1]]:
        return float("nan"), float("nan")
    return mean_stderr(curve[:, int(np.flatnonzero(curves.steps == step)[0])])


def _baird_pbe(curves: BairdCurves) -> tuple[bool, str]:
    mean, stderr = _baird_at(curves.tdc_sqrt_pbe, curves, 20_000)
    return bool(mean < 0.02), f"{mean:.4f} +- {stderr:.1g} s.e. at step 20,000"


def _baird_ve(curves: BairdCurves) -> tuple[bool, str]:
    after = curves.tdc_sqrt_ve[:, curves.steps >= 1_000].mean(axis=0)
    near = bool(np.all((after >= 1.5) & (after <= 2.5)))
    return near, f"mean over seeds from step 1,000 on: {after.min():.3f} to {after.max():.3f}"


_BAIRD_CHECKS = (
    Check(
        "Sutton and Barto (2018), Fig. 11.2: semi-gradient off-policy TD(0) diverges "
        "(every seed's |w| grows at every measurement, to over 10x its start)",
        _baird_diverges,
    ),
    Check(
        "Sutton and Barto (2018), Fig. 11.5: TDC drives sqrt(PBE) to 0 (below 0.02 by "
        "step 20,000)",
        _baird_pbe,
        min_steps=20_000,
    ),
    Check(
        "Sutton and Barto (2018), Fig. 11.5: TDC's sqrt(VE) stays near 2 (1.5 to 2.5 "
        "from step 1,000 on)",
        _baird_ve,
    ),
)


BAIRD = Replication(
    title="Sutton and Barto (2018), Example 11.1",
    paper="Sutton and Barto (2018), Example 11.1, Figs. 11.2 and 11.5: off-policy TD(0) "
    "diverges; TDC drives sqrt(PBE) to 0 while sqrt(VE) stays near 2",
    run=lambda seeds, steps, progress: baird(num_steps=steps, num_seeds=seeds, progress=progress),
    seeds=10,
    steps=20_000,
    quick_steps=5_000,
    steps_multiple=1_000,  # TD(0) runs 1,000 steps; measurements every 100
    total=lambda steps: 1_000 + steps,
    report=_baird_report,
    figure=plot,
    filename="baird.png",
    checks=_BAIRD_CHECKS,
)
