"""Permuted classification streams, the loss-of-plasticity benchmarks (Elsayed and
Mahmood 2024; Dohare et al. 2024): examples of a labelled data set shown one at a
time, with a new random permutation of the inputs (or of the labels) every `interval`
examples.

The data are arrays the user passes: the default, `load_digits()`, reads
scikit-learn's bundled handwritten digits (no download; `pip install
'alberta-eqx[plasticity]'`). MNIST or any other `(X, y)` works the same way.
"""

import abc
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray

from alberta_eqx import _checks
from alberta_eqx.streams._base import AbstractStream, TimeStep

__all__ = ["InputPermutedStream", "LabelPermutedStream", "PermutedState", "load_digits"]


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's handwritten digits (1,797 8x8 images, 10 classes, shipped inside
    scikit-learn): the pixels (0..16) scaled to `[-1, 1]` as the UPGD authors scale
    MNIST's, `(1797, 64)` float32, and the labels `(1797,)` int32."""
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the default data set needs scikit-learn: pip install 'alberta-eqx[plasticity]', "
            "or pass your own inputs and labels"
        ) from error
    data = sklearn_digits()
    return (data.data / 8.0 - 1.0).astype(np.float32), data.target.astype(np.int32)


class PermutedState(NamedTuple):
    """A permuted stream's state: every step is a function of the key and the step.

    **Fields:**

    - `key`: the order of the examples comes from `fold_in(key, 0)`, the
      permutations from `fold_in(key, 1)`.
    """

    key: PRNGKeyArray


def _labelled_data(
    inputs: ArrayLike | None, labels: ArrayLike | None, num_classes: int | None
) -> tuple[Float[Array, "m n"], Int[Array, " m"], int]:
    """The checked `(inputs, labels, num_classes)` of a permuted stream (the digits of
    `load_digits()` when both arrays are None)."""
    if (inputs is None) != (labels is None):
        raise ValueError("pass both inputs and labels, or neither (the digits)")
    if inputs is None or labels is None:
        inputs, labels = load_digits()
    x, y = np.asarray(inputs), np.asarray(labels)
    if x.ndim != 2 or not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"inputs must be a 2-D floating array, got {x.dtype} {x.shape}")
    if y.shape != x.shape[:1] or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(
            f"labels must be integers, one per row of inputs ({x.shape[0]}), got "
            f"{y.dtype} {y.shape}"
        )
    if not np.all(np.isfinite(x)):
        raise ValueError("inputs must be finite")
    classes = int(y.max()) + 1 if num_classes is None else num_classes
    num_classes = _checks.positive_int("num_classes", classes)
    if y.min() < 0 or y.max() >= num_classes:
        raise ValueError(
            f"labels must lie in [0, num_classes={num_classes}), got [{y.min()}, {y.max()}]"
        )
    return jnp.asarray(x), jnp.asarray(y, jnp.int32), num_classes


class _AbstractPermutedStream(AbstractStream[TimeStep]):
    """Examples of `(inputs, labels)` in shuffled passes, step `t` in pass
    `t // len(labels)` (a fresh shuffle per pass, as a shuffling data loader's
    epochs); task `t // interval` applies its own random permutation, the first task
    included. The target is the class index as a float. Concrete streams implement
    `_permute`."""

    inputs: eqx.AbstractVar[Float[Array, "m n"]]
    labels: eqx.AbstractVar[Int[Array, " m"]]
    interval: eqx.AbstractVar[int]
    num_classes: eqx.AbstractVar[int]

    @property
    def feature_dim(self) -> int:
        return self.inputs.shape[1]

    def init(self, key: PRNGKeyArray) -> PermutedState:
        return PermutedState(key)

    @abc.abstractmethod
    def _permute(self, key: PRNGKeyArray, x: Array, y: Array) -> tuple[Array, Array]:
        """One example `(x, y)` under the permutation drawn from `key`."""

    def chunk(
        self, state: PermutedState, t0: Int[ArrayLike, ""], num_steps: int
    ) -> tuple[TimeStep, PermutedState]:
        m = self.labels.shape[0]
        order_key = jax.random.fold_in(state.key, 0)
        task_key = jax.random.fold_in(state.key, 1)

        def example(t):
            # the t-th example: position t % m of pass t // m's shuffle
            index = jax.random.permutation(jax.random.fold_in(order_key, t // m), m)[t % m]
            key = jax.random.fold_in(task_key, t // self.interval)
            return self._permute(key, self.inputs[index], self.labels[index])

        x, y = jax.vmap(example)(jnp.asarray(t0) + jnp.arange(num_steps))
        return TimeStep(x, y.astype(x.dtype)), state


class InputPermutedStream(_AbstractPermutedStream):
    """Input-permuted classification (the UPGD paper's input-permuted MNIST): every
    `interval` examples the input features are shuffled by a new random permutation.

    ```python
    import jax
    from alberta_eqx import InputPermutedStream

    stream = InputPermutedStream(interval=100)  # the digits, pixels re-permuted every 100 steps
    state = stream.init(jax.random.key(0))
    timestep, state = stream.step(state, 0)
    timestep.observation.shape  # (64,): an 8x8 image's pixels, permuted
    timestep.target  # the class, 0 .. 9, as a float
    ```

    **Arguments:**

    - `inputs`: `(m, n)` floating-point features; None (with `labels` None) for the
      digits of `load_digits()`.
    - `labels`: `(m,)` integer classes in `[0, num_classes)`.
    - `interval`: examples per task (default 5,000, the UPGD protocol).
    - `num_classes`: the number of classes (default: the largest label plus one).
    """

    inputs: Float[Array, "m n"]
    labels: Int[Array, " m"]
    interval: int = eqx.field(static=True)
    num_classes: int = eqx.field(static=True)

    def __init__(
        self,
        inputs: ArrayLike | None = None,
        labels: ArrayLike | None = None,
        interval: int = 5000,
        num_classes: int | None = None,
    ):
        self.inputs, self.labels, self.num_classes = _labelled_data(inputs, labels, num_classes)
        self.interval = _checks.positive_int("interval", interval)

    def _permute(self, key: PRNGKeyArray, x: Array, y: Array) -> tuple[Array, Array]:
        return x[jax.random.permutation(key, x.shape[0])], y


class LabelPermutedStream(_AbstractPermutedStream):
    """Label-permuted classification (the UPGD paper's label-permuted EMNIST and
    CIFAR-10): every `interval` examples the classes are relabelled by a new random
    permutation (independent of the last one; the authors compose each with the
    previous, which gives the same distribution).

    ```python
    import jax
    import jax.numpy as jnp
    from alberta_eqx import LabelPermutedStream

    inputs = jnp.array([[1.0, 0.0, 0.5], [0.0, 1.0, -0.5], [1.0, 1.0, 0.0]])
    labels = jnp.array([0, 1, 2])  # or leave both out for the digits
    stream = LabelPermutedStream(inputs, labels, interval=30)  # classes relabelled every 30
    state = stream.init(jax.random.key(0))
    timestep, state = stream.step(state, 0)  # an example, its label under task 0's permutation
    ```

    **Arguments:**

    - `inputs`, `labels`, `num_classes`: as `InputPermutedStream`.
    - `interval`: examples per task (default 2,500, the UPGD protocol).
    """

    inputs: Float[Array, "m n"]
    labels: Int[Array, " m"]
    interval: int = eqx.field(static=True)
    num_classes: int = eqx.field(static=True)

    def __init__(
        self,
        inputs: ArrayLike | None = None,
        labels: ArrayLike | None = None,
        interval: int = 2500,
        num_classes: int | None = None,
    ):
        self.inputs, self.labels, self.num_classes = _labelled_data(inputs, labels, num_classes)
        self.interval = _checks.positive_int("interval", interval)

    def _permute(self, key: PRNGKeyArray, x: Array, y: Array) -> tuple[Array, Array]:
        return x, jax.random.permutation(key, self.num_classes)[y]
