"""Synthetic linear targets that change: `y_t = w_t . x_t + noise`, with features
`x_t ~ N(0, I)` and weights `w_t` that drift, jump, flip sign, cycle or oscillate
(the 0.2.x set, same parameters and meaning).

Each stream generates a whole chunk of steps in one vectorised call. Step `t`'s draws
come from `fold_in(key, t)`; weights that evolve (a random walk, flipped signs) are
advanced over a chunk with cumulative sums and products; piecewise-constant weights
are looked up from their segment index, drawn from `fold_in` of the segment number.
"""

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray

from alberta_eqx import _checks
from alberta_eqx.streams._base import AbstractStream, TimeStep, step_keys
from alberta_eqx.streams._draws import cumsum, default_float, normals, segment_draws


def _linear_targets(key, t0, num_steps: int, weights, feature_std, noise_std) -> TimeStep:
    """`x_t = feature_std N(0, I)` and `y_t = w_t . x_t + noise_std N(0, 1)`, given each
    step's weights `w_t` (shape `(num_steps, n)`)."""
    d = weights.shape[-1]
    z = normals(step_keys(key, t0, num_steps), d + 1)
    x = feature_std * z[:, :d]
    return TimeStep(x, jnp.sum(weights * x, axis=-1) + noise_std * z[:, -1])


class DriftingTargetState(NamedTuple):
    """State of a stream whose target weights follow a random walk."""

    key: PRNGKeyArray
    weights: Float[Array, " n"]


class DriftingTargetStream(AbstractStream[TimeStep]):
    """A linear target whose weights drift by a Gaussian random walk:
    `w_t = w_{t-1} + drift_rate N(0, I)`, `y_t = w_t . x_t + noise_std N(0, 1)`.

    ```python
    import jax
    from alberta_eqx import LMS, DriftingTargetStream, LinearLearner

    stream = DriftingTargetStream(3, drift_rate=0.001, noise_std=0.1)
    state = stream.init(jax.random.key(0))  # the seed's target weights, and its key
    timestep, state = stream.step(state, 0)  # step 0's example: observation x_0, target y*_0
    learner, _ = LinearLearner(3, LMS(0.1)).update(timestep.observation, timestep.target)
    timesteps, state = stream.chunk(state, 1, 100)  # steps 1 .. 100, stacked
    timesteps.observation.shape  # (100, 3)
    ```

    **Arguments:**

    - `feature_dim`: the number of features.
    - `drift_rate`: the standard deviation of each weight's change per step.
    - `noise_std`: the standard deviation of the target noise.
    - `feature_std`: the standard deviation of the features.
    """

    feature_dim: int = eqx.field(static=True)
    drift_rate: Float[Array, ""]
    noise_std: Float[Array, ""]
    feature_std: Float[Array, ""]

    def __init__(
        self,
        feature_dim: int,
        drift_rate: ArrayLike = 0.001,
        noise_std: ArrayLike = 0.1,
        feature_std: ArrayLike = 1.0,
    ):
        self.feature_dim = _checks.positive_int("feature_dim", feature_dim)
        self.drift_rate = _checks.non_negative("drift_rate", drift_rate)
        self.noise_std = _checks.non_negative("noise_std", noise_std)
        self.feature_std = _checks.positive("feature_std", feature_std)

    def init(self, key: PRNGKeyArray) -> DriftingTargetState:
        key, init_key = jax.random.split(key)
        return DriftingTargetState(
            key, jax.random.normal(init_key, (self.feature_dim,), default_float())
        )

    def chunk(
        self, state: DriftingTargetState, t0: Int[ArrayLike, ""], num_steps: int
    ) -> tuple[TimeStep, DriftingTargetState]:
        d = self.feature_dim
        z = normals(step_keys(state.key, t0, num_steps), 2 * d + 1)
        weights = state.weights + self.drift_rate * cumsum(z[:, :d])
        x = self.feature_std * z[:, d : 2 * d]
        y = jnp.sum(weights * x, axis=-1) + self.noise_std * z[:, -1]
        return TimeStep(x, y), DriftingTargetState(state.key, weights[-1])


class KeyState(NamedTuple):
    """State of a stream whose every step is a function of its key and step index."""

    key: PRNGKeyArray


class AbruptChangeStream(AbstractStream[TimeStep]):
    """A linear target whose weights are redrawn from N(0, I) every `change_interval`
    steps (at `t = 0, change_interval, ...`) and constant in between.

    ```python
    import jax
    from alberta_eqx import AbruptChangeStream

    stream = AbruptChangeStream(3, change_interval=100)  # new target weights every 100 steps
    state = stream.init(jax.random.key(0))
    timestep, state = stream.step(state, 0)  # step 0's (observation, target)
    ```

    **Arguments:**

    - `feature_dim`: the number of features.
    - `change_interval`: steps between abrupt changes.
    - `noise_std`, `feature_std`: as in `DriftingTargetStream`.
    """

    feature_dim: int = eqx.field(static=True)
    change_interval: int = eqx.field(static=True)
    noise_std: Float[Array, ""]
    feature_std: Float[Array, ""]

    def __init__(
        self,
        feature_dim: int,
        change_interval: int = 1000,
        noise_std: ArrayLike = 0.1,
        feature_std: ArrayLike = 1.0,
    ):
        self.feature_dim = _checks.positive_int("feature_dim", feature_dim)
        self.change_interval = _checks.positive_int("change_interval", change_interval)
        self.noise_std = _checks.non_negative("noise_std", noise_std)
        self.feature_std = _checks.positive("feature_std", feature_std)

    def init(self, key: PRNGKeyArray) -> KeyState:
        return KeyState(key)

    def chunk(
        self, state: KeyState, t0: Int[ArrayLike, ""], num_steps: int
    ) -> tuple[TimeStep, KeyState]:
        d = self.feature_dim
        step_key, weight_key = jax.random.split(state.key)
        weights = segment_draws(
            weight_key,
            t0,
            num_steps,
            self.change_interval,
            lambda k: jax.random.normal(k, (d,), default_float()),
        )
        timesteps = _linear_targets(
            step_key, t0, num_steps, weights, self.feature_std, self.noise_std
        )
        return timesteps, state


class SignsState(NamedTuple):
    """State of `SuttonExperiment1Stream`: the relevant inputs' current signs."""

    key: PRNGKeyArray
    signs: Float[Array, " relevant"]


class SuttonExperiment1Stream(AbstractStream[TimeStep]):
    """Sutton (1992), Experiment 1: `x ~ N(0, I)`, target `sum_k s_k x_k` over the
    first `num_relevant` inputs with signs `s_k` in {+1, -1} (all +1 at the start);
    at every `t > 0` with `t % change_interval == 0`, one sign chosen at random flips.

    ```python
    import jax
    from alberta_eqx import SuttonExperiment1Stream

    # 5 relevant inputs whose target weights are +-1, one sign flipped every 20 steps
    stream = SuttonExperiment1Stream(num_relevant=5, num_irrelevant=15, change_interval=20)
    state = stream.init(jax.random.key(0))
    timestep, state = stream.step(state, 0)
    timestep.observation.shape  # (20,): the relevant inputs, then the irrelevant ones
    ```

    **Arguments:**

    - `num_relevant`: inputs that carry the target.
    - `num_irrelevant`: inputs that do not.
    - `change_interval`: steps between sign flips.
    """

    num_relevant: int = eqx.field(static=True)
    num_irrelevant: int = eqx.field(static=True)
    change_interval: int = eqx.field(static=True)

    def __init__(self, num_relevant: int = 5, num_irrelevant: int = 15, change_interval: int = 20):
        self.num_relevant = _checks.positive_int("num_relevant", num_relevant)
        self.num_irrelevant = _checks.non_negative_int("num_irrelevant", num_irrelevant)
        self.change_interval = _checks.positive_int("change_interval", change_interval)

    @property
    def feature_dim(self) -> int:
        return self.num_relevant + self.num_irrelevant

    def init(self, key: PRNGKeyArray) -> SignsState:
        return SignsState(key, jnp.ones(self.num_relevant, default_float()))

    def chunk(
        self, state: SignsState, t0: Int[ArrayLike, ""], num_steps: int
    ) -> tuple[TimeStep, SignsState]:
        r = self.num_relevant

        # One normal vector per step: the features, and one more normal whose CDF is
        # uniform on (0, 1) and picks the sign to flip (one random draw per step
        # compiles and runs faster than a split and a second draw).
        z = normals(step_keys(state.key, t0, num_steps), self.feature_dim + 1)
        x = z[:, :-1]
        which = jnp.minimum(jnp.floor(r * jax.scipy.special.ndtr(z[:, -1])), r - 1)
        ts = t0 + jnp.arange(num_steps)
        flips = (ts > 0) & (ts % self.change_interval == 0)
        masks = jnp.where(flips[:, None] & (jnp.arange(r) == which[:, None]), -1.0, 1.0)
        signs = state.signs * jnp.cumprod(
            masks.astype(default_float()), axis=0
        )  # exact: +-1 products
        y = jnp.sum(signs * x[:, :r], axis=-1)
        return TimeStep(x, y), SignsState(state.key, signs[-1])


class CyclicState(NamedTuple):
    """State of `CyclicStream`: its fixed weight configurations."""

    key: PRNGKeyArray
    configurations: Float[Array, "k n"]


class CyclicStream(AbstractStream[TimeStep]):
    """A linear target cycling through `num_configurations` fixed weight vectors
    (drawn at `init`), each active for `cycle_length` steps.

    ```python
    import jax
    from alberta_eqx import CyclicStream

    # 4 fixed target weight vectors, the next one every 100 steps, then round again
    stream = CyclicStream(3, cycle_length=100, num_configurations=4)
    state = stream.init(jax.random.key(0))
    timestep, state = stream.step(state, 0)  # step 0's (observation, target)
    ```

    **Arguments:**

    - `feature_dim`: the number of features.
    - `cycle_length`: steps each configuration stays active.
    - `num_configurations`: how many configurations to cycle through.
    - `noise_std`, `feature_std`: as in `DriftingTargetStream`.
    """

    feature_dim: int = eqx.field(static=True)
    cycle_length: int = eqx.field(static=True)
    num_configurations: int = eqx.field(static=True)
    noise_std: Float[Array, ""]
    feature_std: Float[Array, ""]

    def __init__(
        self,
        feature_dim: int,
        cycle_length: int = 500,
        num_configurations: int = 4,
        noise_std: ArrayLike = 0.1,
        feature_std: ArrayLike = 1.0,
    ):
        self.feature_dim = _checks.positive_int("feature_dim", feature_dim)
        self.cycle_length = _checks.positive_int("cycle_length", cycle_length)
        self.num_configurations = _checks.positive_int("num_configurations", num_configurations)
        self.noise_std = _checks.non_negative("noise_std", noise_std)
        self.feature_std = _checks.positive("feature_std", feature_std)

    def init(self, key: PRNGKeyArray) -> CyclicState:
        key, init_key = jax.random.split(key)
        shape = (self.num_configurations, self.feature_dim)
        return CyclicState(key, jax.random.normal(init_key, shape, default_float()))

    def chunk(
        self, state: CyclicState, t0: Int[ArrayLike, ""], num_steps: int
    ) -> tuple[TimeStep, CyclicState]:
        ts = t0 + jnp.arange(num_steps)
        weights = state.configurations[(ts // self.cycle_length) % self.num_configurations]
        timesteps = _linear_targets(
            state.key, t0, num_steps, weights, self.feature_std, self.noise_std
        )
        return timesteps, state


class PeriodicState(NamedTuple):
    """State of `PeriodicChangeStream`: base weights and phases."""

    key: PRNGKeyArray
    base_weights: Float[Array, " n"]
    phases: Float[Array, " n"]


class PeriodicChangeStream(AbstractStream[TimeStep]):
    """A linear target whose weights oscillate:
    `w_t = base + amplitude sin(2 pi t / period + phase)`, with a random phase per weight.

    ```python
    import jax
    from alberta_eqx import PeriodicChangeStream

    stream = PeriodicChangeStream(3, period=100, amplitude=1.0)  # weights oscillate, period 100
    state = stream.init(jax.random.key(0))
    timestep, state = stream.step(state, 0)  # step 0's (observation, target)
    ```

    **Arguments:**

    - `feature_dim`: the number of features.
    - `period`: steps per oscillation.
    - `amplitude`: the oscillation's amplitude.
    - `noise_std`, `feature_std`: as in `DriftingTargetStream`.
    """

    feature_dim: int = eqx.field(static=True)
    period: int = eqx.field(static=True)
    amplitude: Float[Array, ""]
    noise_std: Float[Array, ""]
    feature_std: Float[Array, ""]

    def __init__(
        self,
        feature_dim: int,
        period: int = 1000,
        amplitude: ArrayLike = 1.0,
        noise_std: ArrayLike = 0.1,
        feature_std: ArrayLike = 1.0,
    ):
        self.feature_dim = _checks.positive_int("feature_dim", feature_dim)
        self.period = _checks.positive_int("period", period)
        self.amplitude = _checks.non_negative("amplitude", amplitude)
        self.noise_std = _checks.non_negative("noise_std", noise_std)
        self.feature_std = _checks.positive("feature_std", feature_std)

    def init(self, key: PRNGKeyArray) -> PeriodicState:
        key, weight_key, phase_key = jax.random.split(key, 3)
        return PeriodicState(
            key,
            jax.random.normal(weight_key, (self.feature_dim,), default_float()),
            jax.random.uniform(phase_key, (self.feature_dim,), default_float(), 0, 2 * jnp.pi),
        )

    def chunk(
        self, state: PeriodicState, t0: Int[ArrayLike, ""], num_steps: int
    ) -> tuple[TimeStep, PeriodicState]:
        # `t % period` first: exact in integers, so the angle stays accurate for any t.
        ts = ((t0 + jnp.arange(num_steps)) % self.period).astype(default_float())
        weights = state.base_weights + self.amplitude * jnp.sin(
            2 * jnp.pi * ts[:, None] / self.period + state.phases
        )
        timesteps = _linear_targets(
            state.key, t0, num_steps, weights, self.feature_std, self.noise_std
        )
        return timesteps, state


# The 0.2.x names.
RandomWalkTarget = DriftingTargetStream
AbruptChangeTarget = AbruptChangeStream
CyclicTarget = CyclicStream
PeriodicChangeTarget = PeriodicChangeStream
