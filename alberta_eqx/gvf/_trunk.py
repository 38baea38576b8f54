r"""`TrunkHorde`: GVF demons as the heads of one shared nonlinear trunk, each learning
by semi-gradient TD(lambda) with eligibility traces.

The network is `MultiHeadLearner`'s: a trunk `h(x; theta)` (an MLP's hidden layers)
and one scalar head per demon, `v_i(x) = w_i . h(x) + b_i`. Per transition
`(x, R_{t+1}, d, x')`, with demon `i`'s cumulant `C_i = c_i . (R_{t+1}, x')` and
continuation `gamma_i' = gamma_i [d > 0]` (as `Horde`), every demon takes the
semi-gradient TD(lambda) step of Sutton and Barto (2018, sec. 12.2) over the
parameters its value depends on, its head `u_i = (w_i, b_i)` and the trunk `theta`:

    delta_i <- C_i + gamma_i' v_i(x') - v_i(x)              # both before the update
    e_i     <- gamma_i^prev lambda_i e_i + grad_{u_i} v_i(x)  # = (h(x), 1) + decayed
    z_i     <- gamma_i^prev lambda_i z_i + grad_theta v_i(x)
    u_i     <- u_i + (head_optimizer's update for g_i = -delta_i e_i)
    theta   <- theta + (optimizer's update for g = -sum_i delta_i z_i)

`gamma_i^prev` is the previous transition's `gamma_i'` (0 after a truncation,
`TDTimeStep.truncated`): the trace of the state the transition starts from, as in
`TDMLPLearner`. The trunk's step is exactly the sum of every demon's semi-gradient
TD(lambda) step on the trunk, so the trunk keeps one trace per demon over all its
parameters: `k x P` numbers for `k` demons and a trunk of `P` parameters (1,000
demons on a 16-64-64 trunk, `P = 5,248`: 5.2M numbers, 21 MB in float32). Each step
then takes one backward pass per demon through the trunk (vmapped).

When `gamma_i lambda_i = 0` for every demon (concrete values), every trace is just
the gradient, no trace is stored, and a step is `MultiHeadLearner.update(x, y)` on
the TD targets `y_i = C_i + gamma_i' v_i(x')`: one backward pass through the trunk.

The optimizers are called as `TDMLPLearner` and `MultiHeadLearner` call them. Head
`i`'s (one optimizer state per head): `update(g_i, state_i, u_i,
curvature=grad_i * e_i, meta_gradient=-delta_i grad_i, error=delta_i,
prediction_gradient=e_i, trace_decay=0)`, so a rule with a trace of its own
(`alberta_eqx.optax.obgd`) is handed the learner's trace and bounds each head as
Stream TD(lambda) (Elsayed, Vasan and Mahmood 2024) bounds a linear learner. The
trunk's: `update(g, state, theta, curvature=sum_i grad_i * z_i, meta_gradient=-sum_i
delta_i grad_i, error=1, prediction_gradient=sum_i delta_i z_i, trace_decay=0)`,
`MultiHeadLearner`'s pseudo-error 1 (0.17's), so ObGD bounds the summed step.

With a `RewardRate` (`reward_rate`) every demon keeps its own `Rbar_i`, as a `Horde`
whose demon holds a rate does: demon `i`'s TD error uses `C_i - Rbar_i` in place of
`C_i`, and `Rbar_i` is updated after the transition from that TD error (or from
`C_i`) by `RewardRate.update` (`alberta_eqx.td._reward_rate`), centering the
cumulant (Naik, Wan, Tomar and Sutton 2024), or with `gamma_i = 1` differential
TD(lambda) (Sutton and Barto 2018, section 10.3).

alberta-framework 0.17.1's `HordeLearner(hidden_sizes=...)` keeps the trunk at
`lambda = 0` (no trunk traces, an approximation of TD(lambda) for `lambda > 0`) and
traces the heads only; here the trunk's traces make every demon's step exact.
"""

from collections.abc import Sequence
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, PyTree

from alberta_eqx import _checks, _rules
from alberta_eqx._checks import ArrayLike
from alberta_eqx.gvf._horde import AbstractHorde, GVFQuestion, demon_questions
from alberta_eqx.learners import StepSizeSnapshot
from alberta_eqx.nn import MLP
from alberta_eqx.nonlinear import MultiHeadLearner, MultiHeadStepMetrics, MultiHeadUpdateResult
from alberta_eqx.streams import TDTimeStep
from alberta_eqx.td import RewardRate, check_reward_rate, next_trace_discount


class TrunkHorde(AbstractHorde):
    """A Horde of on-policy demons sharing a nonlinear trunk: demon `i` is head `i` of
    a `MultiHeadLearner`, and every demon learns by semi-gradient TD(lambda) with its
    own `gamma_i` and `lambda_i`, exactly, over its head and the shared trunk (module
    docstring), all in one update per transition inside the runners' compiled scan.

    Whether traces are kept is decided at construction, from the questions' `gamma`
    and `lambda_` (traced values under `jit`/`vmap` count as nonzero).

    Off-policy questions (a `target_policy`) are out of scope here: a trunk trained
    by importance-weighted or gradient-TD updates of many demons is a different
    algorithm. Use `Horde` with `GradientTDLearner` demons for them.

    ```python
    import jax
    import jax.numpy as jnp
    import alberta_eqx.optax as aeo
    from alberta_eqx.gvf import GVFQuestion, TrunkHorde
    from alberta_eqx.nn import MLP
    from alberta_eqx.td import TDTimeStep

    questions = [  # cumulants c . (R, x'): the discounted return, and the next x'_0
        GVFQuestion(jnp.array([1.0, 0.0, 0.0, 0.0]), 0.9, lambda_=0.8),
        GVFQuestion(jnp.array([0.0, 1.0, 0.0, 0.0]), 0.0),
    ]
    model = MLP(3, 2, (8,), key=jax.random.key(0))  # a shared trunk 3 -> 8, a head per demon
    horde = TrunkHorde(questions, model, aeo.lms(0.1), names=["return", "next_x0"])
    x, x_next = jnp.array([1.0, 0.5, -1.0]), jnp.array([0.5, 1.0, 0.0])
    horde, result = horde.learn(TDTimeStep(x, jnp.asarray(1.0), jnp.asarray(1.0), x_next))
    result.error  # one TD error per demon
    ```

    **Arguments:**

    - `questions`: a batched `GVFQuestion` (leading axis: demons) or a sequence of
      single ones, without a `target_policy`.
    - `model`: the network, an `alberta_eqx.nn.MLP` with one output per demon, e.g.
      `MLP(feature_dim, num_demons, (64, 64), key=key, sparsity=0.9)` (0.17's network;
      no hidden layer: no trunk, the demons are linear TD(lambda) learners, as
      `Horde`'s); its `in_size` is the number of features, and the questions'
      cumulants weigh `in_size + 1` signals (the reward, then the next features).
    - `optimizer`: the trunk's optax transformation (and the heads', unless
      `head_optimizer` is given), as for `MultiHeadLearner`.
    - `head_optimizer`: as for `MultiHeadLearner`.
    - `names`: one name per demon, for reporting (default `"demon_0"`, ...).
    - `reward_rate`: a `RewardRate` that every demon starts from, each then learning
      its own `Rbar_i` (module docstring), or None.
    """

    timestep_type: ClassVar[type] = TDTimeStep

    learner: MultiHeadLearner
    questions: GVFQuestion
    # The traces of the state each transition starts from: heads `(w, b)` and the
    # trunk's layers, every leaf with the demons' axis first. None when no demon
    # keeps a trace (every gamma_i lambda_i is 0).
    head_traces: tuple[Float[Array, "*batch demons h"], Float[Array, "*batch demons"]] | None
    trunk_traces: PyTree[Array] | None
    previous_gammas: Float[Array, "*batch demons"]
    # One rate per demon: every leaf with the demons' axis last.
    reward_rate: RewardRate | None
    names: tuple[str, ...] = eqx.field(static=True)

    def __init__(
        self,
        questions: GVFQuestion | Sequence[GVFQuestion],
        model: MLP,
        optimizer: optax.GradientTransformation,
        *,
        head_optimizer: optax.GradientTransformation | None = None,
        names: Sequence[str] | None = None,
        reward_rate: RewardRate | None = None,
    ):
        questions, names = demon_questions(questions, names)
        if questions.target_policy is not None:
            raise ValueError(
                "questions with a target_policy are off-policy: a TrunkHorde learns "
                "on-policy questions only; use Horde with GradientTDLearner demons"
            )
        self.learner = MultiHeadLearner(model, optimizer, head_optimizer=head_optimizer)
        if self.learner.num_heads != len(names):
            raise ValueError(
                f"model must have one output per demon, out_size={len(names)}, got "
                f"{self.learner.num_heads}"
            )
        if questions.num_signals != self.feature_dim + 1:
            raise ValueError(
                f"questions' cumulant must weigh feature_dim + 1 = {self.feature_dim + 1} "
                f"signals (the reward, then the next features), got {questions.num_signals}"
            )
        dtype = self.learner.head_weights.dtype
        self.questions = _checks.cast_floating(questions, dtype)
        self.names = names
        decay = self.questions.gamma * self.questions.lambda_
        if _checks.is_traced(decay) or np.any(np.asarray(decay) != 0):
            # the heads' arrays lead with the demons' axis; the trunk's get one
            self.head_traces = jax.tree.map(jnp.zeros_like, self.learner._head)
            self.trunk_traces = jax.tree.map(
                lambda a: jnp.zeros((len(names), *a.shape), a.dtype),
                eqx.filter(self.learner._trunk_layers, eqx.is_array),
            )
        else:
            self.head_traces = self.trunk_traces = None
        # No transition led into the first state: its traces start from the gradient.
        self.previous_gammas = jnp.zeros(len(names), dtype)
        rate = check_reward_rate(reward_rate, dtype)
        self.reward_rate = jax.tree.map(lambda a: jnp.broadcast_to(a, (len(names),)), rate)

    def config_arguments(self) -> dict:
        """`reward_rate`: the first demon's (`alberta_eqx.config.Configurable`), as
        `Horde` gives its first demon."""
        return {"reward_rate": jax.tree.map(lambda leaf: leaf[..., 0], self.reward_rate)}

    # The construction, read back from the learner (for `to_config`).
    @property
    def model(self) -> MLP:
        return self.learner.model

    @property
    def optimizer(self) -> optax.GradientTransformation:
        return self.learner.optimizer

    @property
    def head_optimizer(self) -> optax.GradientTransformation | None:
        return self.learner.head_optimizer

    @property
    def feature_dim(self) -> int:
        return self.learner.feature_dim

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """The batch axes (seeds, configurations) of the learner's arrays."""
        return self.learner.batch_shape

    def head(self, name: str) -> tuple[Float[Array, "*batch h"], Float[Array, "*batch"]]:
        """The head `(w_i, b_i)` of the demon called `name` (with this Horde's batch
        axes): its value is `w_i . h(x) + b_i`."""
        return self._pick((self.learner.head_weights, self.learner.head_biases), self._index(name))

    def predict(self, x: Float[Array, " n"]) -> Float[Array, " demons"]:
        """Every demon's prediction for the features `x`."""
        return self.learner.predict(x)

    def learn(self, timestep: TDTimeStep) -> tuple["TrunkHorde", MultiHeadUpdateResult]:
        """Every demon learns from one transition (the runners' entry point)."""
        learner = self.learner
        dtype = learner.head_weights.dtype
        x, x_next, _, discount, cumulants, gammas = self._transition(timestep, dtype)
        rate = self.reward_rate
        # centered: C_i - Rbar_i in place of C_i (module docstring)
        center = eqx.filter_vmap(lambda r, c: r.center(c))
        centered = cumulants if rate is None else center(rate, cumulants)
        # Semi-gradient: v(x') is a target, not differentiated. Where gamma_i' = 0 it
        # does not enter at all, whatever the stream put in x'.
        next_values = jnp.where(gammas == 0, 0, learner.model(x_next))
        # The next transition's gamma_i^prev: gamma_i', or 0 after a truncation.
        previous = self.questions.gamma * (next_trace_discount(discount, timestep.truncated) > 0)
        if self.trunk_traces is None:
            # Every trace is the gradient: the supervised step on the TD targets.
            learner, result = learner.update(x, centered + gammas * next_values)
            new = eqx.tree_at(lambda s: (s.learner, s.previous_gammas), self, (learner, previous))
            return new._with_rates(cumulants, result.error), result

        W, b = learner._head
        h, backward, _ = learner._trunk_features(x)
        values = W @ h + b
        delta = centered + gammas * next_values - values
        decay = self.previous_gammas * self.questions.lambda_  # gamma_i^prev lambda_i
        trace = jax.vmap(_rules.accumulate_trace)  # e <- decay e + grad, per demon
        # Heads: grad_{u_i} v_i = (h, 1).
        grad_heads = (jnp.broadcast_to(h, W.shape), jnp.ones_like(b))
        e = trace(self.head_traces, decay, grad_heads)
        head_extras = {
            "curvature": jax.tree.map(jnp.multiply, grad_heads, e),
            "meta_gradient": _rules.loss_gradient(delta, grad_heads),
            "error": delta,
            "prediction_gradient": e,
            "trace_decay": jnp.zeros_like(delta),
        }
        g_heads = _rules.loss_gradient(delta, e)
        # Trunk: grad_theta v_i, one backward pass per demon (cotangent w_i on h).
        grad_trunk = jax.vmap(lambda w: backward(w)[0])(W)
        z = trace(self.trunk_traces, decay, grad_trunk)
        summed = jax.tree.map(lambda z: jnp.tensordot(delta, z, 1), z)  # sum_i delta_i z_i
        trunk_extras = {
            "curvature": jax.tree.map(lambda g, z: jnp.sum(g * z, axis=0), grad_trunk, z),
            "meta_gradient": backward(-(delta @ W))[0],  # -sum_i delta_i grad_i
            "error": jnp.ones((), dtype),
            "prediction_gradient": summed,
            "trace_decay": jnp.zeros((), dtype),
        }
        g = jax.tree.map(jnp.negative, summed)
        present = jnp.ones(delta.shape, bool)
        learner = learner._apply(present, (g_heads, head_extras), (g, trunk_extras))
        new = eqx.tree_at(
            lambda s: (s.learner, s.head_traces, s.trunk_traces, s.previous_gammas),
            self,
            (learner, e, z, previous),
        )
        new = new._with_rates(cumulants, delta)
        squared = delta * delta
        metrics = MultiHeadStepMetrics(
            squared_error=jnp.mean(squared),
            error=jnp.mean(delta),
            mean_step_size=learner._mean_step_size(),
            normalizer_mean_var=None,
            head_squared_errors=squared,
            head_errors=delta,
            head_present=jnp.ones_like(delta),
        )
        return new, MultiHeadUpdateResult(prediction=values, error=delta, metrics=metrics)

    def _with_rates(
        self, cumulants: Float[Array, " demons"], delta: Float[Array, " demons"]
    ) -> "TrunkHorde":
        """This Horde with every demon's `Rbar_i` updated from its cumulant and TD
        error (`RewardRate.update`, demon by demon); unchanged without a rate."""
        rate = self.reward_rate
        if rate is None:
            return self
        rates = eqx.filter_vmap(lambda r, c, d: r.update(c, d))(rate, cumulants, delta)
        return eqx.tree_at(lambda s: s.reward_rate, self, rates)

    def update(
        self, x: Float[Array, " n"], y: ArrayLike
    ) -> tuple["TrunkHorde", MultiHeadUpdateResult]:
        """Learn from the transition with features `x` and reward `y` that ends the
        episode (discount 0, next features 0)."""
        x = _checks.features(x, self.feature_dim, self.learner.head_weights.dtype)
        zero = jnp.zeros((), x.dtype)
        return self.learn(TDTimeStep(x, _checks.scalar_target(y, x.dtype), zero, zero * x))

    def step_size_snapshot(self, include_bias: bool = True) -> StepSizeSnapshot:
        """The trunk's and the heads' step-sizes (`MultiHeadLearner.step_size_snapshot`)."""
        return self.learner.step_size_snapshot(include_bias)
