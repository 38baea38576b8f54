"""Loss of plasticity on the bit-flipping problem, and continual backprop's cure
(Dohare, Sutton & Mahmood 2021, "Continual backprop", Figure 2; Dohare et al. 2024,
Nature, the slowly-changing regression problem).

The paper's settings, all taken from it and from the authors' configuration files
(`lop/slowly_changing_regression/cfg/sgd/{bp,cbp}/relu.json`): 20 input bits of
which 15 flip, one bit flipped every 10,000 steps, a target network of 100 LTUs with
`beta = 0.7`; the learner is a network with one hidden layer of 5 ReLU units trained
by SGD with step-size 0.01 on the squared error, one example per step, for 1,000,000
steps; continual backprop with replacement rate `1e-4`, utility decay 0.99 and
maturity threshold 100; errors averaged over bins of 20,000 steps.

Where this differs: the learner's initialisation is Equinox's (`U(+-1/sqrt(fan_in))`
for weights and biases) where the authors use Kaiming-uniform with zero biases;
continual backprop accumulates the replacement count to whole units (ALGORITHMS.md)
where the authors' default replaces one unit with probability `rho * mature` when that
is below one; and it ranks units by the utility without the authors' bias
correction.

`CONTINUAL_BACKPROP` is what `alberta-eqx replicate continual-backprop` runs:
the lines it prints beside the published numbers, the published checks and the figure.
"""

from typing import NamedTuple

import jax
import numpy as np
import optax
from jaxtyping import Float

from alberta_eqx._checks import positive_int
from alberta_eqx.experiments.segments import Progress, in_segments, seed_paired
from alberta_eqx.nn import MLP
from alberta_eqx.nonlinear import ContinualBackprop, MultiHeadLearner
from alberta_eqx.replications.verdicts import (
    Check,
    Replication,
    mean_ci95,
    paired_difference,
)
from alberta_eqx.streams.bitflip import BitFlipStream


class ContinualBackpropResult(NamedTuple):
    """Binned squared errors of backprop and continual backprop.

    **Fields:**

    - `steps`: the last step of every bin, shape `(bins,)`.
    - `backprop`, `continual_backprop`: mean squared error per seed and bin,
      shape `(seeds, bins)`.
    - `early_bins`, `late_bins`: the bins averaged as "early" (the first 10% of the
      run after the first bin) and "late" (the last 10%).
    """

    steps: Float[np.ndarray, " bins"]
    backprop: Float[np.ndarray, "seeds bins"]
    continual_backprop: Float[np.ndarray, "seeds bins"]
    early_bins: slice
    late_bins: slice

    def table(self) -> list[dict[str, float | str]]:
        """Per method: the early and late errors (mean over seeds, 95% confidence
        half-width from the t distribution over seeds)."""
        rows = []
        for name, errors in (
            ("backprop", self.backprop),
            ("continual backprop", self.continual_backprop),
        ):
            row: dict[str, float | str] = {"method": name}
            for label, bins in (("early", self.early_bins), ("late", self.late_bins)):
                mean, half = mean_ci95(errors[:, bins].mean(axis=1))
                row[label] = float(mean)
                row[f"{label}_ci95"] = float(half)
            rows.append(row)
        return rows


def continual_backprop_bitflip(
    num_steps: int = 1_000_000,
    num_seeds: int = 10,
    bin_size: int = 20_000,
    *,
    flip_interval: int = 10_000,
    num_hidden: int = 5,
    step_size: float = 0.01,
    replacement_rate: float = 1e-4,
    decay_rate: float = 0.99,
    maturity_threshold: int = 100,
    seed: int = 0,
    progress: Progress | None = None,
) -> ContinualBackpropResult:
    """Backprop and continual backprop on the bit-flipping problem, `num_seeds` seeds
    each (every seed its own target network, flips and initial weights), as in Dohare
    et al. (2021, Figure 2). The defaults are the paper's; reduce `num_steps`,
    `flip_interval` and `bin_size` together for a quick look.

    **Arguments:**

    - `num_steps`: steps per run (a multiple of `bin_size`).
    - `num_seeds`: seeds per method.
    - `bin_size`: steps per averaged error.
    - `flip_interval`, `num_hidden`, `step_size`, `replacement_rate`, `decay_rate`,
      `maturity_threshold`: the problem's and the learners' settings (see the module
      docstring).
    - `seed`: the base seed.
    - `progress`: called with the steps done, segment by segment (tqdm's `update`).
    """
    num_steps = positive_int("num_steps", num_steps)
    num_seeds = positive_int("num_seeds", num_seeds)
    bin_size = positive_int("bin_size", bin_size)
    stream = BitFlipStream(flip_interval=flip_interval, num_targets=1)
    keys = jax.random.split(jax.random.key(seed), num_seeds)
    cbp = ContinualBackprop(replacement_rate, decay_rate, maturity_threshold)
    errors = []
    for rule in (None, cbp):

        def build(key, rule=rule):
            model_key, cbp_key = jax.random.split(jax.random.fold_in(key, 1))
            model = MLP(
                stream.feature_dim,
                1,
                (num_hidden,),
                key=model_key,
                activation=jax.nn.relu,
                layer_norm=False,
            )
            return MultiHeadLearner(model, optax.sgd(step_size), key=cbp_key, unit_reset=rule)

        learners, states = seed_paired(build, stream, keys)
        segments = in_segments(
            learners,
            stream,
            num_steps,
            keys,
            progress,
            stream_states=states,
            metrics_window=bin_size,
        )
        # metrics (1, seeds, bins, heads): the bins of the segments in order
        errors.append(
            np.concatenate([np.asarray(r.metrics.squared_error)[0] for r in segments], axis=1)
        )
    bins = num_steps // bin_size
    tenth = max(1, bins // 10)
    return ContinualBackpropResult(
        steps=np.arange(1, bins + 1) * bin_size,
        backprop=errors[0],
        continual_backprop=errors[1],
        early_bins=slice(1, 1 + tenth) if bins > 1 + tenth else slice(0, tenth),
        late_bins=slice(bins - tenth, bins),
    )


def plot(result: ContinualBackpropResult, ax=None):
    """The error of both methods against steps, mean over seeds with a 95% confidence
    band (the paper's Figure 2 layout); returns the figure."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    for name, errors in (
        ("backprop", result.backprop),
        ("continual backprop", result.continual_backprop),
    ):
        mean, half = mean_ci95(errors, axis=0)
        ax.plot(result.steps, mean, label=name)
        ax.fill_between(result.steps, mean - half, mean + half, alpha=0.3)
    ax.set(xlabel="steps", ylabel=f"squared error (bins of {int(result.steps[0])})")
    ax.set_title("Dohare et al. (2021), Fig. 2: the bit-flipping problem")
    ax.legend()
    return ax.figure


def _cbp_report(result: ContinualBackpropResult) -> list[str]:
    return [
        f"{row['method']:20} early {row['early']:.3f} +- {row['early_ci95']:.3f}   "
        f"late {row['late']:.3f} +- {row['late_ci95']:.3f} (95% CI over seeds)"
        for row in result.table()
    ]


def _bp_grows(result: ContinualBackpropResult) -> tuple[bool | None, str]:
    early = result.backprop[:, result.early_bins].mean(axis=1)
    late = result.backprop[:, result.late_bins].mean(axis=1)
    passed, measured = paired_difference(late - early, 1)
    return passed, f"late - early {measured}; early {early.mean():.3f}, late {late.mean():.3f}"


def _cbp_stays_low(result: ContinualBackpropResult) -> tuple[bool | None, str]:
    cbp = result.continual_backprop[:, result.late_bins].mean(axis=1)
    bp = result.backprop[:, result.late_bins].mean(axis=1)
    passed, measured = paired_difference(cbp - bp, -1)
    return passed, f"continual - plain, late {measured}"


_CBP_CHECKS = (
    Check(
        "Dohare et al. (2021), Fig. 2: plain backprop's error grows over the run (last "
        "tenth above the first, 95% CI of the paired difference above 0)",
        _bp_grows,
        min_steps=1_000_000,
    ),
    Check(
        "Dohare et al. (2021), Fig. 2: continual backprop's error stays below plain "
        "backprop's (last tenth, 95% CI of the paired difference below 0)",
        _cbp_stays_low,
        min_steps=1_000_000,
    ),
)


CONTINUAL_BACKPROP = Replication(
    title="Dohare et al. (2021), Figure 2",
    paper="Dohare et al. (2021), Fig. 2: on the bit-flipping problem plain backprop's "
    "error grows over the run (loss of plasticity); continual backprop's stays low",
    run=lambda seeds, steps, progress: continual_backprop_bitflip(
        num_steps=steps, num_seeds=seeds, progress=progress
    ),
    seeds=10,
    steps=1_000_000,
    quick_steps=200_000,
    steps_multiple=20_000,
    total=lambda steps: 2 * steps,  # backprop, then continual backprop
    report=_cbp_report,
    figure=plot,
    filename="continual_backprop.png",
    checks=_CBP_CHECKS,
)
