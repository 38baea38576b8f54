r"""The reward-rate estimate `Rbar` that average-reward (differential) TD rules and
reward centering subtract from every reward, and its one update rule: one object
that every TD learner (`TDLinearLearner`, `TrueOnlineTDLearner`, the SwiftTD learners,
`TDMLPLearner`, `GradientTDLearner`, a `Horde`'s or a `TrunkHorde`'s demons) and every
control agent (`SarsaLambda`, `SwiftSarsa`, `StreamAC`, `StreamQ`) holds as its
optional `reward_rate`.

Differential semi-gradient TD(lambda) and Sarsa (Sutton and Barto 2018, section
10.3, the box, with traces), differential Q-learning (Wan, Naik and Sutton 2021,
equations 5-6) and value-based reward centering (Naik, Wan, Tomar and Sutton 2024)
all update it from the TD error that used it; simple reward centering (Naik et al.
2024) from the reward:

    delta <- R - Rbar + gamma v(S') - v(S)            (or q; differential: gamma = 1)
    Rbar  <- Rbar + beta delta                         (update_from="td_error")
    Rbar  <- Rbar + beta (R - Rbar)                    (update_from="reward")

Off-policy, the TD error of a state-value learner is weighted by the importance-
sampling ratio `rho = pi(A|S) / b(A|S)` in the value update, and value-based centering
weights the rate's update the same way, so that `Rbar` estimates the *target* policy's
reward rate (Naik et al. 2024, value-based centering for off-policy TD-learning:
`Rbar <- Rbar + eta alpha rho delta`, beside `V(S) <- V(S) + alpha rho delta`):

    Rbar  <- Rbar + beta rho delta                     (update_from="td_error", ratio rho)

Simple centering has no off-policy form there: with a ratio it still averages the
rewards received (the behaviour policy's rate), a constant shift that leaves the
target policy's values' differences unchanged.

The book calls the step-size `beta`; Wan et al. and Naik et al. write it `eta alpha`
(a multiple of the value step-size): pass the product as `step_size`. With
`discount = 1` the value-based rule is differential learning; with `discount < 1`
it is reward centering.
"""

from typing import TypeVar

import equinox as eqx
from jaxtyping import Array, Float

from alberta_eqx import _checks
from alberta_eqx._checks import ArrayLike

_SOURCES = ("td_error", "reward")
_Learner = TypeVar("_Learner", bound=eqx.Module)


class RewardRate(eqx.Module):
    """An estimate `Rbar` of the reward rate, held in an agent's state (module
    docstring).

    ```python
    import jax.numpy as jnp
    from alberta_eqx import LMS
    from alberta_eqx.td import RewardRate, TDLinearLearner, TDTimeStep

    rate = RewardRate(step_size=0.1)  # Rbar = 0 at first, learned from the TD error
    learner = TDLinearLearner(3, LMS(0.1), reward_rate=rate)  # differential TD(0)
    x, x_next = jnp.array([1.0, 0.5, -1.0]), jnp.array([0.0, 1.0, 0.0])
    learner, result = learner.learn(TDTimeStep(x, jnp.asarray(1.0), jnp.asarray(1.0), x_next))
    # delta = (R - Rbar) + gamma v(x') - v(x) = 1, every value 0 at first
    learner.reward_rate.estimate  # about 0.1 = beta delta
    ```

    **Arguments:**

    - `step_size`: `beta > 0` (Wan et al., Naik et al.: `eta alpha`).
    - `estimate`: `Rbar`'s starting value (finite; the book: "arbitrarily (e.g., to
      zero)").
    - `update_from`: `"td_error"` (differential learning, value-based centering) or
      `"reward"` (simple centering).
    """

    estimate: Float[Array, ""]
    step_size: Float[Array, ""] = _checks.hyperparameter()
    update_from: str = eqx.field(static=True)

    def __init__(
        self,
        step_size: ArrayLike,
        estimate: ArrayLike = 0.0,
        *,
        update_from: str = "td_error",
    ):
        if update_from not in _SOURCES:
            raise ValueError(f"update_from must be one of {_SOURCES}, got {update_from!r}")
        self.step_size = _checks.positive("step_size", step_size)
        self.estimate = _checks.as_float("estimate", estimate, self.step_size.dtype)
        self.update_from = update_from

    def center(self, reward: Float[Array, ""]) -> Float[Array, ""]:
        """`R - Rbar`: the reward a centered or differential TD error uses."""
        return reward - self.estimate.astype(reward.dtype)

    def update(
        self,
        reward: Float[Array, ""],
        delta: Float[Array, ""],
        ratio: Float[Array, ""] | None = None,
    ) -> "RewardRate":
        """`Rbar` after one transition with reward `reward` and TD error `delta`
        (computed with the current `Rbar`); `ratio`: the importance-sampling ratio
        `rho` of an off-policy state-value TD error, which weights value-based
        centering's step (module docstring; simple centering does not use it)."""
        if self.update_from == "td_error":
            signal = delta if ratio is None else ratio * delta
        else:
            signal = self.center(reward)
        estimate = self.estimate + self.step_size * signal.astype(self.estimate.dtype)
        return eqx.tree_at(lambda r: r.estimate, self, estimate)


def centered_reward(rate: RewardRate | None, reward: Float[Array, ""]) -> Array:
    """The reward a TD error uses: `R`, or `R - Rbar` with a `rate`."""
    return reward if rate is None else rate.center(reward)


def with_updated_rate(
    learner: _Learner,
    reward: Float[Array, ""],
    delta: Float[Array, ""],
    ratio: Float[Array, ""] | None = None,
) -> _Learner:
    """`learner` (any module with a `reward_rate` field) with `Rbar` updated after a
    transition by `RewardRate.update`; unchanged where it holds no rate."""
    rate = learner.reward_rate  # type: ignore[attr-defined]
    if rate is None:
        return learner
    return eqx.tree_at(
        lambda m: m.reward_rate,  # type: ignore[attr-defined]
        learner,
        rate.update(reward, delta, ratio),
    )


def check_reward_rate(reward_rate: RewardRate | None, dtype) -> RewardRate | None:
    """`reward_rate` (a `RewardRate` or None, raising naming the argument otherwise)
    cast to the learner's `dtype`."""
    if reward_rate is not None and not isinstance(reward_rate, RewardRate):
        raise TypeError(
            f"reward_rate must be a RewardRate or None, got {type(reward_rate).__name__}"
        )
    return _checks.cast_floating(reward_rate, dtype)
