"""The access-control queuing task (Sutton and Barto 2018, Example 10.2) in JAX, with
gymnax's `reset`/`step` interface, so the compiled control loop runs it: a continuing
task, for average-reward learning.

Customers of four priorities queue for `num_servers = 10` servers. At each step the
customer at the head of the queue is accepted (action 1, a server becomes busy, the
reward is its priority, 1, 2, 4 or 8) or rejected (action 0, reward 0); either way
the next customer's priority is drawn uniformly. A customer is always rejected when
no server is free (then accepting is rejecting). Each busy server becomes free with
probability `p = 0.06` on each step.

The order within a step, which the book does not state, is that of Shangtong Zhang's
reproduction (`chapter10/access_control.py`): the accepted customer takes a server
first, then every busy server, that one included, frees with probability `p`. Runs
start with every server free. The observation is `(free servers, priority index)`
as floats, the index `0..3` for the priorities `1, 2, 4, 8`. The task never ends:
`terminated` and `truncated` are always False.

`AccessControlParams.reward_offset` adds a constant to every reward, rejections
included (Naik, Wan, Tomar and Sutton 2024 shift this task's rewards so); the
unshifted reward is `info["raw_reward"]`, which the control loop's returns count.
"""

from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from alberta_eqx import _checks
from alberta_eqx.streams._base import continuing_step


class AccessControlState(NamedTuple):
    """**Fields:** `free`, the free servers; `priority`, the index of the waiting
    customer's priority."""

    free: Int[Array, ""]
    priority: Int[Array, ""]


class AccessControlParams(NamedTuple):
    """The book's constants (Example 10.2): `free_probability` `p`, and the rewards of
    the priorities; and `reward_offset`, a constant added to every reward (0: the
    book's task)."""

    free_probability: float = 0.06
    priorities: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
    reward_offset: float | Array = 0.0


class AccessControl(eqx.Module):
    """The access-control queuing task, gymnax-style (module docstring).

    ```python
    import jax
    import jax.numpy as jnp
    from alberta_eqx import AccessControl

    env = AccessControl(num_servers=10)  # gymnax-style: reset, then step with an action
    observation, state = env.reset(jax.random.key(0))  # (free servers, customer's priority)
    observation[0]  # about 10: every server free at first
    observation, state, reward, terminated, truncated, info = env.step(
        jax.random.key(1), state, jnp.asarray(1)
    )  # action 1: accept the customer
    ```

    **Arguments:**

    - `num_servers`: how many servers (the book: 10).
    """

    num_servers: int = eqx.field(static=True)
    num_actions: int = eqx.field(static=True, default=2)

    def __init__(self, num_servers: int = 10):
        self.num_servers = _checks.positive_int("num_servers", num_servers)

    @property
    def default_params(self) -> AccessControlParams:
        return AccessControlParams()

    def observation(self, state: AccessControlState) -> Float[Array, " 2"]:
        return jnp.stack([state.free, state.priority]).astype(_checks.default_float())

    def reset(
        self, key: PRNGKeyArray, params: AccessControlParams | None = None
    ) -> tuple[Float[Array, " 2"], AccessControlState]:
        params = self.default_params if params is None else params
        priority = jax.random.randint(key, (), 0, len(params.priorities))
        state = AccessControlState(jnp.asarray(self.num_servers, jnp.int32), priority)
        return self.observation(state), state

    def step(
        self,
        key: PRNGKeyArray,
        state: AccessControlState,
        action: Int[Array, ""],
        params: AccessControlParams | None = None,
    ) -> tuple[
        Float[Array, " 2"],
        AccessControlState,
        Float[Array, ""],
        Bool[Array, ""],
        Bool[Array, ""],
        dict[str, Any],
    ]:
        params = self.default_params if params is None else params
        free_key, priority_key = jax.random.split(key)
        accepted = (jnp.asarray(action) == 1) & (state.free > 0)
        rewards = jnp.asarray(params.priorities, _checks.default_float())
        raw_reward = jnp.where(accepted, rewards[state.priority], 0.0)
        free = state.free - accepted.astype(jnp.int32)
        # every busy server frees with probability p: server i < busy is busy
        busy = self.num_servers - free
        frees = jax.random.uniform(free_key, (self.num_servers,)) < params.free_probability
        free = free + jnp.sum(frees & (jnp.arange(self.num_servers) < busy), dtype=jnp.int32)
        priority = jax.random.randint(priority_key, (), 0, len(params.priorities))
        reached = AccessControlState(free, priority)
        return continuing_step(
            self.observation(reached),
            reached,
            raw_reward + params.reward_offset,
            raw_reward=raw_reward,
        )
