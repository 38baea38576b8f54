"""The stream protocol: where observations and targets come from.

A stream is an `eqx.Module` whose fields are its parameters; its running state (a key,
drifting weights, ...) is a separate pytree returned by `init`, so one stream module
serves many seeds. Every stream offers two views of the same sequence:

- `step(state, t)`: the observation at step `t` (the 0.2.x `ScanStream` protocol);
- `chunk(state, t0, num_steps)`: steps `t0 .. t0 + num_steps - 1` stacked on a leading
  axis, in one vectorised call. Runners use this, so that the sequential `lax.scan`
  only runs the learner.

Both views give the same numbers: the randomness of step `t` comes from
`jax.random.fold_in(key, t)`, never from a key split once per step, so the
observation at step `t` does not depend on how the steps were grouped into chunks.
"""

import abc
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, Key, PRNGKeyArray, UInt32


class TimeStep(NamedTuple):
    """One example of a supervised stream (or a stack of them, with a leading axis).

    **Fields:**

    - `observation`: the features `x_t`, shape `(feature_dim,)`.
    - `target`: the target `y*_t`, a scalar.
    """

    observation: Float[Array, "*steps n"]
    target: Float[Array, "*steps"]


StreamState = Any
"""A stream's running state: any pytree of arrays, as returned by `init`."""


class AbstractStream(eqx.Module):
    """A non-stationary stream of `(observation, target)` pairs.

    Concrete streams implement `feature_dim`, `init` and `chunk`; `step` is derived
    from `chunk`.
    """

    @property
    @abc.abstractmethod
    def feature_dim(self) -> int:
        """The length of every observation vector."""

    @abc.abstractmethod
    def init(self, key: PRNGKeyArray) -> StreamState:
        """The stream's state before step 0."""

    @abc.abstractmethod
    def chunk(
        self, state: StreamState, t0: Int[Array, ""], num_steps: int
    ) -> tuple[TimeStep, StreamState]:
        """Steps `t0 .. t0 + num_steps - 1`, stacked on a leading axis of length
        `num_steps`, and the state after the last of them.

        `num_steps` is a static Python int; `t0` may be traced.
        """

    def step(self, state: StreamState, t: Int[Array, ""]) -> tuple[TimeStep, StreamState]:
        """The example at step `t` and the state after it."""
        timesteps, state = self.chunk(state, t, 1)
        return jax.tree.map(lambda a: a[0], timesteps), state


class AbstractSequentialStream(AbstractStream):
    """A stream that can only be produced one step at a time (for example one that
    wraps a simulator). Implement `step`; `chunk` scans it."""

    @abc.abstractmethod
    def step(self, state: StreamState, t: Int[Array, ""]) -> tuple[TimeStep, StreamState]:
        """The example at step `t` and the state after it."""

    def chunk(
        self, state: StreamState, t0: Int[Array, ""], num_steps: int
    ) -> tuple[TimeStep, StreamState]:
        def body(state, t):
            timestep, state = self.step(state, t)
            return state, timestep

        ts = jnp.asarray(t0) + jnp.arange(num_steps)
        state, timesteps = jax.lax.scan(body, state, ts)
        return timesteps, state


class TDTimeStep(NamedTuple):
    """One transition of a temporal-difference stream (or a stack of them, with a
    leading axis).

    **Fields:**

    - `observation`: the features `phi(S_t)`, shape `(feature_dim,)`.
    - `reward`: `R_{t+1}`, a scalar.
    - `discount`: `gamma_{t+1}` in `[0, 1]`, a scalar: 0 when `S_{t+1}` is terminal.
    - `next_observation`: the features `phi(S_{t+1})` (ignored where `discount` is 0).
    - `truncated`: optional, True where the episode was cut after this transition by
      a time limit rather than ended: the transition still bootstraps from
      `next_observation` (with `discount`), and the next transition starts a new
      episode, so TD learners cut their eligibility traces. None (the default) for
      a stream without time limits.
    """

    observation: Float[Array, "*steps n"]
    reward: Float[Array, "*steps"]
    discount: Float[Array, "*steps"]
    next_observation: Float[Array, "*steps n"]
    truncated: Bool[Array, "*steps"] | None = None


class AbstractTDStream(AbstractStream):
    """A stream of transitions (`TDTimeStep`) rather than supervised examples.

    Concrete streams implement `feature_dim`, `init` and `chunk`, as for
    `AbstractStream`; learn from them with a TD learner (`alberta_eqx.td`).
    """

    @abc.abstractmethod
    def chunk(
        self, state: StreamState, t0: Int[Array, ""], num_steps: int
    ) -> tuple[TDTimeStep, StreamState]:
        """Transitions `t0 .. t0 + num_steps - 1`, stacked on a leading axis, and the
        state after the last of them."""

    def step(self, state: StreamState, t: Int[Array, ""]) -> tuple[TDTimeStep, StreamState]:
        """The transition at step `t` and the state after it."""
        timesteps, state = self.chunk(state, t, 1)
        return jax.tree.map(lambda a: a[0], timesteps), state


def step_keys(
    key: PRNGKeyArray, t0: Int[Array, ""], num_steps: int
) -> Key[Array, " steps"] | UInt32[Array, "steps 2"]:
    """The per-step keys `fold_in(key, t)` for `t = t0 .. t0 + num_steps - 1`."""
    ts = jnp.asarray(t0) + jnp.arange(num_steps)
    return jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, ts)
