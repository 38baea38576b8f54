"""The environments and agents of Elsayed, Vasan and Mahmood (2024), "Streaming Deep
Reinforcement Learning Finally Works", as their scripts build them: the four MinAtar
games gymnax has and two continuous-control tasks (`environment`), and Stream
Q(lambda), SARSA(lambda) and AC(lambda) on the MinAtar network or on two hidden layers
of 128 (`make_agent`). `alberta_eqx.replications.stream_x_minatar` runs them as the
paper's experiments, and a sweep file's `[environment] game = ...` and
`[agent] type = ...` (`alberta_eqx.sweeps.ControlSweepSpec`) sweep them.

The environment: the `minatar` package the authors use (`MinAtar/*-v1`, minimal action
sets, as gymnax's) repeats the previous action with probability 0.1 (sticky actions;
`STICKY_ACTION_PROB`, through gymnax's `StickyActionWrapper`, the same rule: the
previously executed action, 0 at first and kept across episodes, replaces the chosen
one with that probability). gymnax's games end an episode after 1,000 steps (Freeway
2,500); `minatar` sets no limit.
"""

from typing import Any, Literal, cast

import jax
import numpy as np

from alberta_eqx.control._stream import StreamAC, StreamQ
from alberta_eqx.control._wrappers import StreamingWrapper
from alberta_eqx.nn import MLP, MinAtarNetwork
from alberta_eqx.streams.brax_environment import BraxEnvironment

GAMES: dict[str, str] = {
    "breakout": "Breakout-MinAtar",
    "asterix": "Asterix-MinAtar",
    "freeway": "Freeway-MinAtar",
    "space_invaders": "SpaceInvaders-MinAtar",
    "pendulum": "Pendulum-v1",
    "inverted_pendulum": "brax:inverted_pendulum",
}
"""The environments by name: the four MinAtar games gymnax has (Seaquest is not among
gymnax's registered MinAtar games), and for the Gaussian Stream AC gymnax's Pendulum-v1
and brax's inverted pendulum (`BraxEnvironment`, the `[brax]` extra)."""

CONTINUOUS = ("pendulum", "inverted_pendulum")
"""The environments with continuous actions (Stream AC with a Gaussian policy)."""

AGENTS = ("q", "sarsa", "ac")

STICKY_ACTION_PROB = 0.1
"""The `minatar` package's sticky actions, which the authors' MinAtar runs have."""

DEFAULT_STEPS = {"q": 5_000_000, "sarsa": 10_000_000, "ac": 10_000_000}
"""The scripts' `--total_steps` per agent (Pendulum: `stream_ac_continuous.py`'s
2,000,000)."""
PENDULUM_STEPS = 2_000_000


def exploration_steps(agent: str, num_steps: int) -> int:
    """The epsilon schedule's length as the authors' scripts compute it."""
    if agent == "q":
        return max(1, round(0.2 * num_steps))
    return 50_000  # 0.05 * the class default total_steps=1,000,000 (module docstring)


def environment(
    game: str, discount: float = 0.99, sticky_action_prob: float = 0.0
) -> tuple[Any, Any, StreamingWrapper]:
    """`(base, params, wrapped)`: the environment `GAMES[game]` (gymnax's, or brax's
    through `BraxEnvironment`), its default parameters, and the environment inside the
    authors' wrappers (`StreamingWrapper`: with a time feature for the continuous ones
    only, as their scripts), with sticky actions inside them where
    `sticky_action_prob > 0` (the `minatar` package's 0.1; module docstring)."""
    if game not in GAMES:
        raise ValueError(f"game must be one of {sorted(GAMES)}, got {game!r}")
    if sticky_action_prob and game in CONTINUOUS:  # (gymnax's wrapper checks the range)
        raise ValueError(f"sticky_action_prob needs discrete actions: {game} has none")
    if GAMES[game].startswith("brax:"):
        brax = BraxEnvironment(GAMES[game].removeprefix("brax:"))
        return brax, brax.default_params, StreamingWrapper(brax, discount, brax.episode_length)
    import gymnax  # (brax's environment needs no gymnax)
    from gymnax.wrappers import StickyActionWrapper

    base, params = gymnax.make(GAMES[game])
    time_limit = int(params.max_steps_in_episode) if game == "pendulum" else None
    inner = StickyActionWrapper(base, sticky_action_prob) if sticky_action_prob else base
    return base, params, StreamingWrapper(inner, discount, time_limit)


def make_agent(
    game: str,
    agent: str,
    key: jax.Array,
    *,
    num_steps: int,
    base: Any = None,
    params: Any = None,
    **hyperparameters: Any,
) -> StreamAC | StreamQ:
    """The agent `agent` for `game`, as the authors' script builds it: the MinAtar
    network for the games, two hidden layers of 128 and a Gaussian policy on the
    continuous environments (`CONTINUOUS`).

    **Arguments:**

    - `game`, `agent`: a key of `GAMES` and one of `AGENTS` (`CONTINUOUS`: `"ac"`).
    - `key`: the agent's key.
    - `num_steps`: the run's length (the epsilon schedule of Q is a fraction of it).
    - `base`, `params`: the gymnax environment and its parameters (default: made).
    - `hyperparameters`: passed to the agent, overriding the scripts' defaults.
    """
    if agent not in AGENTS:
        raise ValueError(f"agent must be one of {AGENTS}, got {agent!r}")
    if base is None:
        base, params, _ = environment(game)
    if game in CONTINUOUS:
        if agent != "ac":
            raise ValueError(f"{game} has continuous actions: agent must be 'ac', got {agent!r}")
        action_dim = int(np.prod(base.action_space(params).shape))
        obs_dim = int(np.prod(base.observation_space(params).shape)) + 1  # and the time
        net_key, value_key, key = jax.random.split(key, 3)
        return StreamAC(
            key=key,
            policy_network=MLP(obs_dim, 2 * action_dim, (128, 128), key=net_key),
            value_network=MLP(obs_dim, "scalar", (128, 128), key=value_key),
            distribution="gaussian",
            **hyperparameters,
        )
    shape = tuple(base.observation_space(params).shape)
    num_actions = base.num_actions
    net_key, value_key, key = jax.random.split(key, 3)
    if agent == "ac":
        return StreamAC(
            key=key,
            policy_network=MinAtarNetwork(shape, num_actions, key=net_key),
            value_network=MinAtarNetwork(shape, "scalar", key=value_key),
            **hyperparameters,
        )
    hyperparameters.setdefault("exploration_steps", exploration_steps(agent, num_steps))
    return StreamQ(
        key=key,
        network=MinAtarNetwork(shape, num_actions, key=net_key),
        target=cast(Literal["sarsa", "q"], agent),
        **hyperparameters,
    )
