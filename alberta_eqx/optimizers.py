"""Step-size rules as modules: hyperparameters and per-parameter state in one pytree.

An optimizer is built with its hyperparameters only (`IDBD(0.05)`); a learner calls
`init(params)` to allocate the per-parameter state shaped like its parameters, and
`step(gradient, curvature, ...)` each example or transition. One hierarchy serves
supervised and temporal-difference learners alike: a TD learner passes the TD error's
meta-gradient (`meta_gradient`), which makes `IDBD` TD-IDBD and `Autostep`
AutoTDIDBD (`alberta_eqx.td`). The rules themselves live in `alberta_eqx._rules`,
shared with the optax transformations in `alberta_eqx.optax`.
"""

import abc
from typing import TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PyTree

from alberta_eqx import _checks, _rules
from alberta_eqx._checks import ArrayLike
from alberta_eqx._rules import AdaptiveObGDState, AutostepState, IDBDState, Params, TraceState


class AbstractOptimizer(eqx.Module):
    """A per-parameter step-size rule for a learner.

    `init` allocates state shaped like the parameters; `step` takes the loss gradient
    and the curvature (pytrees shaped like the parameters), and what else the learner
    knows of the step, and returns the update to add to the parameters together with
    the new optimizer. Each rule reads the arguments it needs: LMS the gradient; IDBD
    and Autostep also the curvature and the meta-gradient; ObGD and AdaptiveObGD the
    error, the prediction gradient and the trace decay.
    """

    @abc.abstractmethod
    def init(self, params: Params) -> "AbstractOptimizer":
        """This optimizer with its state allocated for `params` (and its
        hyperparameters cast to the parameters' floating-point dtype)."""

    @abc.abstractmethod
    def step(
        self,
        gradient: Params,
        curvature: Params,
        *,
        meta_gradient: Params | None = None,
        error: Float[Array, ""] | None = None,
        prediction_gradient: Params | None = None,
        trace_decay: ArrayLike = 0.0,
    ) -> tuple[Params, "AbstractOptimizer"]:
        """One update: `(updates, new_optimizer)`.

        **Arguments:**

        - `gradient`: the loss gradient `g` that moves the weights: `-delta z` in
          supervised learning (`z = dy/dtheta`), `-delta e` in TD (`e` the
          eligibility trace).
        - `curvature`: `c`, `z**2` in supervised learning, `d e` in TD
          (`alberta_eqx.td`).
        - `meta_gradient`: the gradient the step-sizes descend when it is not
          `gradient` (TD-IDBD's `-delta d`); None for `gradient` itself.
        - `error`: the error `delta` (a scalar), for the rules whose trace needs it
          apart from the gradient (ObGD, AdaptiveObGD, `ObGDBounding`).
        - `prediction_gradient`: `z = dy/dtheta`, for the same rules.
        - `trace_decay`: `gamma lambda`, the factor their trace decays by (0 for
          supervised learning).
        """

    @abc.abstractmethod
    def step_sizes(self, params: Params) -> Params:
        """The per-parameter step-sizes used by the latest update, shaped like `params`."""

    @property
    @abc.abstractmethod
    def step_size_normalizer(self) -> Params | None:
        """Autostep's per-parameter `v`, the normaliser of its meta-gradient; None for
        rules without one."""


class LMS(AbstractOptimizer):
    """Least mean squares with one fixed step-size: `w_i <- w_i + alpha delta x_i`
    (TD(lambda)'s `w_i <- w_i + alpha delta e_i` in a TD learner).

    ```python
    import jax.numpy as jnp
    from alberta_eqx import LMS, LinearLearner

    learner = LinearLearner(3, LMS(0.1), use_bias=False)
    learner, _ = learner.update(jnp.array([1.0, 0.5, -1.0]), 2.0)
    learner.weights[1]  # about 0.1 = alpha delta x_1 = 0.1 * 2.0 * 0.5
    ```

    **Arguments:**

    - `step_size`: `alpha > 0`.
    """

    step_size: Float[Array, ""] = _checks.hyperparameter()

    def __init__(self, step_size: ArrayLike = 0.01):
        self.step_size = _checks.positive("step_size", step_size)

    def init(self, params: Params) -> "LMS":
        return _checks.cast_floating(self, _dtype(params))

    def step(
        self,
        gradient: Params,
        curvature: Params,
        *,
        meta_gradient: Params | None = None,
        error: Float[Array, ""] | None = None,
        prediction_gradient: Params | None = None,
        trace_decay: ArrayLike = 0.0,
    ) -> tuple[Params, "LMS"]:
        return _rules.lms(self.step_size, gradient), self

    def step_sizes(self, params: Params) -> Params:
        return jax.tree.map(lambda p: jnp.full_like(p, self.step_size), params)

    @property
    def step_size_normalizer(self) -> None:
        return None


class _AbstractMetaStepSize(AbstractOptimizer):
    """What IDBD and Autostep share: a step-size per parameter, starting at
    `initial_step_size` and meta-learned at `meta_step_size`, kept in the rule's
    state (whose `step_size` reads it)."""

    initial_step_size: eqx.AbstractVar[Float[Array, ""]]
    meta_step_size: eqx.AbstractVar[Float[Array, ""]]
    state: eqx.AbstractVar[PyTree | None]

    @abc.abstractmethod
    def _init_state(self, params: Params) -> PyTree:
        """The rule's state for `params`, before the first step."""

    @abc.abstractmethod
    def _rule(
        self, state: PyTree, g: Params, c: Params, m: Params | None
    ) -> tuple[Params, PyTree]:
        """One step of the rule (`_rules.idbd`, `_rules.autostep`) with this
        optimizer's hyperparameters: `(updates, new_state)`."""

    def init(self, params: Params) -> "_AbstractMetaStepSize":
        return _init_with_state(self, params)

    def step(
        self,
        gradient: Params,
        curvature: Params,
        *,
        meta_gradient: Params | None = None,
        error: Float[Array, ""] | None = None,
        prediction_gradient: Params | None = None,
        trace_decay: ArrayLike = 0.0,
    ) -> tuple[Params, "_AbstractMetaStepSize"]:
        updates, state = self._rule(_initialised(self.state), gradient, curvature, meta_gradient)
        return updates, eqx.tree_at(lambda o: o.state, self, state)

    def step_sizes(self, params: Params) -> Params:
        return _initialised(self.state).step_size


class IDBD(_AbstractMetaStepSize):
    """Incremental Delta-Bar-Delta (Sutton 1992, Figure 2): a step-size per weight,
    `alpha_i = exp(beta_i)`, meta-learned by gradient descent. In a TD learner, with
    the TD error's meta-gradient, it is TD-IDBD (Kearney et al. 2019, Algorithms 3
    and 4; `alberta_eqx.td`).

    ```python
    import jax.numpy as jnp
    from alberta_eqx import IDBD, LinearLearner

    learner = LinearLearner(3, IDBD(0.05, meta_step_size=0.01))
    x = jnp.array([1.0, 0.5, -1.0])
    for _ in range(2):
        learner, result = learner.update(x, 2.0)
    # step 1: delta = 2, h = 0, so alpha_i stays 0.05 and h_i becomes 0.05 * 2 * x_i;
    # step 2: delta = 2 - 0.1 * 3.25 = 1.675, and beta_0 grows by theta delta x_0 h_0
    learner.step_sizes[0]  # about 0.050084 = 0.05 * exp(0.01 * 1.675 * 0.1)
    ```

    **Arguments:**

    - `initial_step_size`: every `alpha_i` at the start (`beta_i = ln` of it).
    - `meta_step_size`: `theta >= 0`, the step-size of the step-sizes
      (`0` makes IDBD exactly LMS with `initial_step_size`).
    """

    initial_step_size: Float[Array, ""] = _checks.hyperparameter()
    meta_step_size: Float[Array, ""] = _checks.hyperparameter()
    state: IDBDState | None

    def __init__(self, initial_step_size: ArrayLike = 0.01, *, meta_step_size: ArrayLike = 0.01):
        self.initial_step_size = _checks.positive("initial_step_size", initial_step_size)
        self.meta_step_size = _checks.non_negative("meta_step_size", meta_step_size)
        self.state = None

    def _init_state(self, params: Params) -> IDBDState:
        return _rules.idbd_init(params, self.initial_step_size)

    def _rule(
        self, state: IDBDState, g: Params, c: Params, m: Params | None
    ) -> tuple[Params, IDBDState]:
        return _rules.idbd(state, g, c, self.meta_step_size, m)

    @property
    def step_size_normalizer(self) -> None:
        return None


class Autostep(_AbstractMetaStepSize):
    """Autostep (Mahmood, Sutton, Degris and Pilarski 2012, Table 1): IDBD with a
    self-regulated normaliser `v_i` of the meta-gradient and an overshoot guard `M`
    over all weights; its step-size trajectory is invariant to the target's scale.
    In a TD learner, with the TD error's meta-gradient, it is AutoTDIDBD
    (`alberta_eqx.td`).

    ```python
    import jax.numpy as jnp
    from alberta_eqx import Autostep, LinearLearner

    learner = LinearLearner(3, Autostep(0.6, meta_step_size=0.01))
    x = jnp.array([1.0, 0.5, -1.0])
    learner, _ = learner.update(x, 2.0)
    # sum_i alpha_i x_i^2 = 0.6 * 3.25 > 1 would overshoot: the guard M divides every
    # alpha_i by 1.95, and the step lands on the target
    learner.predict(x)  # about 2.0
    ```

    **Arguments:**

    - `initial_step_size`: every `alpha_i` at the start (the paper uses `0.1 / n`
      on its idealised problems).
    - `meta_step_size`: `mu > 0` (suggested `1e-2`).
    - `tau`: `tau > 0`, the time scale of `v_i`'s decay (suggested `1e4`).
    """

    initial_step_size: Float[Array, ""] = _checks.hyperparameter()
    meta_step_size: Float[Array, ""] = _checks.hyperparameter()
    tau: Float[Array, ""] = _checks.hyperparameter()
    state: AutostepState | None

    def __init__(
        self,
        initial_step_size: ArrayLike = 0.01,
        *,
        meta_step_size: ArrayLike = 0.01,
        tau: ArrayLike = 1e4,
    ):
        self.initial_step_size = _checks.positive("initial_step_size", initial_step_size)
        self.meta_step_size = _checks.positive("meta_step_size", meta_step_size)
        self.tau = _checks.positive("tau", tau)
        self.state = None

    def _init_state(self, params: Params) -> AutostepState:
        return _rules.autostep_init(params, self.initial_step_size)

    def _rule(
        self, state: AutostepState, g: Params, c: Params, m: Params | None
    ) -> tuple[Params, AutostepState]:
        return _rules.autostep(state, g, c, self.meta_step_size, self.tau, m)

    @property
    def step_size_normalizer(self) -> Params:
        return _initialised(self.state).step_size_normalizer


class _AbstractObGD(AbstractOptimizer):
    """ObGD's module shape, shared by `ObGD` and `AdaptiveObGD`: a trace state, one
    bounded step-size `alpha_eff` per update. They read the error, the prediction
    gradient and the trace decay rather than the gradient (the trace accumulates the
    prediction gradient, and the current error weights the whole trace). Subclasses
    name the state's initialiser and the rule (`_rules.obgd`, `_rules.adaptive_obgd`)."""

    step_size: eqx.AbstractVar[Float[Array, ""]]
    effective_step_size: eqx.AbstractVar[Float[Array, ""]]
    state: eqx.AbstractVar[PyTree | None]

    @abc.abstractmethod
    def _init_state(self, params: Params) -> PyTree:
        """The rule's state for `params`, before the first step."""

    @abc.abstractmethod
    def _rule(
        self, state: PyTree, error: Float[Array, ""], z: Params, decay: ArrayLike
    ) -> tuple[Params, PyTree, Float[Array, ""]]:
        """One step of the rule: `(updates, new_state, alpha_eff / alpha)`."""

    def init(self, params: Params) -> "_AbstractObGD":
        return _init_with_state(self, params)

    def step(
        self,
        gradient: Params,
        curvature: Params,
        *,
        meta_gradient: Params | None = None,
        error: Float[Array, ""] | None = None,
        prediction_gradient: Params | None = None,
        trace_decay: ArrayLike = 0.0,
    ) -> tuple[Params, "_AbstractObGD"]:
        error, prediction_gradient = _error_arguments(self, error, prediction_gradient)
        updates, state, scale = self._rule(
            _initialised(self.state), error, prediction_gradient, trace_decay
        )
        new = eqx.tree_at(
            lambda o: (o.state, o.effective_step_size), self, (state, scale * self.step_size)
        )
        return updates, new

    def step_sizes(self, params: Params) -> Params:
        """`alpha_eff` of the latest update, for every parameter (for `AdaptiveObGD`,
        before the division by `sqrt(v_hat + eps)`)."""
        return jax.tree.map(lambda p: jnp.full_like(p, self.effective_step_size), params)

    @property
    def step_size_normalizer(self) -> None:
        return None


class ObGD(_AbstractObGD):
    """ObGD, observation-bounded gradient descent (Elsayed, Vasan and Mahmood 2024,
    Algorithm 3): `z <- gamma lambda z + dy/dtheta`, and
    `w <- w + alpha_eff delta z` with `alpha_eff = alpha / max(alpha kappa
    max(|delta|, 1) ||z||_1, 1)` (one L1 norm over all the parameters, the bias
    included). In a `LinearLearner` (supervised, no trace) this is LMS whose step
    shrinks whenever one update would overshoot the target.

    ```python
    import jax.numpy as jnp
    from alberta_eqx import LinearLearner, ObGD

    learner = LinearLearner(3, ObGD(1.0, kappa=2.0))
    x = jnp.array([1.0, 0.5, -1.0])
    learner, _ = learner.update(x, 2.0)
    # alpha_eff = 1 / max(alpha kappa max(|delta|, 1) ||z||_1, 1) = 1 / (2 * 2 * 3.5)
    learner.predict(x)  # about 0.464 = 2.0 * 3.25 / 14
    ```

    **Arguments:**

    - `step_size`: `alpha > 0` (the paper's default 1.0).
    - `kappa`: `kappa > 0`, the bound's strength (default 2.0).
    """

    step_size: Float[Array, ""] = _checks.hyperparameter()
    kappa: Float[Array, ""] = _checks.hyperparameter()
    effective_step_size: Float[Array, ""]
    state: TraceState | None

    def __init__(self, step_size: ArrayLike = 1.0, *, kappa: ArrayLike = 2.0):
        self.step_size = _checks.positive("step_size", step_size)
        self.kappa = _checks.positive("kappa", kappa)
        self.effective_step_size = self.step_size
        self.state = None

    def _init_state(self, params: Params) -> TraceState:
        return _rules.trace_init(params)

    def _rule(
        self, state: TraceState, error: Float[Array, ""], z: Params, decay: ArrayLike
    ) -> tuple[Params, TraceState, Float[Array, ""]]:
        return _rules.obgd(state, error, z, decay, self.step_size, self.kappa)


class AdaptiveObGD(_AbstractObGD):
    """AdaptiveObGD (Elsayed, Vasan and Mahmood 2024, Appendix B): ObGD on the trace
    divided by `sqrt(v_hat + eps)`, with `v` the bias-corrected running second moment
    of `delta z` (`alberta_eqx._rules.adaptive_obgd`).

    ```python
    import jax.numpy as jnp
    from alberta_eqx import AdaptiveObGD, LinearLearner

    learner = LinearLearner(3, AdaptiveObGD(1.0, kappa=2.0))
    x = jnp.array([1.0, 0.5, -1.0])
    learner, _ = learner.update(x, 2.0)
    # the first step's v_hat is (delta z)**2: each weight moves by alpha_eff sign(delta z_i),
    # alpha_eff = 1 / (kappa max(|delta|, 1) ||z / sqrt(v_hat)||_1) = 1 / (2 * 2 * 4 / 2)
    learner.optimizer.effective_step_size  # about 0.125
    learner.predict(x)  # about 0.4375 = 0.125 * (|1| + |0.5| + |-1| + 1)
    ```

    **Arguments:**

    - `step_size`: `alpha > 0` (default 1.0).
    - `kappa`: `kappa > 0` (default 2.0).
    - `beta2`: the second moment's decay, in `[0, 1)` (default 0.999).
    - `eps`: `eps > 0` (default `1e-8`).
    """

    step_size: Float[Array, ""] = _checks.hyperparameter()
    kappa: Float[Array, ""] = _checks.hyperparameter()
    beta2: Float[Array, ""] = _checks.hyperparameter()
    eps: Float[Array, ""] = _checks.hyperparameter()
    effective_step_size: Float[Array, ""]
    state: AdaptiveObGDState | None

    def __init__(
        self,
        step_size: ArrayLike = 1.0,
        *,
        kappa: ArrayLike = 2.0,
        beta2: ArrayLike = 0.999,
        eps: ArrayLike = 1e-8,
    ):
        self.step_size = _checks.positive("step_size", step_size)
        self.kappa = _checks.positive("kappa", kappa)
        self.beta2 = _checks.unit_interval_open("beta2", beta2)
        self.eps = _checks.positive("eps", eps)
        self.effective_step_size = self.step_size
        self.state = None

    def _init_state(self, params: Params) -> AdaptiveObGDState:
        return _rules.adaptive_obgd_init(params)

    def _rule(
        self, state: AdaptiveObGDState, error: Float[Array, ""], z: Params, decay: ArrayLike
    ) -> tuple[Params, AdaptiveObGDState, Float[Array, ""]]:
        return _rules.adaptive_obgd(
            state, error, z, decay, self.step_size, self.kappa, self.beta2, self.eps
        )


class ObGDBounding(AbstractOptimizer):
    """The ObGD bound around any other rule (0.17's `ObGDBounding`): the inner rule's
    update `u` times `1 / max(kappa max(|delta|, 1) ||u / delta||_1, 1)`
    (`alberta_eqx._rules.obgd_bound`, one L1 norm over all the parameters).
    `ObGDBounding(LMS(alpha), kappa)` is ObGD without a trace.

    ```python
    import jax.numpy as jnp
    from alberta_eqx import IDBD, LMS, LinearLearner, ObGDBounding

    learner = LinearLearner(3, ObGDBounding(LMS(1.0), kappa=2.0))  # ObGD without a trace
    x = jnp.array([1.0, 0.5, -1.0])
    learner, _ = learner.update(x, 2.0)
    learner.predict(x)  # about 0.464, as ObGD's: LMS's 2.0 * 3.25 times 1 / (2 * 2 * 3.5)
    bounded_idbd = LinearLearner(3, ObGDBounding(IDBD(), kappa=2.0))  # any rule inside
    ```

    **Arguments:**

    - `optimizer`: the inner rule (`LMS`, `IDBD`, `Autostep`, ...).
    - `kappa`: `kappa > 0` (default 2.0).
    """

    optimizer: AbstractOptimizer
    kappa: Float[Array, ""] = _checks.hyperparameter()
    effective_step_size: Params | None

    def __init__(self, optimizer: AbstractOptimizer, *, kappa: ArrayLike = 2.0):
        if not isinstance(optimizer, AbstractOptimizer):
            raise TypeError(
                f"optimizer must be an alberta_eqx optimizer, got {type(optimizer).__name__}"
            )
        self.optimizer = optimizer
        self.kappa = _checks.positive("kappa", kappa)
        self.effective_step_size = None

    def init(self, params: Params) -> "ObGDBounding":
        self = _checks.cast_floating(self, _dtype(params))
        inner = self.optimizer.init(params)
        return eqx.tree_at(
            lambda o: (o.optimizer, o.effective_step_size),
            self,
            (inner, inner.step_sizes(params)),
            is_leaf=lambda x: x is None,
        )

    def step(
        self,
        gradient: Params,
        curvature: Params,
        *,
        meta_gradient: Params | None = None,
        error: Float[Array, ""] | None = None,
        prediction_gradient: Params | None = None,
        trace_decay: ArrayLike = 0.0,
    ) -> tuple[Params, "ObGDBounding"]:
        error, prediction_gradient = _error_arguments(self, error, prediction_gradient)
        updates, inner = self.optimizer.step(
            gradient,
            curvature,
            meta_gradient=meta_gradient,
            error=error,
            prediction_gradient=prediction_gradient,
            trace_decay=trace_decay,
        )
        updates, scale = _rules.obgd_bound(updates, error, self.kappa)
        # The step-sizes applied: the inner rule's, times the bound's scale.
        effective = jax.tree.map(lambda a: scale * a, inner.step_sizes(gradient))
        return updates, eqx.tree_at(
            lambda o: (o.optimizer, o.effective_step_size), self, (inner, effective)
        )

    def step_sizes(self, params: Params) -> Params:
        """The inner rule's step-sizes times the latest bound's scale."""
        return _initialised(self.effective_step_size)

    @property
    def step_size_normalizer(self) -> Params | None:
        return self.optimizer.step_size_normalizer


_Optimizer = TypeVar("_Optimizer", bound=_AbstractMetaStepSize | _AbstractObGD)


def _init_with_state(optimizer: _Optimizer, params: Params) -> _Optimizer:
    """`optimizer` cast to the parameters' dtype, with its `state` field (None
    before `init`) set to its rule's state for `params`."""
    optimizer = _checks.cast_floating(optimizer, _dtype(params))
    state = optimizer._init_state(params)
    return eqx.tree_at(lambda o: o.state, optimizer, state, is_leaf=lambda x: x is None)


def _error_arguments(
    optimizer: AbstractOptimizer,
    error: Float[Array, ""] | None,
    prediction_gradient: Params | None,
) -> tuple[Float[Array, ""], Params]:
    """The error and the prediction gradient, which ObGD's rules need; raises naming
    them when a caller passed only the gradient and the curvature."""
    if error is None or prediction_gradient is None:
        raise ValueError(
            f"{type(optimizer).__name__} needs the error and the prediction gradient, not "
            "only the gradient and the curvature: call step(gradient, curvature, "
            "error=..., prediction_gradient=...), as the learners do"
        )
    return error, prediction_gradient


def _initialised(state: PyTree | None) -> PyTree:
    if state is None:
        raise ValueError(
            "this optimizer has no state yet: call optimizer.init(params), or pass it "
            "to a learner, which does"
        )
    return state


def _dtype(params: Params):
    return jnp.result_type(*jax.tree.leaves(params))
