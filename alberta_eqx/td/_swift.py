r"""SwiftTD (Javed, Sharifnassab and Sutton 2024, "SwiftTD: A Fast and Robust Algorithm
for Temporal Difference Learning", RLC): True Online TD(lambda) with a step-size per
feature optimised by a meta-gradient, a bound `eta` on the rate of learning and a
decay of the step-sizes when the bound binds. Two learners, in the three forms of the
authors' `swifttd` package, each equal step for step to the package form of its kind
(`tests/td/test_swifttd.py`):

- `SwiftTDLearner`: dense features (`TDTimeStep`), the package's `SwiftTDNonSparse`;
- `SparseSwiftTDLearner`: `(index, value)` features (`SparseTDTimeStep`), the
  package's `SwiftTD`, or active indices alone (binary features, `values=None`), its
  `SwiftTDBinaryFeatures`. Its cost per step grows with the number of active features
  and of live traces, not with the number of features.

The package sees one observation per step, `step(x_t, r_t)`, which finishes the
transition into `x_t` and starts the next from `x_t`; these learners see transitions
`(phi, R, gamma, phi')` and do the same two halves in the other order: take `phi` into
the traces, then learn from `R + gamma v(phi') - v(phi)`. Over a stream whose
transitions chain (`phi` is the previous `phi'`) the two are the same computation; the
package's `gamma` is the transition's discount. At an episode's start (after a
discount of 0 or a truncation, and before the first transition) the traces are cut and
the step is the package's first step on `phi`.

With a `RewardRate` `Rbar` (`reward_rate`) the reward in the TD error is `R - Rbar`
and `Rbar` is updated after the transition from that TD error (or from the reward),
as in `TDLinearLearner` (`alberta_eqx.td._reward_rate`): the package's `step(x_t, r_t)`
given `r_t - Rbar`. The step-size rule sees only the TD error, so it is unchanged.
"""

from typing import ClassVar, NamedTuple

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from alberta_eqx import _checks
from alberta_eqx._checks import ArrayLike
from alberta_eqx.learners import (
    AbstractLearner,
    AbstractTDLearner,
    StepMetrics,
    StepSizeSnapshot,
    UpdateResult,
)
from alberta_eqx.streams import TDTimeStep
from alberta_eqx.td._lambda import next_trace_discount
from alberta_eqx.td._reward_rate import (
    RewardRate,
    centered_reward,
    check_reward_rate,
    with_updated_rate,
)
from alberta_eqx.td._swift_rule import (
    SwiftTDState,
    swifttd_init,
    swifttd_trace_increment,
    swifttd_trace_step,
)


class SparseTDTimeStep(NamedTuple):
    """One transition with sparse features (or a stack of them, with a leading axis):
    a fixed number `k` of slots per observation, padded with index `-1`.

    **Fields:**

    - `indices`: the active features of `phi(S_t)`, integers in `[0, feature_dim)`,
      distinct, `-1` in unused slots.
    - `values`: their values, shape `(k,)`; None for binary features (every active
      feature is 1).
    - `reward`: `R_{t+1}`, a scalar.
    - `discount`: `gamma_{t+1}` in `[0, 1]`: 0 when `S_{t+1}` is terminal.
    - `next_indices`, `next_values`: the same for `phi(S_{t+1})`.
    - `truncated`: optional, True where a time limit cut the episode after this
      transition (as in `TDTimeStep`).
    """

    indices: Int[Array, "*steps k"]
    values: Float[Array, "*steps k"] | None
    reward: Float[Array, "*steps"]
    discount: Float[Array, "*steps"]
    next_indices: Int[Array, "*steps k"]
    next_values: Float[Array, "*steps k"] | None
    truncated: Bool[Array, "*steps"] | None = None


_WEIGHTS = SwiftTDState._fields.index("weights")
_Z = SwiftTDState._fields.index("z")
# The columns an episode's start zeroes (the traces), and those a lost trace zeroes
# (NumPy constants: a JAX array here would start JAX's backend on import).
_CUT = np.array([SwiftTDState._fields.index(k) for k in ("z", "p", "z_bar", "delta_w")])
_LOST = np.array([SwiftTDState._fields.index(k) for k in ("z", "z_delta", "p", "z_bar")])
# 1 in the columns an episode's start keeps, 0 in those it cuts
_KEEP = np.isin(np.arange(len(SwiftTDState._fields)), _CUT, invert=True)
_LOSE = np.isin(np.arange(len(SwiftTDState._fields)), _LOST, invert=True)


def _write(table: Float[Array, "rows 11"], where, values) -> Float[Array, "rows 11"]:
    """`table` with the rows `values` written at `where`, the padding row (the last,
    which padded indices point at) kept at zero. Every index is in bounds, so the
    scatter needs no checks."""
    table = table.at[where].set(values, mode="promise_in_bounds")
    return table.at[-1].set(0)


def _merged(table, slots, resident):
    """The per-feature rows: `table` with the slots' rows (`resident`, one column per
    slot) written at their features; the padding row dropped."""
    return table.at[slots].set(resident.T, mode="promise_in_bounds")[:-1]


class _AbstractSwiftTD(AbstractLearner):
    """The hyperparameters and state the SwiftTD learners share."""

    state: eqx.AbstractVar[SwiftTDState]
    value_old: Float[Array, ""]
    previous_discount: Float[Array, ""]
    reward_rate: RewardRate | None
    lambda_: Float[Array, ""] = _checks.hyperparameter()
    initial_step_size: Float[Array, ""] = _checks.hyperparameter()
    max_step_size: Float[Array, ""] = _checks.hyperparameter()
    step_size_decay: Float[Array, ""] = _checks.hyperparameter()
    meta_step_size: Float[Array, ""] = _checks.hyperparameter()
    eta_min: Float[Array, ""] = _checks.hyperparameter()
    epsilon: Float[Array, ""] = _checks.hyperparameter()
    feature_dim: int = eqx.field(static=True)

    def _setup(
        self,
        feature_dim,
        lambda_,
        initial_step_size,
        max_step_size,
        step_size_decay,
        meta_step_size,
        eta_min,
        epsilon,
        dtype,
        reward_rate,
    ) -> None:
        self.feature_dim = _checks.positive_int("feature_dim", feature_dim)
        dtype = _checks.float_dtype("dtype", dtype or _checks.default_float())
        self.lambda_ = _checks.unit_interval_closed("lambda_", lambda_, dtype)
        self.initial_step_size = _checks.positive("initial_step_size", initial_step_size, dtype)
        self.max_step_size = _checks.positive("max_step_size", max_step_size, dtype)
        self.step_size_decay = _checks.in_unit_interval("step_size_decay", step_size_decay, dtype)
        self.meta_step_size = _checks.non_negative("meta_step_size", meta_step_size, dtype)
        self.eta_min = _checks.positive("eta_min", eta_min, dtype)
        self.epsilon = _checks.non_negative("epsilon", epsilon, dtype)
        self.value_old = jnp.zeros((), dtype)
        self.previous_discount = jnp.zeros((), dtype)  # the first state starts an episode
        self.reward_rate = check_reward_rate(reward_rate, dtype)

    @property
    def weights(self) -> Float[Array, "*batch n"]:
        return self.state.weights

    @property
    def _dtype(self) -> jnp.dtype:
        return self.weights.dtype

    @property
    def bias(self) -> None:
        """SwiftTD has no bias (give a constant feature to learn one)."""
        return None

    @property
    def normalizer(self) -> None:
        """TD learners have no feature normalizer."""
        return None

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return self.state.weights.shape[:-1]

    @property
    def step_sizes(self) -> Float[Array, "*batch n"]:
        """The per-feature step-sizes `alpha_i = exp(beta_i)`."""
        return jnp.exp(self.state.beta)

    def step_size_snapshot(self, include_bias: bool = True) -> StepSizeSnapshot:
        return StepSizeSnapshot(
            step_sizes=self.step_sizes, bias_step_sizes=None, step_size_normalizers=None
        )

    def predict(self, x: Float[Array, " n"]) -> Float[Array, ""]:
        return jnp.dot(
            self.state.weights, _checks.features(x, self.feature_dim, self.weights.dtype)
        )

    def _start(self, active: SwiftTDState, x, fresh):
        """The scalars of the package's second loop over the active features `x`:
        `v_delta` (the last update's change to `v(phi)`, 0 at an episode's start),
        `v_old` (the value of `phi` from before the last update, or `v(phi)` at an
        episode's start), the rate of learning `sum_i alpha_i x_i^2` and `t = z . x`."""
        v_delta = jnp.where(fresh, 0, jnp.sum(active.delta_w * x))
        value_old = jnp.where(fresh, jnp.sum(active.weights * x), self.value_old)
        rate = jnp.sum(jnp.exp(active.beta) * x * x)
        return v_delta, value_old, rate, jnp.sum(active.z * x)

    def _trace_step(self, s: SwiftTDState, delta, v_delta, gamma) -> SwiftTDState:
        return swifttd_trace_step(
            s,
            delta,
            v_delta,
            gamma * self.lambda_,
            self.meta_step_size,
            self.max_step_size,
            self.eta_min,
        )

    def _delta(self, reward, gamma, value_next, value_old):
        """The TD error `R + gamma v(phi') - v_old`; differential / centered: `R - Rbar`
        in place of `R` (module docstring)."""
        return centered_reward(self.reward_rate, reward) + gamma * value_next - value_old

    def _result(self, delta, value_old, active: SwiftTDState, x) -> UpdateResult:
        on = x != 0
        mean_alpha = jnp.sum(jnp.where(on, jnp.exp(active.beta), 0)) / jnp.maximum(jnp.sum(on), 1)
        metrics = StepMetrics(squared_error=delta * delta, error=delta, mean_step_size=mean_alpha)
        return UpdateResult(prediction=value_old, error=delta, metrics=metrics)

    def _finish(self, value_next, gamma, truncated, reward, delta, **more):
        """This learner with the fields in `more` replaced, the next step's `V_old`
        and trace discount, and `Rbar` updated from the transition's reward and TD
        error `delta`."""
        names = ("value_old", "previous_discount", *more)
        values = (value_next, next_trace_discount(gamma, truncated), *more.values())
        new = eqx.tree_at(lambda m: tuple(getattr(m, n) for n in names), self, values)
        return with_updated_rate(new, reward, delta)


class SwiftTDLearner(_AbstractSwiftTD, AbstractTDLearner):
    """SwiftTD on dense features: a linear value function `v(s) = w . phi(s)` (no bias),
    the `swifttd` package's `SwiftTDNonSparse`, step for step.

    Runners call `learn(timestep)` with a `TDTimeStep`; `update(x, y)` learns `y` as a
    one-step target. Every step costs `O(feature_dim)`; for sparse features use
    `SparseSwiftTDLearner`.

    ```python
    import jax.numpy as jnp
    from alberta_eqx.td import SwiftTDLearner, TDTimeStep

    learner = SwiftTDLearner(3, lambda_=0.9, initial_step_size=0.01, meta_step_size=1e-3)
    x, x_next = jnp.array([1.0, 0.5, -1.0]), jnp.array([0.0, 1.0, 0.0])
    for _ in range(3):
        learner, result = learner.learn(TDTimeStep(x, jnp.asarray(1.0), jnp.asarray(0.9), x_next))
    learner.step_sizes  # one per feature, meta-learned from 0.01
    ```

    **Arguments:**

    - `feature_dim`: the number of features.
    - `lambda_`: the trace-decay parameter in `[0, 1]`.
    - `initial_step_size`: every `alpha_i` at the start (`> 0`).
    - `max_step_size`: `eta > 0`, the bound on the rate of learning
      `sum_i alpha_i x_i^2` and on every `alpha_i`.
    - `step_size_decay`: in `(0, 1]`: the factor applied to the active step-sizes
      where the bound binds.
    - `meta_step_size`: `>= 0`, the step-size of the step-sizes' meta-gradient.
    - `eta_min`: `> 0`, the package's lower bound on the step-sizes (as the package
      applies it, it acts only for `eta_min > 1`: see the docs).
    - `epsilon`: `>= 0`, the sparse forms' threshold for dropping a trace (unused by
      this dense form, as in the package; kept so that both take the same arguments).
    - `dtype`: the floating-point dtype of weights and state.
    - `reward_rate`: a `RewardRate` to subtract from every reward and learn
      (differential TD or reward centering; module docstring), or None.
    """

    state: SwiftTDState

    def __init__(
        self,
        feature_dim: int,
        lambda_: ArrayLike = 0.95,
        initial_step_size: ArrayLike = 1e-2,
        max_step_size: ArrayLike = 0.1,
        step_size_decay: ArrayLike = 0.999,
        meta_step_size: ArrayLike = 1e-3,
        eta_min: ArrayLike = 1e-10,
        epsilon: ArrayLike = 1e-5,
        *,
        dtype=None,
        reward_rate: RewardRate | None = None,
    ):
        self._setup(
            feature_dim,
            lambda_,
            initial_step_size,
            max_step_size,
            step_size_decay,
            meta_step_size,
            eta_min,
            epsilon,
            dtype,
            reward_rate,
        )
        self.state = swifttd_init(
            jnp.zeros(feature_dim, self.lambda_.dtype), self.initial_step_size
        )

    def learn(self, timestep: TDTimeStep) -> tuple["SwiftTDLearner", UpdateResult]:
        """Learn from one transition (the runners' entry point)."""
        dtype = self.weights.dtype
        x, x_next, reward, gamma = _checks.transition(timestep, self.feature_dim, dtype)
        fresh = self.previous_discount == 0
        # An episode's start cuts the traces.
        s = self.state
        s = s._replace(
            z=jnp.where(fresh, 0, s.z),
            p=jnp.where(fresh, 0, s.p),
            z_bar=jnp.where(fresh, 0, s.z_bar),
        )
        v_delta, value_old, rate, t = self._start(s, x, fresh)
        # SwiftTDNonSparse: the multiplier min(1, eta / tau), the reset after the increment
        eta = self.max_step_size
        scale = jnp.where(eta / rate < 1, eta / rate, 1)
        s = swifttd_trace_increment(s, x, scale, t, rate > eta, self.step_size_decay, False)
        # v(phi') with the weights before the update; 0 after a terminal step
        value_next = jnp.where(gamma == 0, 0, jnp.dot(s.weights, x_next))
        delta = self._delta(reward, gamma, value_next, value_old)
        result = self._result(delta, value_old, s, x)
        s = self._trace_step(s, delta, v_delta, gamma)
        return self._finish(value_next, gamma, timestep.truncated, reward, delta, state=s), result


class SparseSwiftTDLearner(_AbstractSwiftTD):
    """SwiftTD on sparse features, the `swifttd` package's `SwiftTD` (`(index, value)`
    pairs) or, with `values=None`, its `SwiftTDBinaryFeatures` (active indices),
    step for step. A linear value function `v(s) = w . phi(s)` (no bias).

    Runners call `learn(timestep)` with a `SparseTDTimeStep`. As in the package, a
    feature's trace lives in a set of eligible features from its activation until it
    decays below `epsilon` times the feature's last step-size (or turns negative);
    each step touches only the active features and that set, so its cost grows with
    them, not with `feature_dim`. The set is a fixed array of `trace_capacity` slots
    (compiled shapes are fixed), and a feature's whole state lives in its slot while
    its trace does, and after, until another feature needs the slot: so a step works
    on the slots in place and moves only the active features' rows. A joining feature
    that holds no slot takes a free one in the order of `indices`; one that finds none
    loses its trace at once, counted in `dropped_traces` (the run then departs from the
    package's). With `k` active features per step, `k * log(epsilon) / log(gamma
    lambda)` slots suffice.

    With `trace_capacity >= feature_dim` (the default) every feature has a slot of its
    own: the set is then a mask over the features, each step costs `O(feature_dim)`
    element-wise work and no scatter over the set (much the faster form on a CPU for
    up to some thousands of features, and under `vmap`), and nothing is ever dropped.

    ```python
    import jax.numpy as jnp
    from alberta_eqx.td import SparseSwiftTDLearner, SparseTDTimeStep

    learner = SparseSwiftTDLearner(10, lambda_=0.9, initial_step_size=0.01)  # 10 features
    step = SparseTDTimeStep(
        indices=jnp.array([0, 4, -1]),  # phi(S): features 0 and 4 on; -1 pads the slot
        values=None,  # binary features
        reward=jnp.asarray(1.0),
        discount=jnp.asarray(0.9),
        next_indices=jnp.array([4, 7, -1]),
        next_values=None,
    )
    learner, result = learner.learn(step)
    learner.weights[4]  # about 0.01 = alpha delta, delta = 1 (every value 0 at first)
    ```

    **Arguments:** those of `SwiftTDLearner` (`reward_rate` included), and

    - `trace_capacity`: the number of slots for live traces (default `feature_dim`:
      every feature its own slot, see above).
    """

    table: Float[Array, "rows 11"]
    resident: Float[Array, "11 capacity"]
    slots: Int[Array, " capacity"]
    slot_of: Int[Array, " rows"]
    dropped_traces: Int[Array, ""]
    trace_capacity: int = eqx.field(static=True)
    timestep_type: ClassVar[type] = SparseTDTimeStep

    def __init__(
        self,
        feature_dim: int,
        lambda_: ArrayLike = 0.95,
        initial_step_size: ArrayLike = 1e-2,
        max_step_size: ArrayLike = 0.1,
        step_size_decay: ArrayLike = 0.999,
        meta_step_size: ArrayLike = 1e-3,
        eta_min: ArrayLike = 1e-10,
        epsilon: ArrayLike = 1e-5,
        trace_capacity: int | None = None,
        *,
        dtype=None,
        reward_rate: RewardRate | None = None,
    ):
        self._setup(
            feature_dim,
            lambda_,
            initial_step_size,
            max_step_size,
            step_size_decay,
            meta_step_size,
            eta_min,
            epsilon,
            dtype,
            reward_rate,
        )
        state = swifttd_init(jnp.zeros(feature_dim, self.lambda_.dtype), self.initial_step_size)
        # One row per feature (the fields of SwiftTDState side by side): a step reads
        # and writes whole rows at the active features.
        self.table = jnp.pad(jnp.stack(state, axis=-1), ((0, 1), (0, 0)))
        capacity = feature_dim if trace_capacity is None else trace_capacity
        self.trace_capacity = _checks.positive_int("trace_capacity", capacity)
        # With a slot per feature the table is the whole state (the live traces are
        # those with z != 0) and the slot arrays are empty. Otherwise every slot is
        # free (`feature_dim`), no feature holds one (`trace_capacity`), and the
        # slots' state is one column per slot, so that the step over them is
        # element-wise over contiguous arrays.
        slots = 0 if self._every_feature_has_a_slot else self.trace_capacity
        self.slots = jnp.full(slots, feature_dim, jnp.int32)
        self.slot_of = jnp.full(feature_dim + 1 if slots else 0, slots, jnp.int32)
        self.resident = jnp.zeros((len(SwiftTDState._fields), slots), self.table.dtype)
        self.dropped_traces = jnp.zeros((), jnp.int32)

    def _sparse(self, name: str, indices, values):
        """Indices with padding (and any index < 0) moved to `feature_dim`, which the
        gathers read as 0 and the scatters drop, and the values (1 for binary
        features, 0 in padding)."""
        n, dtype = self.feature_dim, self.weights.dtype
        indices = jnp.asarray(indices)
        if indices.ndim != 1 or not jnp.issubdtype(indices.dtype, jnp.integer):
            raise TypeError(
                f"{name} must be a 1-D integer array, got {indices.dtype}{list(indices.shape)}"
            )
        if not _checks.is_traced(indices):
            if (np.asarray(indices) >= n).any():
                raise ValueError(f"{name} must be < feature_dim = {n}, got {int(np.max(indices))}")
        else:
            indices = eqx.error_if(indices, indices >= n, f"{name} must be < feature_dim = {n}")
        on = indices >= 0
        if values is None:
            x = on.astype(dtype)
        else:
            x = _checks.features(values, indices.shape[0], dtype, name=f"values of {name}")
            x = jnp.where(on, x, 0)
        return jnp.where(on, indices, n), x

    @property
    def state(self) -> SwiftTDState:
        """The per-feature state, as `SwiftTDLearner.state` (a copy out of the table
        and the slots)."""
        merged = jnp.vectorize(_merged, signature="(r,c),(s),(c,s)->(n,c)")
        rows = merged(self.table, self.slots, self.resident)
        return SwiftTDState(*jnp.moveaxis(rows, -1, 0))

    def learn(self, timestep: SparseTDTimeStep) -> tuple["SparseSwiftTDLearner", UpdateResult]:
        """Learn from one transition (the runners' entry point)."""
        n, dtype = self.feature_dim, self.weights.dtype
        at, x = self._sparse("indices", timestep.indices, timestep.values)
        next_at, x_next = self._sparse("next_indices", timestep.next_indices, timestep.next_values)
        reward = _checks.scalar_target(timestep.reward, dtype, name="reward")
        gamma = _checks.scalar_target(timestep.discount, dtype, name="discount")
        fresh = self.previous_discount == 0
        if self._every_feature_has_a_slot:
            return self._learn_masked(timestep, at, x, next_at, x_next, reward, gamma, fresh)
        table, resident, slots, slot_of = self.table, self.resident, self.slots, self.slot_of
        cap = self.trace_capacity
        # An episode's start cuts every trace (only the slots hold any).
        resident = resident * jnp.where(fresh, _KEEP, 1).astype(resident.dtype)[:, None]
        live = (slots < n) & (resident[_Z] != 0)
        # -- the package's second loop, over the active features; a feature holding a
        # slot (`held`) has its state there, the others in the table
        slot = slot_of.at[at].get(mode="promise_in_bounds")  # `cap`: none
        held = slot < cap
        in_slot = resident.at[:, slot].get(mode="fill", fill_value=0)
        rows = jnp.where(held, in_slot, table.at[at].get(mode="promise_in_bounds").T)
        active = SwiftTDState(*rows)
        v_delta, value_old, rate, t = self._start(active, x, fresh)
        joining = (at < n) & (active.z == 0)  # no live trace: joins the set
        eta = self.max_step_size
        scale = eta / jnp.maximum(eta, rate)  # SwiftTD: eta / E, E = max(eta, rate)
        active = swifttd_trace_increment(
            active, x, scale, t, scale < 1, self.step_size_decay, True
        )
        rows = jnp.stack(active)
        # A joining feature without a slot takes one, in order, from the slots neither
        # live nor held by an active feature; a feature left in a slot it took is
        # moved back to the table first. One that finds none loses its trace.
        needs = joining & ~held
        taken = jnp.zeros(cap, bool).at[slot].set(True, mode="drop")
        free = jnp.nonzero(~live & ~taken, size=at.shape[0], fill_value=cap)[0].astype(jnp.int32)
        new_slot = jnp.where(needs, free[jnp.cumsum(needs) - 1], cap)
        lost = needs & (new_slot == cap)
        leaving = slots.at[new_slot].get(mode="fill", fill_value=n)
        left = resident.at[:, new_slot].get(mode="fill", fill_value=0)
        table = _write(table, leaving, left.T)
        slot_of = slot_of.at[leaving].set(cap, mode="promise_in_bounds")
        slots = slots.at[new_slot].set(at, mode="drop")
        placed = jnp.where(new_slot < cap, at, n)  # the rest write `cap` at the padding
        slot_of = slot_of.at[placed].set(new_slot, mode="promise_in_bounds")
        target = jnp.where(held, slot, new_slot)
        resident = resident.at[:, target].set(rows, mode="drop")
        outside = jnp.where(target == cap, at, n)  # lost features (and the padding)
        rows = rows * jnp.where(lost, _LOSE[:, None], 1).astype(rows.dtype)
        table = _write(table, outside, rows.T)
        dropped = self.dropped_traces + jnp.sum(lost, dtype=jnp.int32)
        # -- the package's first loop, over the live traces
        next_slot = slot_of.at[next_at].get(mode="promise_in_bounds")
        w_next = jnp.where(
            next_slot < cap,
            resident[_WEIGHTS].at[next_slot].get(mode="fill", fill_value=0),
            table.at[next_at, _WEIGHTS].get(mode="promise_in_bounds"),
        )
        value_next = jnp.where(gamma == 0, 0, jnp.sum(w_next * x_next))
        delta = self._delta(reward, gamma, value_next, value_old)
        result = self._result(delta, value_old, active, x)
        # (a feature whose trace leaves keeps its slot until another feature needs it)
        member = live.at[target].set(True, mode="drop")
        learner = self._finish(
            value_next,
            gamma,
            timestep.truncated,
            reward,
            delta,
            table=table,
            resident=self._live_step(resident, member, delta, v_delta, gamma),
            slots=slots,
            slot_of=slot_of,
            dropped_traces=dropped,
        )
        return learner, result

    def _live_step(self, columns, live, delta, v_delta, gamma):
        """The package's first loop over the state `columns` (one array per field) of
        the features whose traces are `live`, the others kept; a trace at or below
        epsilon times its feature's last step-size leaves the set (is zeroed)."""
        before = SwiftTDState(*columns)
        after = self._trace_step(before, delta, v_delta, gamma)
        gone = live & (after.z <= after.last_alpha * self.epsilon)
        state = [jnp.where(live, a, b) for a, b in zip(after, before, strict=True)]
        for i in _CUT:
            state[i] = jnp.where(gone, 0, state[i])
        return jnp.stack(state)

    @property
    def _every_feature_has_a_slot(self) -> bool:
        return self.trace_capacity >= self.feature_dim

    def _learn_masked(self, timestep, at, x, next_at, x_next, reward, gamma, fresh):
        """`learn` where every feature has a slot: the same two loops, the second over
        every feature with its updates kept only where the trace is live (a feature
        is live from its activation until its trace leaves, and its trace is non-zero
        exactly then), so no set is kept and no scatter runs over it. It works on the
        table's columns (one array per field of the state), which XLA's CPU code
        handles several times faster than the rows."""
        n = self.feature_dim
        # An episode's start cuts every trace.
        columns = self.table.T * jnp.where(fresh, _KEEP, 1).astype(self.table.dtype)[:, None]
        live = columns[_Z] != 0
        # -- the package's second loop, over the active features
        active = SwiftTDState(*columns.at[:, at].get(mode="promise_in_bounds"))
        v_delta, value_old, rate, t = self._start(active, x, fresh)
        eta = self.max_step_size
        scale = eta / jnp.maximum(eta, rate)
        active = swifttd_trace_increment(
            active, x, scale, t, scale < 1, self.step_size_decay, True
        )
        columns = columns.at[:, at].set(jnp.stack(active), mode="promise_in_bounds")
        columns = columns.at[:, n].set(0)  # the padding column, which padded indices hit
        live = live.at[at].set(True).at[n].set(False)  # the active features join
        # -- the package's first loop, over the live traces
        w_next = columns[_WEIGHTS].at[next_at].get(mode="promise_in_bounds")
        value_next = jnp.where(gamma == 0, 0, jnp.sum(w_next * x_next))
        delta = self._delta(reward, gamma, value_next, value_old)
        result = self._result(delta, value_old, active, x)
        table = self._live_step(columns, live, delta, v_delta, gamma).T
        learner = self._finish(value_next, gamma, timestep.truncated, reward, delta, table=table)
        return learner, result

    def update(
        self, x: Float[Array, " n"], y: ArrayLike
    ) -> tuple["SparseSwiftTDLearner", UpdateResult]:
        """Learn `y` as a one-step target from dense features `x` (their non-zero
        entries become the active features): a convenience for `OnlineLearner`; it costs
        `O(feature_dim)`."""
        x = _checks.features(x, self.feature_dim, self.weights.dtype)
        at = jnp.nonzero(x, size=self.feature_dim, fill_value=-1)[0]
        values = x.at[at].get(mode="fill", fill_value=0)
        zero = jnp.zeros((), x.dtype)
        step = SparseTDTimeStep(at, values, _checks.scalar_target(y, x.dtype), zero, at, values)
        return self.learn(step)
