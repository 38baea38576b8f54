"""The agent-environment loop, compiled: one `lax.scan` over steps, the environment
stepped inside it, one agent update per transition (PureJaxRL's shape, without
batches). `eqx.filter_vmap` over `start_control` and `run_control` runs many seeds,
and many hyperparameters, in one call.

The environment is anything with gymnax's interface: `reset(key, params)` and
`step(key, state, action, params) -> (observation, state, reward, terminated,
truncated, info)`, resetting by itself at an episode's end, with the state the
transition reached in `info["final_observation"]` (gymnax's environments, and
`MountainCar`).
"""

import abc
from typing import Any, Literal, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray, PyTree

from alberta_eqx import _checks
from alberta_eqx._checks import ArrayLike


class ControlTransition(NamedTuple):
    """One transition `(S, A, R, S')` of a control agent's experience.

    **Fields:**

    - `observation`: `S`, the observation the action was taken in.
    - `action`: `A`, an integer (a vector of floats for an agent with continuous
      actions).
    - `reward`: `R`, a real scalar.
    - `next_observation`: `S'`, the observation the transition reached (the episode's
      final one where it ended: gymnax's `info["final_observation"]`).
    - `terminated`: True where `S'` is terminal: the transition bootstraps from
      nothing (`gamma q(S', .)` is 0).
    - `truncated`: True where a time limit cut the episode after this transition:
      `S'` is not terminal, so the transition bootstraps from it; the next transition
      starts a new episode, so the agent's eligibility traces are reset.

    The episode ends after this transition where either flag is set
    (`episode_end`).
    """

    observation: Array
    action: Int[Array, ""] | Float[Array, " d"]
    reward: Float[Array, ""]
    next_observation: Array
    terminated: Bool[Array, ""]
    truncated: Bool[Array, ""]

    @property
    def episode_end(self) -> Bool[Array, ""]:
        """Whether the episode ends after this transition (terminated or truncated)."""
        return jnp.logical_or(self.terminated, self.truncated)


def _flag(name: str, value: ArrayLike) -> Bool[Array, ""]:
    value = jnp.asarray(value)
    if value.shape != () or value.dtype != jnp.bool_:
        raise TypeError(
            f"{name} must be a boolean scalar, got dtype {value.dtype} and shape {value.shape}"
        )
    return value


def check_transition(
    transition: ControlTransition, dtype, *, continuous: bool = False
) -> ControlTransition:
    """`transition` with its fields checked (a bad one is refused naming the field)
    and its reward cast to `dtype`; the observations are left to the agent, whose
    features read them. The checks are of shapes and dtypes, so they cost nothing in
    a compiled loop. The action is an integer scalar, or with `continuous` a vector
    of floats."""
    if not isinstance(transition, ControlTransition):
        raise TypeError(f"transition must be a ControlTransition, got {type(transition).__name__}")
    action = jnp.asarray(transition.action)
    if continuous:
        if action.ndim != 1 or not jnp.issubdtype(action.dtype, jnp.floating):
            raise TypeError(
                f"action must be a vector of floats, got dtype {action.dtype} and shape "
                f"{action.shape}"
            )
    elif action.shape != () or not jnp.issubdtype(action.dtype, jnp.integer):
        raise TypeError(
            f"action must be an integer scalar, got dtype {action.dtype} and shape {action.shape}"
        )
    return ControlTransition(
        observation=transition.observation,
        action=action,
        reward=_checks.scalar_target(transition.reward, dtype, name="reward"),
        next_observation=transition.next_observation,
        terminated=_flag("terminated", transition.terminated),
        truncated=_flag("truncated", transition.truncated),
    )


class AbstractControlAgent(eqx.Module):
    """A control agent: it acts, and learns from every transition.

    `act(key, observation)` chooses the first action of an episode.
    `update(key, transition)` learns from one `ControlTransition` and returns the new
    agent and the action to take at `transition.next_observation` if the episode goes
    on (on-policy methods need it before the update: SARSA's `A'`).

    Every agent reads a transition the same way: a terminated one bootstraps from
    nothing, a truncated one bootstraps from `next_observation`, and the eligibility
    traces are reset after either (`ControlTransition`).
    """

    @abc.abstractmethod
    def act(self, key: PRNGKeyArray, observation: Array) -> Array:
        """An action for `observation` under the behaviour policy."""

    @abc.abstractmethod
    def update(
        self, key: PRNGKeyArray, transition: ControlTransition
    ) -> tuple["AbstractControlAgent", Array]:
        """Learn from one transition: `(new_agent, next_action)`.

        **Arguments:**

        - `key`: the randomness of the next action.
        - `transition`: a `ControlTransition`.
        """


def _action(action: ArrayLike) -> Array:
    """An action as the loop carries it: an integer one as int32 (whatever the integer
    type the agent's sampling gives), a continuous one as it is."""
    action = jnp.asarray(action)
    return action.astype(jnp.int32) if jnp.issubdtype(action.dtype, jnp.integer) else action


# The largest step count an int32 holds.
_MAX_STEP = 2**31 - 1


def td_hyperparameters(
    step_size: ArrayLike, discount: ArrayLike, lambda_: ArrayLike, dtype=None
) -> tuple[Float[Array, ""], Float[Array, ""], Float[Array, ""]]:
    """The hyperparameters every TD(lambda) control agent takes, checked and cast to
    `dtype`: `(alpha, gamma, lambda)` with `alpha > 0`, `gamma` in `(0, 1]` and
    `lambda` in `[0, 1]`."""
    alpha = _checks.positive("step_size", step_size, dtype)
    gamma = _checks.in_unit_interval("discount", discount, dtype)
    lam = _checks.non_negative("lambda_", lambda_, dtype)
    _checks.ordered("lambda_", lam, "1", jnp.ones((), lam.dtype))
    return alpha, gamma, lam


_TARGETS = ("sarsa", "q")


def check_target(target: str) -> Literal["sarsa", "q"]:
    """The bootstrap target a control agent learns: `"sarsa"` (on-policy, `q(S', A')`)
    or `"q"` (greedy, `max_a q(S', a)`, with Watkins's trace cut after a non-greedy
    action); raises naming `target` otherwise."""
    if target not in _TARGETS:
        raise ValueError(f"target must be one of {_TARGETS}, got {target!r}")
    return target  # type: ignore[return-value]


class ControlRun(eqx.Module):
    """A control run's state between calls of `run_control`, and its record.

    **Fields:**

    - `agent`: the agent.
    - `env_state`, `observation`, `action`: the environment's state, the current
      observation and the action about to be taken in it (an int32, or a vector of
      floats for continuous actions).
    - `key`: step `t` draws its randomness from `fold_in(key, t)`.
    - `step`: steps taken, at most `2**31 - 1` (an int32, as the supervised runners'
      step indices are: `run_control` refuses to go past it).
    - `episode_return`, `episode_length`: of the episode under way.
    - `returns`, `lengths`, `end_steps`: the first `max_episodes` completed episodes'
      undiscounted returns (of `info["raw_reward"]` where the environment gives it),
      lengths and the step count at their end (NaN / -1 where no episode is recorded
      yet).
    - `num_episodes`: episodes completed (it may exceed `max_episodes`).
    """

    agent: AbstractControlAgent
    env_state: PyTree
    observation: Array
    action: Array
    key: PRNGKeyArray
    step: Int[Array, ""]
    episode_return: Float[Array, ""]
    episode_length: Int[Array, ""]
    returns: Float[Array, " E"]
    lengths: Int[Array, " E"]
    end_steps: Int[Array, " E"]
    num_episodes: Int[Array, ""]


def start_control(
    agent: AbstractControlAgent,
    env: Any,
    key: PRNGKeyArray,
    *,
    env_params: PyTree = None,
    max_episodes: int = 1000,
) -> ControlRun:
    """The state before a run's first step: the environment reset, the first action
    chosen.

    **Arguments:**

    - `agent`: a control agent.
    - `env`: a gymnax-style environment (`MountainCar()`, `gymnax.make(...)[0]`).
    - `key`: the run's key.
    - `env_params`: the environment's parameters (default its defaults).
    - `max_episodes`: how many completed episodes to record.
    """
    max_episodes = _checks.positive_int("max_episodes", max_episodes)
    env_params = env.default_params if env_params is None else env_params
    reset_key, act_key, key = jax.random.split(key, 3)
    observation, env_state = env.reset(reset_key, env_params)
    action = agent.act(act_key, observation)
    # the environment's state typed as its step returns it: gymnax's Freeway resets
    # to a weakly typed position that its step makes int32, and a run whose types
    # change after one segment compiles its segment program twice
    stepped = jax.eval_shape(env.step, reset_key, env_state, action, env_params)[1]
    env_state = jax.tree.map(_typed_as, env_state, stepped)
    float_dtype = _checks.default_float()
    return ControlRun(
        agent=agent,
        env_state=env_state,
        observation=observation,
        action=_action(action),
        key=key,
        step=jnp.zeros((), jnp.int32),
        episode_return=jnp.zeros((), float_dtype),
        episode_length=jnp.zeros((), jnp.int32),
        returns=jnp.full(max_episodes, jnp.nan, float_dtype),
        lengths=jnp.full(max_episodes, -1, jnp.int32),
        end_steps=jnp.full(max_episodes, -1, jnp.int32),
        num_episodes=jnp.zeros((), jnp.int32),
    )


def _typed_as(x: Any, like: jax.ShapeDtypeStruct) -> Any:
    """`x` (an array or a Python scalar) as an array of `like`'s dtype, strongly typed
    where `like` is (a weakly typed `like` takes its dtype from the arrays it meets)."""
    if like.weak_type:
        return x if eqx.is_array(x) else jnp.asarray(x)
    if eqx.is_array(x) and x.dtype == like.dtype and not getattr(x, "weak_type", False):
        return x
    return jax.lax.convert_element_type(x, like.dtype)


def control_step(run: ControlRun, env: Any, env_params: PyTree = None) -> ControlRun:
    """One step: act, observe, learn, record."""
    return control_step_with_reward(run, env, env_params)[0]


def control_step_with_reward(
    run: ControlRun, env: Any, env_params: PyTree = None
) -> tuple[ControlRun, Float[Array, ""]]:
    """`control_step`, and the step's undiscounted reward (`info["raw_reward"]` where
    the environment gives it), for measures that are not per episode (a reward rate
    over a window of steps: `alberta_eqx.sweeps.ControlSweepSpec`)."""
    env_params = env.default_params if env_params is None else env_params
    step_key = jax.random.fold_in(run.key, run.step)
    env_key, update_key, act_key = jax.random.split(step_key, 3)
    observation, env_state, reward, terminated, truncated, info = env.step(
        env_key, run.env_state, run.action, env_params
    )
    reward = jnp.asarray(reward, run.episode_return.dtype)
    # a wrapper that scales rewards (StreamingWrapper) reports the true one
    raw_reward = jnp.asarray(info.get("raw_reward", reward), run.episode_return.dtype)
    transition = ControlTransition(
        run.observation, run.action, reward, info["final_observation"], terminated, truncated
    )
    episode_end = transition.episode_end
    agent, next_action = run.agent.update(update_key, transition)
    # a new episode's first action comes from the updated agent
    action = jnp.where(episode_end, agent.act(act_key, observation), next_action)
    step = run.step + 1  # at most 2**31 - 1: run_control refuses to go past it
    episode_return = run.episode_return + raw_reward
    episode_length = run.episode_length + 1  # at most step (so is num_episodes)
    index = jnp.where(episode_end, run.num_episodes, run.returns.shape[0])  # out of range: dropped
    new = ControlRun(
        agent=agent,
        env_state=env_state,
        observation=observation,
        action=_action(action),
        key=run.key,
        step=step,
        episode_return=jnp.where(episode_end, 0, episode_return),
        episode_length=jnp.where(episode_end, 0, episode_length),
        returns=run.returns.at[index].set(episode_return, mode="drop"),
        lengths=run.lengths.at[index].set(episode_length, mode="drop"),
        end_steps=run.end_steps.at[index].set(step, mode="drop"),
        num_episodes=run.num_episodes + episode_end.astype(jnp.int32),
    )
    return new, raw_reward


@eqx.filter_jit
def run_control(
    run: ControlRun, env: Any, num_steps: int, *, env_params: PyTree = None
) -> ControlRun:
    """`num_steps` steps of the agent-environment loop in one compiled scan; call it
    again with the result to go on. Vmappable (`eqx.filter_vmap`) over runs.

    **Arguments:**

    - `run`: from `start_control` or a previous `run_control`.
    - `env`: the same environment.
    - `num_steps`: how many steps (static); `run.step + num_steps` must be at most
      `2**31 - 1`. To go on past that, start a new run with the agent
      (`start_control(run.agent, env, new_key)`).
    - `env_params`: the environment's parameters (default its defaults).
    """
    num_steps = _checks.non_negative_int("num_steps", num_steps)
    # Step counts are int32: past 2**31 - 1 `step` would wrap negative (and with it the
    # recorded end steps, and the keys `fold_in(key, step)` would repeat).
    if num_steps > _MAX_STEP:
        raise ValueError(f"num_steps must be at most 2**31 - 1, got {num_steps}")
    step = eqx.error_if(
        run.step,
        run.step > _MAX_STEP - num_steps,
        f"run.step + num_steps must be at most 2**31 - 1 (step counts are int32), with "
        f"num_steps={num_steps}; start a new run with the agent to go on",
    )
    run = eqx.tree_at(lambda r: r.step, run, step)

    def body(run, _):
        return control_step(run, env, env_params), None

    run, _ = jax.lax.scan(body, run, length=num_steps)
    return run
