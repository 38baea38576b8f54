"""A nonlinear non-stationary stream: a drifting two-layer teacher network."""

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray

from alberta_eqx import _checks
from alberta_eqx.streams._base import AbstractStream, TimeStep, step_keys
from alberta_eqx.streams._draws import cumsum, default_float, normals


class TeacherState(NamedTuple):
    """The teacher after the latest step.

    **Fields:**

    - `key`: the stream's key; step `t` draws from `fold_in(key, t)`.
    - `hidden`: the hidden layer's weights `W`, shape `(hidden_size, feature_dim)`.
    - `output`: the output weights `v`, shape `(hidden_size,)`.
    """

    key: PRNGKeyArray
    hidden: Float[Array, "h n"]
    output: Float[Array, " h"]


class NonlinearTeacherStream(AbstractStream[TimeStep]):
    """A drifting two-layer tanh teacher:

        x_t ~ N(0, I),   y_t = v_t . tanh(W_t x_t) + noise_std N(0, 1),
        W_t = W_{t-1} + drift_rate N(0, I) / sqrt(n),   v_t = v_{t-1} + drift_rate N(0, I).

    `W` starts `N(0, 1/n)` (unit-variance pre-activations) and `v` starts `N(0, 1)`,
    so the target's mean square, on average over teachers, is about `0.4 hidden_size`
    (`E tanh(N(0, 1))^2 ~ 0.39`) plus `noise_std**2`. The random walks are cumulative
    sums within a chunk, carried across chunks in the state; each step draws
    `(hidden_size + 1) (n + 1)` normals.

    ```python
    import jax
    from alberta_eqx import NonlinearTeacherStream

    stream = NonlinearTeacherStream(3, hidden_size=8, drift_rate=1e-3)  # y = v . tanh(W x) + noise
    state = stream.init(jax.random.key(0))
    timestep, state = stream.step(state, 0)  # step 0's (observation, target)
    ```

    **Arguments:**

    - `feature_dim`: the number of input features `n`.
    - `hidden_size`: the teacher's hidden units.
    - `drift_rate`: the standard deviation of each weight's change per step (scaled
      by `1/sqrt(n)` for `W`); `0` for a fixed teacher.
    - `noise_std`: the standard deviation of the target noise.
    """

    feature_dim: int = eqx.field(static=True)
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
        self.feature_dim = _checks.positive_int("feature_dim", feature_dim)
        self.hidden_size = _checks.positive_int("hidden_size", hidden_size)
        self.drift_rate = _checks.non_negative("drift_rate", drift_rate)
        self.noise_std = _checks.non_negative("noise_std", noise_std)

    def init(self, key: PRNGKeyArray) -> TeacherState:
        key, hidden_key, output_key = jax.random.split(key, 3)
        h, n = self.hidden_size, self.feature_dim
        return TeacherState(
            key,
            jax.random.normal(hidden_key, (h, n), default_float()) / jnp.sqrt(n),
            jax.random.normal(output_key, (h,), default_float()),
        )

    def chunk(
        self, state: TeacherState, t0: Int[ArrayLike, ""], num_steps: int
    ) -> tuple[TimeStep, TeacherState]:
        h, n = self.hidden_size, self.feature_dim
        # One draw per step, split as [dW (h n) | dv (h) | x (n) | noise (1)].
        z = normals(step_keys(state.key, t0, num_steps), h * n + h + n + 1)
        dw, dv, x, noise = jnp.split(z, [h * n, h * n + h, h * n + h + n], axis=1)
        # W_t = W_{t-1} + drift_rate dW_t / sqrt(n);  v_t = v_{t-1} + drift_rate dv_t
        hidden = state.hidden + self.drift_rate * cumsum(dw).reshape(-1, h, n) / jnp.sqrt(n)
        output = state.output + self.drift_rate * cumsum(dv)
        # y_t = v_t . tanh(W_t x_t) + noise_std N(0, 1)
        y = jnp.sum(output * jnp.tanh(jnp.einsum("thn,tn->th", hidden, x)), -1)
        y = y + self.noise_std * noise[:, 0]
        return TimeStep(x, y), TeacherState(state.key, hidden[-1], output[-1])
