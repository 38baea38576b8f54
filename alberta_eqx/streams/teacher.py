"""A nonlinear non-stationary stream: a drifting two-layer teacher network."""

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray

from alberta_eqx import _checks
from alberta_eqx.streams._base import AbstractStream, TimeStep, step_keys
from alberta_eqx.streams.synthetic import _float, _normals


class TeacherState(NamedTuple):
    """The teacher's current weights."""

    key: PRNGKeyArray
    hidden: Float[Array, "h n"]
    output: Float[Array, " h"]


class NonlinearTeacherStream(AbstractStream):
    """`y = v . tanh(W x) + noise` with `x ~ N(0, I)`, where every teacher weight
    drifts by a Gaussian random walk. `W` starts `N(0, 1/n)` (unit-variance
    pre-activations) and `v` starts `N(0, 1)`.

    **Arguments:**

    - `feature_dim`: the number of input features `n`.
    - `hidden_size`: the teacher's hidden units.
    - `drift_rate`: the standard deviation of each weight's change per step (scaled
      by `1/sqrt(n)` for `W`).
    - `noise_std`: the standard deviation of the target noise.
    """

    dim: int = eqx.field(static=True)
    hidden_size: int = eqx.field(static=True)
    drift_rate: Float[Array, ""]
    noise_std: Float[Array, ""]

    def __init__(
        self,
        feature_dim: int,
        hidden_size: int = 8,
        drift_rate: ArrayLike = 1e-3,
        noise_std: ArrayLike = 0.1,
    ):
        self.dim = _checks.positive_int("feature_dim", feature_dim)
        self.hidden_size = _checks.positive_int("hidden_size", hidden_size)
        self.drift_rate = _checks.non_negative("drift_rate", drift_rate)
        self.noise_std = _checks.non_negative("noise_std", noise_std)

    @property
    def feature_dim(self) -> int:
        return self.dim

    def init(self, key: PRNGKeyArray) -> TeacherState:
        key, hidden_key, output_key = jax.random.split(key, 3)
        h, n = self.hidden_size, self.dim
        return TeacherState(
            key,
            jax.random.normal(hidden_key, (h, n), _float()) / jnp.sqrt(n),
            jax.random.normal(output_key, (h,), _float()),
        )

    def chunk(
        self, state: TeacherState, t0: Int[Array, ""], num_steps: int
    ) -> tuple[TimeStep, TeacherState]:
        h, n = self.hidden_size, self.dim
        z = _normals(step_keys(state.key, t0, num_steps), h * n + h + n + 1)
        drift = jnp.cumsum(z[:, : h * n + h], axis=0) * self.drift_rate
        hidden = state.hidden + drift[:, : h * n].reshape(-1, h, n) / jnp.sqrt(n)
        output = state.output + drift[:, h * n :]
        x = z[:, h * n + h : h * n + h + n]
        y = jnp.sum(output * jnp.tanh(jnp.einsum("thn,tn->th", hidden, x)), -1)
        y = y + self.noise_std * z[:, -1]
        return TimeStep(x, y), TeacherState(state.key, hidden[-1], output[-1])
