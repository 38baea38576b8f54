"""Test doubles around the library's learners.

The concrete learners are final (Equinox's abstract-or-final rule), so a test that
needs a learner that behaves a little differently wraps one instead of subclassing
it: the double holds the learner in `inner` and writes its own `update`.
"""

import equinox as eqx

from alberta_eqx.learners import AbstractSupervisedLearner, StepSizeSnapshot


class AbstractWrappedLearner(AbstractSupervisedLearner):
    """A supervised learner that delegates everything but `update` (each double's
    own; `_with` wraps the learner it returns) to `inner`."""

    inner: eqx.AbstractVar[AbstractSupervisedLearner]

    @property
    def feature_dim(self):
        return self.inner.feature_dim

    @property
    def normalizer(self):
        return self.inner.normalizer

    @property
    def batch_shape(self):
        return self.inner.batch_shape

    def predict(self, x):
        return self.inner.predict(x)

    def step_size_snapshot(self, include_bias: bool = True) -> StepSizeSnapshot:
        return self.inner.step_size_snapshot(include_bias)

    def _with(self, inner: AbstractSupervisedLearner):
        """This double around another learner (the one `inner.update` returned)."""
        return eqx.tree_at(lambda double: double.inner, self, inner)
