"""One event at a time: a compiled single-step path for programs (daemons, services)
that learn from live events and call `update` from Python once per event.

At this scale the cost of a call is dispatch, not arithmetic. `eqx.filter_jit`
partitions its arguments into arrays and static parts and hashes the static parts at
every call, which costs more than a small learner's whole update; a `jax.jit`
function of the arrays alone does not. `OnlineLearner` partitions the learner once,
keeps its arrays between events, and calls such a function (benchmarks/README.md has
the measured latencies).
"""

import equinox as eqx
import jax
from jaxtyping import Array, ArrayLike, Float

from alberta_eqx.learners import AbstractLearner, UpdateResult


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
    """

    def __init__(self, learner: AbstractLearner):
        if not isinstance(learner, AbstractLearner):
            raise TypeError(
                f"learner must be an alberta_eqx learner, got {type(learner).__name__}"
            )
        self._arrays, static = eqx.partition(learner, eqx.is_array)

        def update(arrays, x, y):
            learner, result = eqx.combine(arrays, static).update(x, y)
            return eqx.filter(learner, eqx.is_array), result

        self._static = static
        self._update = jax.jit(update)
        self._predict = jax.jit(lambda arrays, x: eqx.combine(arrays, static).predict(x))

    @property
    def learner(self) -> AbstractLearner:
        """The learner as it is now (after every event so far)."""
        return eqx.combine(self._arrays, self._static)

    def update(self, x: Float[ArrayLike, " n"], y: ArrayLike) -> UpdateResult:
        """Predict `x`, learn from the target `y`; returns the step's `UpdateResult`
        (the prediction made before learning, the error, the metrics)."""
        self._arrays, result = self._update(self._arrays, x, y)
        return result

    def predict(self, x: Float[ArrayLike, " n"]) -> Float[Array, ""]:
        """The prediction for `x`, without learning from it."""
        return self._predict(self._arrays, x)
