"""Loss of plasticity on permuted digits, and its remedies: online accuracy per task on
input-permuted and label-permuted digits for SGD, shrink-and-perturb, L2 Init, UPGD,
weight clipping, continual backprop and ReDo (Elsayed and Mahmood 2024, "Addressing
loss of plasticity and catastrophic forgetting in continual learning", ICLR, the
permuted-input experiment; Dohare et al. 2024, Nature).

The protocol is the UPGD paper's: one example per step, a new permutation of the
inputs every 5,000 examples (of the labels every 2,500), 1,000,000 steps, a network of
two ReLU layers (300, 150) trained on the cross-entropy, online accuracy averaged per
task. Where this differs: the data are scikit-learn's 1,797 handwritten 8x8 digits
(`alberta_eqx.streams.permuted.load_digits`) instead of MNIST; every method uses one
setting from the authors' grids (`upgd/experiments/input_permuted_mnist.py`), not a
setting tuned on this problem (the defaults of `plasticity_permuted`); the
initialisation is Equinox's (`U(+-1/sqrt(fan_in))`). Every seed of a method runs in one
compiled program (`eqx.filter_vmap` over seeds).

`PLASTICITY` is what `alberta-eqx replicate plasticity` runs.
"""

from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Float

import alberta_eqx.optax as aeo
from alberta_eqx._checks import positive_int
from alberta_eqx._rules import NoiseState, UPGDState
from alberta_eqx.experiments.plots import pyplot
from alberta_eqx.experiments.segments import Progress, in_segments, seed_paired
from alberta_eqx.nn import MLP
from alberta_eqx.nonlinear import (
    ClassifierLearner,
    ContinualBackprop,
    ReDo,
    plasticity_diagnostics,
)
from alberta_eqx.replications.verdicts import Check, Replication, mean_ci95, paired_difference
from alberta_eqx.streams.permuted import InputPermutedStream, LabelPermutedStream, load_digits

METHODS = ("SGD", "S&P", "L2 Init", "UPGD", "weight clipping", "CBP", "ReDo")
"""The methods, in the order of the figure and the table."""
PROBLEMS = ("input-permuted", "label-permuted")


class Settings(NamedTuple):
    """The methods' hyperparameters (one setting each, from the UPGD authors' grids
    for input-permuted MNIST; Dohare et al.'s continual backprop; Sokar et al.'s ReDo).

    **Fields:**

    - `step_size`: every method's SGD step-size (the grids' 0.01).
    - `shrink`, `perturbation`: shrink-and-perturb's per-step shrink and noise
      standard deviation (the authors' `decay = 0.001`, `sigma = 0.01` times the
      step-size).
    - `l2_init`: L2 Init's strength.
    - `utility_decay`, `upgd_sigma`, `upgd_weight_decay`: UPGD's `beta`, `sigma` and
      weight decay (protecting, first-order, global scaling).
    - `kappa`: weight clipping's bound in units of the initialisation bound.
    - `replacement_rate`, `cbp_decay`, `maturity`: continual backprop's.
    - `tau`, `period`: ReDo's dormancy threshold and steps between checks.
    """

    step_size: float = 0.01
    shrink: float = 1e-5
    perturbation: float = 1e-4
    l2_init: float = 0.01
    utility_decay: float = 0.9999
    upgd_sigma: float = 0.01
    upgd_weight_decay: float = 0.001
    kappa: float = 2.0
    replacement_rate: float = 1e-4
    cbp_decay: float = 0.99
    maturity: int = 100
    tau: float = 0.1
    period: int = 1000


def _optimizer(method: str, s: Settings) -> optax.GradientTransformation:
    sgd = aeo.lms(s.step_size)
    return {
        "S&P": lambda: optax.chain(sgd, aeo.shrink_and_perturb(s.shrink, s.perturbation, 0)),
        "L2 Init": lambda: optax.chain(aeo.l2_init(s.l2_init), sgd),
        "UPGD": lambda: aeo.upgd(
            s.step_size, 0, s.utility_decay, s.upgd_sigma, s.upgd_weight_decay
        ),
        "weight clipping": lambda: optax.chain(sgd, aeo.weight_clipping(s.kappa)),
    }.get(method, lambda: sgd)()


def _unit_reset(method: str, s: Settings):
    if method == "CBP":
        return ContinualBackprop(s.replacement_rate, s.cbp_decay, s.maturity)
    if method == "ReDo":
        return ReDo(s.tau, s.period)
    return None


def _reseeded(opt_state, key):
    """The optimizer's noise keys replaced by `key` (each seed its own noise)."""
    raw = jax.random.key_data(key)
    is_noisy = lambda s: isinstance(s, NoiseState | UPGDState)  # noqa: E731
    return jax.tree.map(
        lambda s: s._replace(key=raw) if is_noisy(s) else s, opt_state, is_leaf=is_noisy
    )


def _builder(
    method: str, s: Settings, hidden_sizes: tuple[int, ...], num_inputs: int, num_classes: int
) -> Callable:
    def build(key):
        model_key, reset_key, noise_key = jax.random.split(jax.random.fold_in(key, 1), 3)
        model = MLP(
            num_inputs,
            num_classes,
            hidden_sizes,
            key=model_key,
            activation=jax.nn.relu,
            layer_norm=False,
        )
        learner = ClassifierLearner(
            model,
            _optimizer(method, s),
            unit_reset=_unit_reset(method, s),
            key=reset_key,
        )
        return eqx.tree_at(lambda c: c.opt_state, learner, _reseeded(learner.opt_state, noise_key))

    return build


class PlasticityResult(NamedTuple):
    """Online accuracy per task, per problem, method and seed.

    **Fields:**

    - `accuracy`: `{problem: {method: (seeds, tasks)}}`, the online accuracy of each
      task (the fraction of its examples classified right before learning them).
    - `dormant`: `{problem: {method: (seeds, 2, layers)}}`, the fraction of dormant
      units (tau = 0, `dormant_fraction`) of each hidden layer at the start and at
      the end of the run, over a probe batch of 500 digits.
    - `num_steps`: steps per run.
    """

    accuracy: dict[str, dict[str, Float[np.ndarray, "seeds tasks"]]]
    dormant: dict[str, dict[str, Float[np.ndarray, "seeds 2 layers"]]]
    num_steps: int

    def early_late(self, problem: str, method: str) -> tuple[np.ndarray, np.ndarray]:
        """Per seed, the mean accuracy of the early tasks (the first tenth, after the
        first task) and of the late ones (the last tenth)."""
        acc = self.accuracy[problem][method]
        tasks = acc.shape[1]
        tenth = max(1, tasks // 10)
        early = slice(1, 1 + tenth) if tasks > 1 + tenth else slice(0, tenth)
        return acc[:, early].mean(axis=1), acc[:, tasks - tenth :].mean(axis=1)

    def table(self) -> list[dict[str, float | str]]:
        """Per problem and method: the late tasks' accuracy (the last tenth; mean over
        seeds, 95% confidence half-width, t over seeds) and the final dormant
        fraction of each hidden layer."""
        rows: list[dict[str, float | str]] = []
        for problem, methods in self.accuracy.items():
            for method in methods:
                late = self.early_late(problem, method)[1]
                mean, half = mean_ci95(late)
                dormant = self.dormant[problem][method][:, 1].mean(axis=0)
                rows.append(
                    {
                        "problem": problem,
                        "method": method,
                        "late_accuracy": float(mean),
                        "late_accuracy_ci95": float(half),
                        "dormant_end": " ".join(f"{d:.2f}" for d in dormant),
                    }
                )
        return rows


def plasticity_permuted(
    num_steps: int = 1_000_000,
    num_seeds: int = 10,
    *,
    hidden_sizes: tuple[int, ...] = (300, 150),
    input_interval: int = 5000,
    label_interval: int = 2500,
    methods: tuple[str, ...] = METHODS,
    settings: Settings | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> PlasticityResult:
    """Every method on input-permuted and label-permuted digits, `num_seeds` seeds each
    (every seed its own network, example order and permutations; the seeds of a
    method in one compiled program). The defaults are the UPGD paper's protocol; reduce
    `num_steps`, the intervals and `hidden_sizes` together for a quick look.

    **Arguments:**

    - `num_steps`: steps per run, a multiple of both intervals.
    - `num_seeds`: seeds per method.
    - `hidden_sizes`: the network's hidden layers.
    - `input_interval`, `label_interval`: examples per task of each problem.
    - `methods`: a subset of `METHODS`.
    - `settings`: the methods' hyperparameters (default `Settings()`).
    - `seed`: the base seed.
    - `progress`: called with the steps done, segment by segment (tqdm's `update`).
    """
    num_steps = positive_int("num_steps", num_steps)
    num_seeds = positive_int("num_seeds", num_seeds)
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ValueError(f"methods must be among {METHODS}, got {sorted(unknown)}")
    settings = Settings() if settings is None else settings
    inputs, labels = load_digits()
    probe = jnp.asarray(inputs[:500])
    accuracy: dict[str, dict[str, np.ndarray]] = {}
    dormant: dict[str, dict[str, np.ndarray]] = {}
    for problem, stream in (
        ("input-permuted", InputPermutedStream(inputs, labels, input_interval)),
        ("label-permuted", LabelPermutedStream(inputs, labels, label_interval)),
    ):
        if num_steps % stream.interval:
            raise ValueError(
                f"num_steps must be a multiple of the task length {stream.interval}, "
                f"got {num_steps}"
            )
        keys = jax.random.split(jax.random.fold_in(jax.random.key(seed), len(accuracy)), num_seeds)
        accuracy[problem], dormant[problem] = {}, {}
        for method in methods:
            build = _builder(method, settings, hidden_sizes, inputs.shape[1], stream.num_classes)
            learners, states = seed_paired(build, stream, keys)
            segments = in_segments(
                learners,
                stream,
                num_steps,
                keys,
                progress,
                stream_states=states,
                metrics_window=stream.interval,
            )
            accuracy[problem][method] = np.concatenate(
                [np.asarray(r.metrics.accuracy)[0] for r in segments], axis=1
            )
            dormant[problem][method] = np.stack(
                [_dormant(learners, probe), _dormant(segments[-1].learner, probe)], axis=1
            )
    return PlasticityResult(accuracy, dormant, num_steps)


def _dormant(learners, probe) -> np.ndarray:
    """Each seed's dormant fraction per hidden layer, `(seeds, layers)`."""
    measure = lambda learner: jnp.stack(  # noqa: E731
        plasticity_diagnostics(learner.model, probe).dormant_fraction
    )
    return np.asarray(eqx.filter_vmap(eqx.filter_vmap(measure))(learners))[0]


def plot(result: PlasticityResult):
    """Online accuracy per task for every method, mean over seeds with a 95%
    confidence band, one panel per problem (the UPGD paper's Figure 4 layout)."""
    fig, axes = pyplot().subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    for ax, (problem, methods) in zip(axes, result.accuracy.items(), strict=True):
        for method, acc in methods.items():
            mean, half = mean_ci95(acc, axis=0)
            x = np.arange(1, acc.shape[1] + 1)
            ax.plot(x, mean, label=method)
            ax.fill_between(x, mean - half, mean + half, alpha=0.2)
        ax.set(xlabel="task", ylabel="online accuracy per task", ylim=(0, 1), title=problem)
    axes[0].legend(fontsize=8)
    fig.suptitle(
        "Elsayed & Mahmood (2024), Fig. 4 / Dohare et al. (2024): permuted digits "
        f"({result.num_steps:,} steps)"
    )
    return fig


def _report(result: PlasticityResult) -> list[str]:
    lines = [
        f"{row['problem']:15} {row['method']:16} late accuracy {row['late_accuracy']:.3f} "
        f"+- {row['late_accuracy_ci95']:.3f} (95% CI over seeds); dormant units at the end, "
        f"per layer: {row['dormant_end']}"
        for row in result.table()
    ]
    if "SGD" in result.dormant.get("label-permuted", {}):
        start, end = result.dormant["label-permuted"]["SGD"].mean(axis=0)
        lines.append(
            "SGD on label-permuted digits: dormant fraction per layer "
            f"{' '.join(f'{d:.2f}' for d in start)} at the start, "
            f"{' '.join(f'{d:.2f}' for d in end)} at the end"
        )
    return lines


def _sgd_falls(result: PlasticityResult) -> tuple[bool | None, str]:
    early, late = result.early_late("input-permuted", "SGD")
    passed, measured = paired_difference(late - early, -1)
    return passed, (
        f"SGD late - early {measured}; early {early.mean():.3f}, late {late.mean():.3f}"
    )


def _upgd_holds(result: PlasticityResult) -> tuple[bool | None, str]:
    early, late = result.early_late("input-permuted", "UPGD")
    falls, measured = paired_difference(late - early, -1)
    passed = None if falls is None else not falls
    return (
        passed,
        f"UPGD late - early {measured}; early {early.mean():.3f}, late {late.mean():.3f}",
    )


def _upgd_above_sgd(result: PlasticityResult) -> tuple[bool | None, str]:
    upgd = result.early_late("input-permuted", "UPGD")[1]
    sgd = result.early_late("input-permuted", "SGD")[1]
    passed, measured = paired_difference(upgd - sgd, 1)
    return passed, f"UPGD - SGD, late {measured}"


def _cbp_holds(result: PlasticityResult) -> tuple[bool | None, str]:
    early, late = result.early_late("input-permuted", "CBP")
    falls, measured = paired_difference(late - early, -1)
    passed = None if falls is None else not falls
    return passed, (
        f"CBP late - early {measured}; early {early.mean():.3f}, late {late.mean():.3f}"
    )


_WHY = (
    "digits are not MNIST (1,797 images, 64 inputs: a task of 5,000 examples sees each "
    "image about 3 times) and no method was tuned on them; see the table and figure"
)
_CHECKS = (
    Check(
        "Elsayed & Mahmood (2024), input-permuted: SGD's accuracy late in the run (last "
        "tenth of the tasks) falls below its early accuracy (first tenth; 95% CI of the "
        "paired difference below 0)",
        _sgd_falls,
        min_steps=1_000_000,
        if_failed=_WHY,
    ),
    Check(
        "Elsayed & Mahmood (2024), input-permuted: UPGD's late accuracy does not fall "
        "below its early accuracy (95% CI of the paired difference not below 0)",
        _upgd_holds,
        min_steps=1_000_000,
        if_failed=_WHY,
    ),
    Check(
        "Elsayed & Mahmood (2024), input-permuted: UPGD's late accuracy is above SGD's "
        "(95% CI of the paired difference above 0)",
        _upgd_above_sgd,
        min_steps=1_000_000,
        if_failed=_WHY,
    ),
    Check(
        "Dohare et al. (2024): continual backprop keeps plasticity on input-permuted "
        "data (late accuracy not below early, 95% CI of the paired difference not below 0)",
        _cbp_holds,
        min_steps=1_000_000,
        if_failed=_WHY,
    ),
)


PLASTICITY = Replication(
    title="Elsayed & Mahmood (2024), Figure 4; Dohare et al. (2024)",
    paper="Elsayed & Mahmood (2024): on input-permuted MNIST SGD loses plasticity (its "
    "accuracy falls over the tasks) and UPGD does not; Dohare et al. (2024): continual "
    "backprop keeps plasticity. Here on permuted digits, seven methods",
    run=lambda seeds, steps, progress: plasticity_permuted(
        num_steps=steps, num_seeds=seeds, progress=progress
    ),
    seeds=10,
    steps=1_000_000,
    quick_steps=50_000,
    steps_multiple=5000,
    total=lambda steps: 2 * len(METHODS) * steps,
    report=_report,
    figure=plot,
    filename="plasticity.png",
    checks=_CHECKS,
)
