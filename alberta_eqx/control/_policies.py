"""Policies over discrete actions: from action values to action probabilities."""

import abc
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from alberta_eqx import _checks
from alberta_eqx._checks import ArrayLike


class AbstractPolicy(eqx.Module):
    """A policy over discrete actions, given the action values `q` of the state."""

    @abc.abstractmethod
    def probabilities(self, q: Float[Array, " A"]) -> Float[Array, " A"]:
        """`pi(a | s)` for every action, from the action values `q(s, .)`."""

    def sample(self, key: PRNGKeyArray, q: Float[Array, " A"]) -> Int[Array, ""]:
        """An action drawn from `probabilities(q)`."""
        return sample(key, self.probabilities(q))


def greedy_actions(q: Float[Array, " A"]) -> Bool[Array, " A"]:
    """The actions of highest value (ties included)."""
    return q == jnp.max(q)


class EpsilonGreedy(AbstractPolicy):
    """With probability `epsilon` a uniformly random action, otherwise a greedy one;
    ties between greedy actions are broken uniformly at random:
    `pi(a|s) = epsilon / A + (1 - epsilon) 1[a greedy] / #greedy`.

    ```python
    import jax
    import jax.numpy as jnp
    from alberta_eqx.control import EpsilonGreedy

    policy = EpsilonGreedy(0.1)
    q = jnp.array([1.0, 3.0, 2.0])  # q(s, .) for 3 actions
    policy.probabilities(q)[1]  # about 0.933 = 0.1 / 3 + 0.9: action 1 is greedy
    action = policy.sample(jax.random.key(0), q)
    ```

    **Arguments:**

    - `epsilon`: in `[0, 1]`.
    """

    epsilon: Float[Array, ""]

    def __init__(self, epsilon: ArrayLike = 0.1):
        self.epsilon = _checks.unit_interval_closed("epsilon", epsilon)

    def probabilities(self, q: Float[Array, " A"]) -> Float[Array, " A"]:
        greedy = greedy_actions(q).astype(q.dtype)
        epsilon = self.epsilon.astype(q.dtype)
        return epsilon / q.shape[-1] + (1 - epsilon) * greedy / jnp.sum(greedy)


class Softmax(AbstractPolicy):
    """Boltzmann exploration: `pi(a|s)` proportional to `exp(q(s, a) / temperature)`.

    ```python
    import jax
    import jax.numpy as jnp
    from alberta_eqx.control import Softmax

    policy = Softmax(temperature=1.0)
    q = jnp.array([0.0, jnp.log(3.0)])  # q(s, .) for 2 actions
    policy.probabilities(q)[1]  # about 0.75 = 3 / (1 + 3)
    action = policy.sample(jax.random.key(0), q)
    ```

    **Arguments:**

    - `temperature`: `> 0`.
    """

    temperature: Float[Array, ""]

    def __init__(self, temperature: ArrayLike = 1.0):
        self.temperature = _checks.positive("temperature", temperature)

    def probabilities(self, q: Float[Array, " A"]) -> Float[Array, " A"]:
        return jax.nn.softmax(q / self.temperature.astype(q.dtype))


class FixedPolicy(AbstractPolicy):
    """The same action probabilities in every state, whatever the values (a uniformly
    random behaviour, for example).

    ```python
    import jax
    import jax.numpy as jnp
    from alberta_eqx.control import FixedPolicy

    policy = FixedPolicy([0.25, 0.75])  # the same in every state, whatever the values
    policy.probabilities(jnp.array([5.0, 0.0]))[1]  # about 0.75
    action = policy.sample(jax.random.key(0), jnp.zeros(2))
    ```

    **Arguments:**

    - `probabilities`: `pi(a)`, non-negative and summing to 1.
    """

    action_probabilities: Float[Array, " A"]

    def __init__(self, probabilities: ArrayLike | Sequence[float]):
        self.action_probabilities = check_probabilities("probabilities", probabilities)

    def config_arguments(self) -> dict:
        """`probabilities` is a method here: the argument is `action_probabilities`."""
        return {"probabilities": self.action_probabilities}

    def probabilities(self, q: Float[Array, " A"]) -> Float[Array, " A"]:
        if q.shape[-1] != self.action_probabilities.shape[0]:
            raise ValueError(
                f"q has {q.shape[-1]} actions but probabilities has "
                f"{self.action_probabilities.shape[0]}"
            )
        return self.action_probabilities.astype(q.dtype)


def check_probabilities(name: str, probabilities: ArrayLike | Sequence[float]) -> Array:
    """A probability vector: 1-D, non-negative, summing to 1; raises naming `name`
    otherwise. Traced values pass unchecked (check the concrete inputs)."""
    return _checks.probabilities(name, probabilities, _checks.default_float())


def sample(key: PRNGKeyArray, probabilities: Float[Array, " A"]) -> Int[Array, ""]:
    """An action drawn from `probabilities` (checked when concrete)."""
    probabilities = check_probabilities("probabilities", probabilities)
    return jax.random.categorical(key, jnp.log(probabilities))
