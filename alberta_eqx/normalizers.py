"""Online feature normalizers: running per-feature statistics, updated every step.

`update(x)` folds `x` into the statistics and returns the normalised features
`x_hat = (x - mean) / (sqrt(var) + epsilon)` computed with the *updated* statistics,
and the new normalizer (the 0.2.x `OnlineNormalizer.normalize` semantics).
"""

import abc

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from alberta_eqx import _checks
from alberta_eqx._checks import ArrayLike


class AbstractNormalizer(eqx.Module):
    """Per-feature running mean and variance."""

    epsilon: eqx.AbstractVar[Float[Array, ""]]
    mean: eqx.AbstractVar[Float[Array, " n"] | None]

    @abc.abstractmethod
    def init(self, feature_dim: int, dtype=None) -> "AbstractNormalizer":
        """This normalizer with its statistics allocated for `feature_dim` features."""

    @abc.abstractmethod
    def update(self, x: Float[Array, " n"]) -> tuple["AbstractNormalizer", Float[Array, " n"]]:
        """Fold `x` into the statistics; return the new normalizer and `x_hat`."""

    @property
    @abc.abstractmethod
    def var(self) -> Float[Array, " n"]:
        """The current per-feature variance estimate."""

    def normalize(self, x: Float[Array, " n"]) -> Float[Array, " n"]:
        """`x_hat` under the current statistics, without updating them."""
        return (x - self.mean) / (jnp.sqrt(self.var) + self.epsilon)


class EMANormalizer(AbstractNormalizer):
    """Exponential moving averages of mean and variance, for non-stationary inputs
    (the 0.2.x `OnlineNormalizer`). Starts at `mean = 0`, `var = 1`; the effective
    decay `min(decay, 1 - 1/(n + 1))` ramps up so early estimates are not dominated
    by the initial values:

        mean_new = mean + (1 - d) (x - mean)
        var <- max(d var + (1 - d) (x - mean)(x - mean_new), epsilon)

    ```python
    import jax.numpy as jnp
    from alberta_eqx import EMANormalizer, LMS, LinearLearner

    normalizer = EMANormalizer(decay=0.99).init(3)  # mean 0, variance 1 for 3 features
    normalizer, z = normalizer.update(jnp.array([1.0, 0.5, -1.0]))  # z: x normalised
    normalizer.mean[0]  # about 0.5: the first step's decay is min(0.99, 1 - 1/2)
    learner = LinearLearner(3, LMS(0.1), normalizer=EMANormalizer())  # the usual use
    ```

    **Arguments:**

    - `decay`: `d` in (0, 1]; larger adapts more slowly (`1` is a plain running mean).
    - `epsilon`: floor on the variance and added to the standard deviation.

    The count `n` is a float of the statistics' dtype, so it never wraps: exact up to
    `2**53` in float64; in float32 it stops at `2**24` (where `n + 1` rounds to `n`),
    which leaves `d = decay` exact for every `decay < 1`, while with `decay = 1` each
    later sample is weighed `2**-24` instead of `1/(n + 1)`.
    """

    decay: Float[Array, ""] = _checks.hyperparameter()
    epsilon: Float[Array, ""] = _checks.hyperparameter()
    mean: Float[Array, " n"] | None
    variance: Float[Array, " n"] | None
    count: Float[Array, ""] | None

    def __init__(self, decay: ArrayLike = 0.99, epsilon: ArrayLike = 1e-8):
        self.decay = _checks.in_unit_interval("decay", decay)
        self.epsilon = _checks.positive("epsilon", epsilon)
        self.mean = self.variance = self.count = None

    def init(self, feature_dim: int, dtype=None) -> "EMANormalizer":
        dtype = dtype or self.decay.dtype
        return _with_stats(
            self,
            dtype,
            mean=jnp.zeros(feature_dim, dtype),
            variance=jnp.ones(feature_dim, dtype),
            count=jnp.zeros((), dtype),
        )

    @property
    def var(self) -> Float[Array, " n"]:
        if self.variance is None:
            raise ValueError(
                "this normalizer has no statistics yet: call normalizer.init(feature_dim), "
                "or pass it to a learner, which does"
            )
        return self.variance

    def update(self, x: Float[Array, " n"]) -> tuple["EMANormalizer", Float[Array, " n"]]:
        count = self.count + 1  # a float: it never wraps (see the class docstring)
        d = jnp.minimum(self.decay, 1 - 1 / (count + 1))
        mean = self.mean + (1 - d) * (x - self.mean)
        var = jnp.maximum(d * self.variance + (1 - d) * (x - self.mean) * (x - mean), self.epsilon)
        new = eqx.tree_at(lambda s: (s.mean, s.variance, s.count), self, (mean, var, count))
        return new, new.normalize(x)


class WelfordNormalizer(AbstractNormalizer):
    """Exact running mean and unbiased (Bessel-corrected) variance by Welford's
    algorithm, for stationary inputs. The variance reads 1 until two samples are in.

    ```python
    import jax.numpy as jnp
    from alberta_eqx import WelfordNormalizer

    normalizer = WelfordNormalizer().init(3)  # for 3 features
    normalizer, _ = normalizer.update(jnp.array([1.0, 0.5, -1.0]))
    normalizer, z = normalizer.update(jnp.array([3.0, 0.5, 1.0]))  # z: x normalised
    normalizer.mean[0]  # about 2.0
    normalizer.var[0]  # about 2.0 = ((1 - 2)**2 + (3 - 2)**2) / (2 - 1)
    ```

    **Arguments:**

    - `epsilon`: added to the standard deviation.

    The count `n` is a float of the statistics' dtype, so it never wraps: exact up to
    `2**53` in float64. In float32 it stops at `2**24` (where `n + 1` rounds to `n`):
    from there the mean weighs each sample `2**-24` instead of `1/n`, an exponential
    average over about 17 million samples; use float64 for exact counts beyond.
    """

    epsilon: Float[Array, ""] = _checks.hyperparameter()
    mean: Float[Array, " n"] | None
    m2: Float[Array, " n"] | None
    count: Float[Array, ""] | None

    def __init__(self, epsilon: ArrayLike = 1e-8):
        self.epsilon = _checks.positive("epsilon", epsilon)
        self.mean = self.m2 = self.count = None

    def init(self, feature_dim: int, dtype=None) -> "WelfordNormalizer":
        dtype = dtype or self.epsilon.dtype
        return _with_stats(
            self,
            dtype,
            mean=jnp.zeros(feature_dim, dtype),
            m2=jnp.zeros(feature_dim, dtype),
            count=jnp.zeros((), dtype),
        )

    @property
    def var(self) -> Float[Array, " n"]:
        return jnp.where(self.count >= 2, self.m2 / jnp.maximum(self.count - 1, 1), 1)

    def update(self, x: Float[Array, " n"]) -> tuple["WelfordNormalizer", Float[Array, " n"]]:
        count = self.count + 1  # a float: it never wraps (see the class docstring)
        mean = self.mean + (x - self.mean) / count
        m2 = self.m2 + (x - self.mean) * (x - mean)
        new = eqx.tree_at(lambda s: (s.mean, s.m2, s.count), self, (mean, m2, count))
        return new, new.normalize(x)


OnlineNormalizer = EMANormalizer
"""The 0.2.x name of `EMANormalizer`."""


def _with_stats(normalizer, dtype, **stats):
    """`normalizer` with its hyperparameters cast to `dtype` and `stats` set."""
    normalizer = _checks.cast_floating(normalizer, dtype)
    return eqx.tree_at(
        lambda s: tuple(getattr(s, name) for name in stats),
        normalizer,
        tuple(stats.values()),
        is_leaf=lambda x: x is None,
    )
