"""Baird's counterexample (Sutton and Barto, Reinforcement Learning: An Introduction,
2nd ed., Example 11.1 and Figure 11.1) as a stream of off-policy transitions.

Seven states and eight weights: upper state `i = 1..6` has value `2 w_i + w_8`, the
lower state `w_7 + 2 w_8`. From every state, the *dashed* action (0) moves to one of
the six upper states with equal probability and the *solid* action (1) moves to the
lower state. The behaviour policy takes dashed with probability 6/7 and solid with
1/7, so the next state is uniform over all seven whatever the current one; the
target policy always takes solid, so `rho` is 7 after solid and 0 after dashed.
Every reward is 0 and the discount is `gamma = 0.99`: the true values are all 0.

The next state does not depend on the current one, so `chunk` draws every step of a
chunk at once from `fold_in(key, t)`, with no sequential scan.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray

from alberta_eqx import _checks
from alberta_eqx.streams._base import AbstractTDStream, OffPolicyTimeStep, step_keys

DASHED, SOLID = 0, 1
LOWER = 6  # the index of the lower state (states 0..5 are the upper ones)


class BairdState(NamedTuple):
    """The stream's state: its `key` and the `state` (0..6) the next transition
    leaves from."""

    key: PRNGKeyArray
    state: Int[Array, ""]


def baird_features(dtype=None) -> Float[Array, "7 8"]:
    """The feature vectors of the seven states, one per row: `2 e_i + e_8` for upper
    state `i` (rows 0..5), `e_7 + 2 e_8` for the lower state (row 6)."""
    dtype = dtype or _checks.default_float()
    upper = jnp.concatenate([2 * jnp.eye(6), jnp.zeros((6, 1)), jnp.ones((6, 1))], axis=1)
    lower = jnp.array([[0, 0, 0, 0, 0, 0, 1, 2]])
    return jnp.concatenate([upper, lower]).astype(dtype)


class BairdStream(AbstractTDStream[OffPolicyTimeStep]):
    """Baird's counterexample: off-policy transitions (`OffPolicyTimeStep`) under the
    behaviour policy (dashed 6/7, solid 1/7) about the target policy (always solid).
    The first state is drawn uniformly.

    ```python
    import jax
    from alberta_eqx import BairdStream, GradientTDLearner

    stream = BairdStream(discount=0.99)
    state = stream.init(jax.random.key(0))
    timestep, state = stream.step(state, 0)  # an OffPolicyTimeStep, 8 features
    learner = GradientTDLearner(8, "tdc", step_size=0.005, secondary_step_size=0.05)
    learner, result = learner.learn(timestep)
    ```

    **Arguments:**

    - `discount`: `gamma` (default 0.99, the book's).
    """

    discount: Float[Array, ""]

    def __init__(self, discount: ArrayLike = 0.99):
        self.discount = _checks.in_unit_interval("discount", discount)

    @property
    def feature_dim(self) -> int:
        return 8

    @property
    def behaviour_policy(self) -> Float[Array, "2"]:
        """`b(dashed), b(solid)` = 6/7, 1/7."""
        return jnp.array([6 / 7, 1 / 7], self.discount.dtype)

    @property
    def target_policy(self) -> Float[Array, "2"]:
        """`pi(dashed), pi(solid)` = 0, 1."""
        return jnp.array([0.0, 1.0], self.discount.dtype)

    def init(self, key: PRNGKeyArray) -> BairdState:
        first, key = jax.random.split(key)
        return BairdState(key, jax.random.randint(first, (), 0, 7))

    def chunk(
        self, state: BairdState, t0: Int[ArrayLike, ""], num_steps: int
    ) -> tuple[OffPolicyTimeStep, BairdState]:
        def draw(key):
            choose, where = jax.random.split(key)
            solid = jax.random.uniform(choose) < 1 / 7
            return solid, jnp.where(solid, LOWER, jax.random.randint(where, (), 0, 6))

        solid, there = jax.vmap(draw)(step_keys(state.key, t0, num_steps))
        here = jnp.concatenate([state.state[None], there[:-1]])
        dtype = self.discount.dtype
        features = baird_features(dtype)
        action = solid.astype(jnp.int32)
        timesteps = OffPolicyTimeStep(
            observation=features[here],
            action=action,
            reward=jnp.zeros(num_steps, dtype),
            discount=jnp.full(num_steps, self.discount, dtype),
            next_observation=features[there],
            behaviour_probability=self.behaviour_policy[action],
            target_probability=self.target_policy[action],
        )
        return timesteps, BairdState(state.key, there[-1])


def baird_initial_weights(dtype=None) -> Float[Array, "8"]:
    """The book's starting weights `(1, 1, 1, 1, 1, 1, 10, 1)`."""
    return jnp.array([1, 1, 1, 1, 1, 1, 10, 1], dtype or _checks.default_float())
