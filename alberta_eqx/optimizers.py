"""Step-size rules as modules: hyperparameters and per-parameter state in one pytree.

An optimizer is built with its hyperparameters only (`IDBD(0.05, 0.01)`); a learner
calls `init(params)` to allocate the per-parameter state shaped like its parameters,
and `step(g, c)` each example. The rules themselves live in `alberta_eqx._rules`,
shared with the optax transformations in `alberta_eqx.optax`.
"""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PyTree

from alberta_eqx import _checks, _rules
from alberta_eqx._rules import AutostepState, IDBDState, Params


class AbstractOptimizer(eqx.Module):
    """A per-parameter step-size rule for a learner.

    `init` allocates state shaped like the parameters; `step` takes the loss gradient
    `g` and curvature `c = z**2` (pytrees shaped like the parameters) and returns the
    update to add to the parameters together with the new optimizer.
    """

    @abc.abstractmethod
    def init(self, params: Params) -> "AbstractOptimizer":
        """This optimizer with its state allocated for `params` (and its
        hyperparameters cast to the parameters' floating-point dtype)."""

    @abc.abstractmethod
    def step(self, g: Params, c: Params) -> tuple[Params, "AbstractOptimizer"]:
        """One update: `(updates, new_optimizer)`."""

    @abc.abstractmethod
    def step_sizes(self, params: Params) -> Params:
        """The per-parameter step-sizes used by the latest update, shaped like `params`."""

    @property
    def normalizers(self) -> Params | None:
        """Autostep's per-parameter `v`; None for rules without one."""
        return None


class LMS(AbstractOptimizer):
    """Least mean squares with one fixed step-size: `w_i <- w_i + alpha delta x_i`.

    **Arguments:**

    - `step_size`: `alpha > 0`.
    """

    step_size: Float[Array, ""] = _checks.hyperparameter()

    def __init__(self, step_size: ArrayLike = 0.01):
        self.step_size = _checks.positive("step_size", step_size)

    def init(self, params: Params) -> "LMS":
        return _checks.cast_floating(self, _dtype(params))

    def step(self, g: Params, c: Params) -> tuple[Params, "LMS"]:
        return _rules.lms(self.step_size, g), self

    def step_sizes(self, params: Params) -> Params:
        return jax.tree.map(lambda p: jnp.full_like(p, self.step_size), params)


class IDBD(AbstractOptimizer):
    """Incremental Delta-Bar-Delta (Sutton 1992, Figure 2): a step-size per weight,
    `alpha_i = exp(beta_i)`, meta-learned by gradient descent.

    **Arguments:**

    - `initial_step_size`: every `alpha_i` at the start (`beta_i = ln` of it).
    - `meta_step_size`: `theta >= 0`, the step-size of the step-sizes
      (`0` makes IDBD exactly LMS with `initial_step_size`).
    """

    initial_step_size: Float[Array, ""] = _checks.hyperparameter()
    meta_step_size: Float[Array, ""] = _checks.hyperparameter()
    state: IDBDState | None

    def __init__(self, initial_step_size: ArrayLike = 0.01, meta_step_size: ArrayLike = 0.01):
        self.initial_step_size = _checks.positive("initial_step_size", initial_step_size)
        self.meta_step_size = _checks.non_negative("meta_step_size", meta_step_size)
        self.state = None

    def init(self, params: Params) -> "IDBD":
        self = _checks.cast_floating(self, _dtype(params))
        state = _rules.idbd_init(params, self.initial_step_size)
        return eqx.tree_at(lambda o: o.state, self, state, is_leaf=lambda x: x is None)

    def step(self, g: Params, c: Params) -> tuple[Params, "IDBD"]:
        updates, state = _rules.idbd(_initialised(self.state), g, c, self.meta_step_size)
        return updates, eqx.tree_at(lambda o: o.state, self, state)

    def step_sizes(self, params: Params) -> Params:
        return _initialised(self.state).step_size


class Autostep(AbstractOptimizer):
    """Autostep (Mahmood, Sutton, Degris and Pilarski 2012, Table 1): IDBD with a
    self-regulated normaliser `v_i` of the meta-gradient and an overshoot guard `M`
    over all weights; its step-size trajectory is invariant to the target's scale.

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
        meta_step_size: ArrayLike = 0.01,
        tau: ArrayLike = 1e4,
    ):
        self.initial_step_size = _checks.positive("initial_step_size", initial_step_size)
        self.meta_step_size = _checks.positive("meta_step_size", meta_step_size)
        self.tau = _checks.positive("tau", tau)
        self.state = None

    def init(self, params: Params) -> "Autostep":
        self = _checks.cast_floating(self, _dtype(params))
        state = _rules.autostep_init(params, self.initial_step_size)
        return eqx.tree_at(lambda o: o.state, self, state, is_leaf=lambda x: x is None)

    def step(self, g: Params, c: Params) -> tuple[Params, "Autostep"]:
        updates, state = _rules.autostep(
            _initialised(self.state), g, c, self.meta_step_size, self.tau
        )
        return updates, eqx.tree_at(lambda o: o.state, self, state)

    def step_sizes(self, params: Params) -> Params:
        return _initialised(self.state).step_size

    @property
    def normalizers(self) -> Params:
        return _initialised(self.state).normalizer


def _initialised(state: PyTree | None) -> PyTree:
    if state is None:
        raise ValueError(
            "this optimizer has no state yet: call optimizer.init(params), or pass it "
            "to a learner, which does"
        )
    return state


def _dtype(params: Params):
    return jnp.result_type(*jax.tree.leaves(params))
