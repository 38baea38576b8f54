"""csuite's continuing Catch (`csuite/environments/catch.py`, DeepMind 2022; the
continuing task of Naik, Wan, Tomar and Sutton 2024, "Reward Centering") in JAX, with
gymnax's `reset`/`step` interface, so the compiled control loop runs it: a continuing
task, for average-reward learning.

A paddle moves along the bottom row of a `rows x columns` board (csuite: 10 x 5) and
catches balls that fall one row per step, each down its own column. Runs start with
the paddle in column `columns // 2` and one ball in row 0, in a uniformly random
column. A step follows csuite's `Catch.step`, in its order:

1. the paddle moves by `action - 1` (0 left, 1 stay, 2 right), clipped to the board;
2. every ball moves down one row;
3. if the oldest ball has reached the paddle's row it is removed, with reward +1 if
   it is in the paddle's column and -1 if not; the reward is 0 otherwise;
4. with probability `spawn_probability` (csuite: 0.1) a new ball appears in row 0,
   in a uniformly random column.

csuite's class docstring says that "a new ball will always spawn when a ball falls to
the bottom of the board", but its code does not do that: a ball spawns only by the
draw of step 4, whether or not one was caught. This module follows the code.

At most one ball spawns per step and every ball falls one row per step, so each row
holds at most one ball and the oldest ball is the lowest: the state keeps the balls
as `ball_x`, the column of the ball in each row (-1 where there is none), not as
csuite's list in age order.

The observation (`observation_type`) is csuite's "continuous" one,
`[paddle_x / columns, ball_x / columns, ball_y / rows]` of the lowest (oldest) ball,
`[paddle_x / columns, 0, 0]` when there is none; or its "discrete" one, the 0/1
`(rows, columns)` board with the paddle and the balls, here as floats (csuite: ints)
and sized `rows x columns` (csuite's `_get_observation_discrete` always builds the
default 10 x 5 board, whatever the sizes). The default is "continuous", the three
numbers a tile coder takes (csuite's default is "discrete"). The task never ends:
`terminated` and `truncated` are always False.

The randomness is JAX's, not csuite's NumPy `Generator`, so the same seed gives other
balls; the draws are, for `reset(key)`, the ball's column
`jax.random.randint(key, (), 0, columns)`, and for `step(key, ...)`,
`spawn_key, column_key = jax.random.split(key)`, the spawn's uniform
`jax.random.uniform(spawn_key)` (a ball spawns where it is `< spawn_probability`) and
its column `jax.random.randint(column_key, (), 0, columns)`, drawn at every step
(csuite draws the column only when a ball spawns). Given those draws, the steps are
csuite's exactly (`tests/streams/test_continuing_catch.py`,
`benchmarks/csuite_catch_check.py`).

`ContinuingCatchParams.reward_offset` adds a constant to every reward, the zero
rewards included (Naik et al. 2024 shift the rewards of their continuing tasks so);
the unshifted reward is `info["raw_reward"]`, which the control loop's returns count.
"""

from typing import Any, Literal, NamedTuple, cast

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from alberta_eqx import _checks
from alberta_eqx.streams._base import continuing_step

_OBSERVATION_TYPES = ("discrete", "continuous")

Observation = Float[Array, " 3"] | Float[Array, "rows columns"]
"""The continuous observation, `(3,)`, or the discrete board, `(rows, columns)`."""


class ContinuingCatchState(NamedTuple):
    """**Fields:** `paddle_x`, the paddle's column; `ball_x`, per row (row 0 at the
    top), the column of the ball in that row, -1 where there is none."""

    paddle_x: Int[Array, ""]
    ball_x: Int[Array, " rows"]


class ContinuingCatchParams(NamedTuple):
    """csuite's `spawn_probability` (the chance of a new ball at each step), and
    `reward_offset`, a constant added to every reward (0: csuite's task)."""

    spawn_probability: float | Array = 0.1
    reward_offset: float | Array = 0.0


class ContinuingCatch(eqx.Module):
    """csuite's continuing Catch, gymnax-style (module docstring).

    ```python
    import jax
    import jax.numpy as jnp
    from alberta_eqx import ContinuingCatch

    env = ContinuingCatch()  # 10 rows, 5 columns; gymnax-style: reset, then step
    first, state = env.reset(jax.random.key(0))  # [paddle x, ball x, ball y]
    first[0]  # about 0.4: the paddle in column 2 of 5
    observation, state, reward, terminated, truncated, info = env.step(
        jax.random.key(1), state, jnp.asarray(2)
    )  # action 2: move right
    observation[0]  # about 0.6
    observation[2]  # about 0.1: the ball fell to row 1 of 10
    ```

    **Arguments:**

    - `rows`: the board's rows, at least 2: the balls fall from row 0 to the paddle's
      row, `rows - 1` (csuite: 10).
    - `columns`: the board's columns (csuite: 5).
    - `observation_type`: `"continuous"`, `[paddle x, ball x, ball y]` scaled to
      `[0, 1)`, or `"discrete"`, the `(rows, columns)` board (module docstring).
    """

    rows: int = eqx.field(static=True)
    columns: int = eqx.field(static=True)
    observation_type: Literal["discrete", "continuous"] = eqx.field(static=True)
    num_actions: int = eqx.field(static=True, default=3)

    def __init__(
        self,
        rows: int = 10,
        columns: int = 5,
        observation_type: str = "continuous",  # checked below: a ValueError naming it
    ):
        if isinstance(rows, int | np.integer) and not isinstance(rows, bool) and rows < 2:
            raise ValueError(f"rows must be >= 2 (a row above the paddle's), got {rows}")
        self.rows = _checks.positive_int("rows", rows)
        self.columns = _checks.positive_int("columns", columns)
        if observation_type not in _OBSERVATION_TYPES:
            raise ValueError(
                f"observation_type must be 'discrete' or 'continuous', got {observation_type!r}"
            )
        self.observation_type = cast(Literal["discrete", "continuous"], observation_type)

    @property
    def default_params(self) -> ContinuingCatchParams:
        return ContinuingCatchParams()

    def observation(self, state: ContinuingCatchState) -> Observation:
        dtype = _checks.default_float()
        if self.observation_type == "discrete":
            # csuite's `_get_observation_discrete`: 1 at the paddle and at every ball
            # (one_hot of -1, a row without a ball, is all zeros)
            board = jax.nn.one_hot(state.ball_x, self.columns, dtype=dtype)
            return board.at[self.rows - 1, state.paddle_x].set(1.0)
        # csuite's `_get_observation_continuous`: the oldest ball is the lowest one
        present = state.ball_x >= 0
        lowest = self.rows - 1 - jnp.argmax(present[::-1])
        any_ball = jnp.any(present)
        ball_x = jnp.where(any_ball, state.ball_x[lowest], 0)
        ball_y = jnp.where(any_ball, lowest, 0)
        return jnp.stack(
            [
                state.paddle_x.astype(dtype) / self.columns,
                ball_x.astype(dtype) / self.columns,
                ball_y.astype(dtype) / self.rows,
            ]
        )

    def reset(
        self, key: PRNGKeyArray, params: ContinuingCatchParams | None = None
    ) -> tuple[Observation, ContinuingCatchState]:
        # csuite's `start`: the paddle centred in the bottom row, one ball in row 0
        column = jax.random.randint(key, (), 0, self.columns).astype(jnp.int32)
        ball_x = jnp.full(self.rows, -1, jnp.int32).at[0].set(column)
        state = ContinuingCatchState(jnp.asarray(self.columns // 2, jnp.int32), ball_x)
        return self.observation(state), state

    def step(
        self,
        key: PRNGKeyArray,
        state: ContinuingCatchState,
        action: Int[Array, ""],
        params: ContinuingCatchParams | None = None,
    ) -> tuple[
        Observation,
        ContinuingCatchState,
        Float[Array, ""],
        Bool[Array, ""],
        Bool[Array, ""],
        dict[str, Any],
    ]:
        params = self.default_params if params is None else params
        spawn_key, column_key = jax.random.split(key)
        # 1. the paddle moves by action - 1 (csuite's `Action.dx`), clipped to the board
        paddle_x = jnp.clip(state.paddle_x + jnp.asarray(action) - 1, 0, self.columns - 1)
        paddle_x = paddle_x.astype(jnp.int32)
        # 2. every ball moves down one row
        ball_x = jnp.concatenate([jnp.full(1, -1, jnp.int32), state.ball_x[:-1]])
        # 3. a ball in the paddle's row (the oldest) is caught (+1) or missed (-1), and
        # removed
        bottom = ball_x[self.rows - 1]
        dtype = _checks.default_float()
        caught = jnp.where(bottom == paddle_x, 1.0, -1.0)
        raw_reward = jnp.where(bottom < 0, 0.0, caught).astype(dtype)
        ball_x = ball_x.at[self.rows - 1].set(-1)
        # 4. a new ball in row 0 with probability spawn_probability
        spawn = jax.random.uniform(spawn_key) < params.spawn_probability
        column = jax.random.randint(column_key, (), 0, self.columns).astype(jnp.int32)
        ball_x = ball_x.at[0].set(jnp.where(spawn, column, -1))
        reached = ContinuingCatchState(paddle_x, ball_x)
        return continuing_step(
            self.observation(reached),
            reached,
            raw_reward + params.reward_offset,
            raw_reward=raw_reward,
        )
