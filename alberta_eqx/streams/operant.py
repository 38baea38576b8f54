r"""An operant conditioning benchmark after Javed and Sutton (2025, "Swift-Sarsa: Fast
and Robust Linear Control", arXiv 2507.19539), in JAX with gymnax's `reset`/`step`
interface, so the compiled control loop (`alberta_eqx.control.run_control`) runs it.

What the paper states, and this environment keeps: the agent perceives a vector of
input signals and chooses among discrete actions; a very small subset of the signals is
relevant for choosing the action; the majority are noise drawn from a non-stationary
distribution; the agent must learn to tell the relevant signals from the noise; its
figure measures the lifetime (average) reward, at 30,000 and 60,000 input signals.

The exact construction of the paper's benchmark (how the relevant signals relate to the
reward, the noise process, the number of actions) could not be read for this
implementation (only the paper's abstract and figure caption were available), so every
detail below is a choice of ours, stated here:

- **Signals.** `num_signals` binary signals (0 or 1, as floats). The first
  `num_actions` are the relevant ones, the cues: at every step exactly one of them is
  on, drawn uniformly and independently of the past. The other
  `num_signals - num_actions` are noise.
- **Actions and reward.** `num_actions` actions. Taking action `a` when cue `a` is on
  gives reward 1, any other action 0. The optimal policy takes the cued action and
  earns 1 a step; a uniformly random one earns `1 / num_actions`; ε-greedy on the
  optimal values earns `1 - ε + ε / num_actions`.
- **Noise.** Noise signal `i` is on with probability `p_i`, independently of everything
  else; the `p_i` are non-stationary: each is drawn uniformly from `[0, 1]` at the
  start and, independently at every step with probability `noise_change_probability`,
  drawn afresh. About half the noise signals are on at any step, so the rate of
  learning of a fixed step-size `alpha`, `alpha * (number of active signals)`, grows
  with `num_signals`.
- **Order within a step.** The reward is that of the action in the observed state;
  then the probabilities change, and the next cue and noise are drawn from the new
  probabilities.
- **A continuing task.** `terminated` and `truncated` are always False; the
  control loop's running `episode_return` is the lifetime reward.
"""

from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from alberta_eqx import _checks
from alberta_eqx.streams._base import continuing_step


class OperantState(NamedTuple):
    """**Fields:** `cue`, the action that pays now; `noise`, the noise signals now;
    `noise_probabilities`, the `p_i` they were drawn with."""

    cue: Int[Array, ""]
    noise: Bool[Array, " m"]
    noise_probabilities: Float[Array, " m"]


class OperantParams(NamedTuple):
    """`noise_change_probability`: the per-step probability that each noise signal's
    probability of being on is drawn afresh."""

    noise_change_probability: float = 1e-3


class OperantConditioning(eqx.Module):
    """The operant conditioning benchmark, gymnax-style (module docstring).

    ```python
    import jax
    import jax.numpy as jnp
    from alberta_eqx import OperantConditioning

    env = OperantConditioning(num_signals=10, num_actions=2)  # 2 cues, 8 noise signals
    observation, state = env.reset(jax.random.key(0))  # the cues (one-hot), then the noise
    observation, state, reward, terminated, truncated, info = env.step(
        jax.random.key(1), state, jnp.asarray(0)
    )  # reward: whether action 0 was the one the cue asked for
    ```

    **Arguments:**

    - `num_signals`: the length of the observation (cues and noise), greater than
      `num_actions`.
    - `num_actions`: the number of actions, and of relevant signals (cues).
    """

    num_signals: int = eqx.field(static=True)
    num_actions: int = eqx.field(static=True)

    def __init__(self, num_signals: int = 30_000, num_actions: int = 2):
        self.num_signals = _checks.positive_int("num_signals", num_signals)
        self.num_actions = _checks.positive_int("num_actions", num_actions)
        if self.num_signals <= self.num_actions:
            raise ValueError(
                f"num_signals must be > num_actions = {self.num_actions} (some noise), "
                f"got {self.num_signals}"
            )

    @property
    def default_params(self) -> OperantParams:
        return OperantParams()

    @property
    def num_noise(self) -> int:
        return self.num_signals - self.num_actions

    def observation(self, state: OperantState) -> Float[Array, " n"]:
        """The cues (one-hot) followed by the noise signals."""
        dtype = _checks.default_float()
        cues = jax.nn.one_hot(state.cue, self.num_actions, dtype=dtype)
        return jnp.concatenate([cues, state.noise.astype(dtype)])

    def _draw(self, key: PRNGKeyArray, probabilities: Float[Array, " m"]) -> OperantState:
        cue_key, noise_key = jax.random.split(key)
        cue = jax.random.randint(cue_key, (), 0, self.num_actions)
        noise = jax.random.uniform(noise_key, probabilities.shape) < probabilities
        return OperantState(cue, noise, probabilities)

    def reset(
        self, key: PRNGKeyArray, params: OperantParams | None = None
    ) -> tuple[Float[Array, " n"], OperantState]:
        probability_key, key = jax.random.split(key)
        probabilities = jax.random.uniform(
            probability_key, (self.num_noise,), _checks.default_float()
        )
        state = self._draw(key, probabilities)
        return self.observation(state), state

    def step(
        self,
        key: PRNGKeyArray,
        state: OperantState,
        action: Int[Array, ""],
        params: OperantParams | None = None,
    ) -> tuple[
        Float[Array, " n"],
        OperantState,
        Float[Array, ""],
        Bool[Array, ""],
        Bool[Array, ""],
        dict[str, Any],
    ]:
        params = self.default_params if params is None else params
        change_key, fresh_key, key = jax.random.split(key, 3)
        probabilities = state.noise_probabilities
        reward = (jnp.asarray(action) == state.cue).astype(probabilities.dtype)
        change = jax.random.uniform(change_key, probabilities.shape) < (
            params.noise_change_probability
        )
        fresh = jax.random.uniform(fresh_key, probabilities.shape, probabilities.dtype)
        reached = self._draw(key, jnp.where(change, fresh, probabilities))
        return continuing_step(self.observation(reached), reached, reward)
