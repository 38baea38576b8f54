"""One event at a time: a compiled single-step path for programs (daemons, services)
that learn from live events and call `update` from Python once per event.

At this scale the cost of a call is dispatch, not arithmetic. `eqx.filter_jit`
partitions its arguments into arrays and static parts and hashes the static parts at
every call, which costs more than a small learner's whole update; a `jax.jit`
function of the arrays alone does not, but it still pays for every array it takes
and returns (an MLP and its optimizer state are dozens). `OnlineLearner` partitions
the learner once and keeps its arrays between events packed into one flat buffer per
dtype, so that each event passes a handful of buffers through a `jax.jit` function
(benchmarks/README.md has the measured latencies).
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from alberta_eqx.learners import AbstractLearner, UpdateResult
from alberta_eqx.nonlinear import MultiHeadUpdateResult


def _pack(leaves: list[Array]) -> dict[str, Array]:
    """The leaves raveled and concatenated, one 1-D buffer per dtype."""
    groups: dict[str, list[Array]] = {}
    for leaf in leaves:
        groups.setdefault(leaf.dtype.name, []).append(jnp.ravel(leaf))
    return {dtype: jnp.concatenate(parts) for dtype, parts in groups.items()}


class OnlineLearner:
    """A learner kept ready for single-event updates (a mutable holder, unlike the
    learners themselves: a daemon keeps one and feeds it events).

    ```python
    online = OnlineLearner(LinearLearner(12, IDBD(0.01, 0.01)))
    for x, y in events:                 # compiled at the first event
        result = online.update(x, y)    # result.prediction, result.error, result.metrics
    online.learner                      # the current learner, an ordinary module
    ```

    **Arguments:**

    - `learner`: any learner (`LinearLearner`, `MLPLearner`, ...). Its non-array fields
      (an activation function, an optax transformation) are compiled in as constants.
      Build an `MLPLearner` with `flatten=True` for this use: its optimizer then runs
      on one parameter vector, which halves the latency per event of a 64x64 MLP
      under Autostep (see `MLPLearner`).
    """

    def __init__(self, learner: AbstractLearner):
        if not isinstance(learner, AbstractLearner):
            raise TypeError(
                f"learner must be an alberta_eqx learner, got {type(learner).__name__}"
            )
        arrays, static = eqx.partition(learner, eqx.is_array)
        leaves, treedef = jax.tree.flatten(arrays)
        shapes = [(leaf.shape, leaf.dtype) for leaf in leaves]

        def unpack(buffers: dict[str, Array]) -> AbstractLearner:
            offsets = dict.fromkeys(buffers, 0)
            out = []
            for shape, dtype in shapes:
                start, size = offsets[dtype.name], math.prod(shape)
                out.append(buffers[dtype.name][start : start + size].reshape(shape))
                offsets[dtype.name] = start + size
            return eqx.combine(jax.tree.unflatten(treedef, out), static)

        def update(buffers, x, y):
            learner, result = unpack(buffers).update(x, y)
            return _pack(jax.tree.leaves(eqx.filter(learner, eqx.is_array))), result

        self._buffers = _pack(leaves)
        self._unpack = unpack
        self._update = jax.jit(update)
        self._predict = jax.jit(lambda buffers, x: unpack(buffers).predict(x))

    @property
    def learner(self) -> AbstractLearner:
        """The learner as it is now (after every event so far)."""
        return self._unpack(self._buffers)

    def update(
        self, x: Float[ArrayLike, " n"], y: ArrayLike
    ) -> UpdateResult | MultiHeadUpdateResult:
        """Predict `x`, learn from the target `y`; returns the step's `UpdateResult`
        (the prediction made before learning, the error, the metrics)."""
        self._buffers, result = self._update(self._buffers, x, y)
        return result

    def predict(self, x: Float[ArrayLike, " n"]) -> Float[Array, "*k"]:
        """The prediction for `x`, without learning from it."""
        return self._predict(self._buffers, x)
