"""General value functions (GVFs) and the Horde (Sutton, Modayil, Delp, Degris,
Pilarski, White and Precup 2011, "Horde: a scalable real-time architecture for
learning knowledge from unsupervised sensorimotor interaction").

A GVF question asks for the expected discounted sum of a cumulant `C` under a target
policy `pi`, with a continuation (pseudo-termination) discount `gamma` and a
trace-decay parameter `lambda` for the learner that answers it:

    v_pi(s) = E_pi[C_{t+1} + gamma C_{t+2} + gamma^2 C_{t+3} + ... | S_t = s]

Here a question's cumulant is linear in the transition's signals,
`C_{t+1} = c . (R_{t+1}, x(S_{t+1}))` (a one-hot `c` picks the reward or one feature,
Horde's "sensor" predictions), its continuation is `gamma` while the stream's episode
goes on and 0 where it ends, and its target policy is a fixed distribution over
actions (or None: the behaviour policy, on-policy). All four are array leaves, so a
`GVFQuestion` with a leading axis of `k` holds `k` questions, and the Horde answers
them as one batch of `k` demons.
"""

from collections.abc import Sequence
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int

from alberta_eqx import _checks
from alberta_eqx.gvf._offpolicy import GradientTDLearner, check_policy, importance_ratio
from alberta_eqx.learners import AbstractLearner, StepSizeSnapshot, UpdateResult
from alberta_eqx.streams import OffPolicyTimeStep, TDTimeStep
from alberta_eqx.td import SwiftTDLearner, TDLinearLearner, TrueOnlineTDLearner

_ON_POLICY_DEMONS = (TDLinearLearner, TrueOnlineTDLearner, SwiftTDLearner)
"""The demons that learn on-policy from `TDTimeStep`s."""


class GVFQuestion(eqx.Module):
    """One GVF question, or a batch of them (every leaf with the same leading axes).

    **Arguments:**

    - `cumulant`: `c`, shape `(*batch, feature_dim + 1)`: the cumulant is
      `C_{t+1} = c . (R_{t+1}, x(S_{t+1}))`.
    - `gamma`: the continuation `gamma` in `[0, 1]`, shape `batch` (0: predict the
      next cumulant only).
    - `lambda_`: the trace-decay parameter in `[0, 1]` of the demon answering it
      (broadcast to `gamma`'s shape).
    - `target_policy`: `pi(a)`, shape `(*batch, actions)`, probabilities summing to 1;
      None (the default) for the behaviour policy itself.
    - `dtype`: the floating-point dtype (default: JAX's default float).
    """

    cumulant: Float[Array, "*batch signals"] = _checks.hyperparameter()
    gamma: Float[Array, "*batch"] = _checks.hyperparameter()
    lambda_: Float[Array, "*batch"] = _checks.hyperparameter()
    target_policy: Float[Array, "*batch actions"] | None = _checks.hyperparameter()

    def __init__(
        self,
        cumulant: ArrayLike | Sequence,
        gamma: ArrayLike | Sequence,
        lambda_: ArrayLike | Sequence = 0.0,
        target_policy: ArrayLike | Sequence | None = None,
        *,
        dtype=None,
    ):
        dtype = dtype or _checks.default_float()
        self.gamma = _checks.unit_interval_closed("gamma", gamma, dtype)
        batch = self.gamma.shape
        self.cumulant = jnp.asarray(cumulant, dtype)
        if self.cumulant.shape[:-1] != batch or self.cumulant.ndim != len(batch) + 1:
            raise ValueError(
                f"cumulant must have shape {(*batch, 'signals')} (gamma's shape, then the "
                f"signals), got {self.cumulant.shape}"
            )
        self.lambda_ = jnp.broadcast_to(
            _checks.unit_interval_closed("lambda_", lambda_, dtype), batch
        )
        if target_policy is None:
            self.target_policy = None
        else:
            policy = check_policy("target_policy", jnp.asarray(target_policy, dtype))
            if policy.shape[:-1] != batch:
                raise ValueError(
                    f"target_policy must have shape {(*batch, 'actions')}, got {policy.shape}"
                )
            self.target_policy = policy

    @property
    def num_signals(self) -> int:
        """The length of the signal vector `(R_{t+1}, x(S_{t+1}))`: features + 1."""
        return self.cumulant.shape[-1]


def stack_questions(questions: Sequence[GVFQuestion]) -> GVFQuestion:
    """Single questions stacked into one batch along a new leading axis."""
    policies = {q.target_policy is None for q in questions}
    if len(policies) != 1:
        raise ValueError(
            "questions must all have a target_policy or all have none (None: on-policy)"
        )
    return jax.tree.map(lambda *a: jnp.stack(a), *questions)


def demon_questions(
    questions: GVFQuestion | Sequence[GVFQuestion], names: Sequence[str] | None
) -> tuple[GVFQuestion, tuple[str, ...]]:
    """The questions as one batch with one leading axis of demons, and one distinct
    name per demon (default `"demon_0"`, ...): what every Horde is built from."""
    if not isinstance(questions, GVFQuestion):
        questions = stack_questions(list(questions))
    if questions.gamma.ndim != 1:
        raise ValueError(
            f"questions must have one leading axis of demons, got gamma's shape "
            f"{questions.gamma.shape}"
        )
    num_demons = questions.gamma.shape[0]
    if names is None:
        names = tuple(f"demon_{i}" for i in range(num_demons))
    names = tuple(str(n) for n in names)
    if len(names) != num_demons or len(set(names)) != num_demons:
        raise ValueError(f"names must be {num_demons} distinct names, got {len(names)}")
    return questions, names


def _behaviour(
    timestep: TDTimeStep | OffPolicyTimeStep, questions: GVFQuestion, dtype
) -> tuple[Int[ArrayLike, ""], Float[ArrayLike, ""]]:
    """The action `A_t` and its behaviour probability `b(A_t|S_t)`: an
    `OffPolicyTimeStep`'s, or, for a `TDTimeStep` (on-policy, which serves only
    questions without a target policy), action 0 with `b = 1`, so that `rho = 1`."""
    match timestep:
        case OffPolicyTimeStep():
            return timestep.action, timestep.behaviour_probability
        case TDTimeStep() if questions.target_policy is not None:
            raise TypeError(
                "off-policy questions need an OffPolicyTimeStep stream (the action and "
                f"its behaviour probability), got {type(timestep).__name__}"
            )
    return jnp.zeros((), jnp.int32), jnp.ones((), dtype)


def _truncated(timestep: TDTimeStep | OffPolicyTimeStep) -> Bool[Array, ""] | None:
    """Where a time limit cut the episode after this transition: a `TDTimeStep`'s
    `truncated`; an `OffPolicyTimeStep` carries none."""
    match timestep:
        case TDTimeStep():
            return timestep.truncated
    return None


def _td_step(step: OffPolicyTimeStep, truncated: Bool[Array, ""] | None) -> TDTimeStep:
    """An on-policy TD demon's transition (a truncation cuts its traces)."""
    return TDTimeStep(
        step.observation, step.reward, step.discount, step.next_observation, truncated
    )


def _off_policy_step(
    step: OffPolicyTimeStep, truncated: Bool[Array, ""] | None
) -> OffPolicyTimeStep:
    """A gradient-TD demon's transition: the whole off-policy step (its learners have
    no truncation to read)."""
    del truncated
    return step


# Demon i's transition, built from its `OffPolicyTimeStep`, by the step type its
# learner declares it reads (`AbstractLearner.timestep_type`).
_DEMON_STEPS = {TDTimeStep: _td_step, OffPolicyTimeStep: _off_policy_step}


class AbstractHorde(AbstractLearner):
    """What every Horde shares: named demons answering a batch of GVF questions from
    one stream, each demon learning from the transition
    `(x, C_i = c_i . (R_{t+1}, x'), gamma_i [d > 0], x')`."""

    questions: eqx.AbstractVar[GVFQuestion]
    names: eqx.AbstractVar[tuple[str, ...]]

    @property
    def normalizer(self) -> None:
        """A Horde has no feature normalizer."""
        return None

    @property
    def num_demons(self) -> int:
        return len(self.names)

    def _index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"no demon named {name!r}") from None

    def _pick(self, tree, i: int):
        where = (slice(None),) * len(self.batch_shape) + (i,)
        return jax.tree.map(lambda a: a[where] if eqx.is_array(a) else a, tree)

    def question(self, name: str) -> GVFQuestion:
        """The question of the demon called `name`."""
        return self._pick(self.questions, self._index(name))

    def named(self, values: Float[Array, "*batch demons"]) -> dict[str, Array]:
        """Per-demon values (predictions, errors: the last axis is the demons') by
        demon name."""
        return {name: values[..., i] for i, name in enumerate(self.names)}

    def _transition(self, timestep: TDTimeStep | OffPolicyTimeStep, dtype) -> tuple[Array, ...]:
        """One transition's features `x`, `x'`, reward and discount (checked, naming
        the field), and every demon's cumulant `C_i = c_i . (R_{t+1}, x')` and
        continuation `gamma_i [d > 0]`."""
        x, x_next, reward, discount = _checks.transition(timestep, self.feature_dim, dtype)
        q = self.questions
        signals = jnp.concatenate([reward[None], x_next])
        cumulants = q.cumulant @ signals  # C_i = c_i . (R_{t+1}, x')
        gammas = q.gamma * (discount > 0)  # pseudo-termination, cut at episode ends
        return x, x_next, reward, discount, cumulants, gammas


class Horde(AbstractHorde):
    """A Horde of linear demons: one learner per GVF question, all learning from one
    stream of experience with the same features, as one batched module (the demons'
    arrays lead with the demon axis), so every step of every demon is one vectorised
    update inside the runners' compiled scan.

    Per transition with features `x`, signals `(R_{t+1}, x')` and the stream's
    discount `d`, demon `i` learns from the transition
    `(x, C_i = c_i . (R_{t+1}, x'), gamma_i [d > 0], x')`, with `rho_i = pi_i(A_t) /
    b(A_t|S_t)` for off-policy questions. Its learner is `demon` with `lambda_` set
    to the question's.

    ```python
    import jax.numpy as jnp
    from alberta_eqx import LMS
    from alberta_eqx.gvf import GVFQuestion, Horde
    from alberta_eqx.td import TDLinearLearner, TDTimeStep

    # cumulants are c . (R, x'): the discounted sum of rewards, and the next x'_0
    questions = [
        GVFQuestion(jnp.array([1.0, 0.0, 0.0, 0.0]), 0.9),
        GVFQuestion(jnp.array([0.0, 1.0, 0.0, 0.0]), 0.0),
    ]
    horde = Horde(questions, TDLinearLearner(3, LMS(0.1)), names=["return", "next_x0"])
    x, x_next = jnp.array([1.0, 0.5, -1.0]), jnp.array([0.5, 1.0, 0.0])
    horde, result = horde.learn(TDTimeStep(x, jnp.asarray(1.0), jnp.asarray(1.0), x_next))
    result.error[0]  # about 1.0: the first demon's cumulant, the reward
    result.error[1]  # about 0.5: the second's, x'_0
    ```

    **Arguments:**

    - `questions`: a batched `GVFQuestion` (leading axis: demons) or a sequence of
      single ones.
    - `demon`: the learner every demon starts as: for on-policy questions a
      `TDLinearLearner` (any step-size rule: `LMS`, `IDBD`, `Autostep`), a
      `TrueOnlineTDLearner` or a `SwiftTDLearner` (dense features); for off-policy
      questions a `GradientTDLearner`.
    - `names`: one name per demon, for reporting (default `"demon_0"`, ...).
    """

    timestep_type: ClassVar[tuple[type, ...]] = (TDTimeStep, OffPolicyTimeStep)

    demons: TDLinearLearner | TrueOnlineTDLearner | SwiftTDLearner | GradientTDLearner
    questions: GVFQuestion
    names: tuple[str, ...] = eqx.field(static=True)
    feature_dim: int = eqx.field(static=True)

    def __init__(
        self,
        questions: GVFQuestion | Sequence[GVFQuestion],
        demon: TDLinearLearner | TrueOnlineTDLearner | SwiftTDLearner | GradientTDLearner,
        names: Sequence[str] | None = None,
    ):
        questions, names = demon_questions(questions, names)
        if not isinstance(demon, (*_ON_POLICY_DEMONS, GradientTDLearner)):
            raise TypeError(
                f"demon must be a TDLinearLearner, TrueOnlineTDLearner, SwiftTDLearner or "
                f"GradientTDLearner, got {type(demon).__name__}"
            )
        if demon.batch_shape != ():
            raise ValueError(f"demon must be a single learner, got batch {demon.batch_shape}")
        if questions.num_signals != demon.feature_dim + 1:
            raise ValueError(
                f"questions' cumulant must weigh feature_dim + 1 = {demon.feature_dim + 1} "
                f"signals (the reward, then the next features), got {questions.num_signals}"
            )
        if isinstance(demon, _ON_POLICY_DEMONS) and questions.target_policy is not None:
            raise ValueError(
                f"questions with a target_policy are off-policy: a {type(demon).__name__} "
                "demon learns on-policy only; use a GradientTDLearner demon"
            )
        if (
            isinstance(demon, GradientTDLearner)
            and demon.method in ("tdc", "gtd2")
            and not _checks.is_traced(questions.lambda_)
            and np.any(np.asarray(questions.lambda_) != 0)
        ):
            raise ValueError(
                f"questions' lambda_ must be 0 for {demon.method!r} demons; use "
                "GradientTDLearner(method='gtd'), GTD(lambda), for traces"
            )
        dtype = demon.weights.dtype
        self.questions = _checks.cast_floating(questions, dtype)
        set_lambda = lambda lam: eqx.tree_at(lambda d: d.lambda_, demon, lam)  # noqa: E731
        self.demons = eqx.filter_vmap(set_lambda)(self.questions.lambda_)
        self.names = names
        self.feature_dim = demon.feature_dim

    def config_arguments(self) -> dict:
        """`demon`: the first demon, its `lambda_` replaced by the questions'
        (`alberta_eqx.config.Configurable`)."""
        return {"demon": jax.tree.map(lambda leaf: leaf[0], self.demons)}

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """The batch axes before the demons' axis (seeds, configurations)."""
        return self.demons.batch_shape[:-1]

    def demon(
        self, name: str
    ) -> TDLinearLearner | TrueOnlineTDLearner | SwiftTDLearner | GradientTDLearner:
        """The learner of the demon called `name` (with this Horde's batch axes)."""
        return self._pick(self.demons, self._index(name))

    def predict(self, x: Float[Array, " n"]) -> Float[Array, " demons"]:
        """Every demon's prediction for the features `x`."""
        x = _checks.features(x, self.feature_dim, self.demons.weights.dtype)
        return eqx.filter_vmap(lambda d: d.predict(x))(self.demons)

    def learn(self, timestep: OffPolicyTimeStep | TDTimeStep) -> tuple["Horde", UpdateResult]:
        """Every demon learns from one transition (the runners' entry point). An
        on-policy stream's `TDTimeStep` serves on-policy questions."""
        dtype = self.demons.weights.dtype
        x, x_next, _, _, cumulants, gammas = self._transition(timestep, dtype)
        q = self.questions
        action, b = _behaviour(timestep, q, dtype)
        if q.target_policy is not None:
            # concrete inputs are checked here, once for every demon, naming the
            # argument (inside the vmap below they are tracers)
            importance_ratio(q.target_policy[:, action], b)
        demon_step = _DEMON_STEPS[self.demons.timestep_type]
        truncated = _truncated(timestep)

        def one(demon, c, g, policy):
            # rho_i = pi_i(A_t) / b(A_t|S_t); on-policy questions take pi = b
            pi = b if policy is None else policy[action]
            step = OffPolicyTimeStep(x, action, c, g, x_next, b, pi)
            return demon.learn(demon_step(step, truncated))

        demons, result = eqx.filter_vmap(one)(self.demons, cumulants, gammas, q.target_policy)
        return eqx.tree_at(lambda h: h.demons, self, demons), result

    def update(self, x: Float[Array, " n"], y: ArrayLike) -> tuple["Horde", UpdateResult]:
        """Learn from the transition with features `x` and reward `y` that ends the
        episode (discount 0, next features 0, on-policy)."""
        x = _checks.features(x, self.feature_dim, self.demons.weights.dtype)
        zero = jnp.zeros((), x.dtype)
        y = _checks.scalar_target(y, x.dtype)
        return self.learn(TDTimeStep(x, y, zero, jnp.zeros_like(x)))

    def step_size_snapshot(self, include_bias: bool = True) -> StepSizeSnapshot:
        """Every demon's step-sizes: arrays with the demons' axis before the weights'."""
        return eqx.filter_vmap(lambda d: d.step_size_snapshot(include_bias))(self.demons)
