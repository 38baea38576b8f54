"""Unit resets: the replacement of hidden units of an MLP by freshly initialised ones,
written once for every learner of a network. A rule (`ContinualBackprop`, `ReDo`)
picks the units; `reset_units` re-draws their incoming weights as at initialisation,
sets their outgoing weights to 0, and puts every piece of the optimizer's state of
those weights back at its initial value (the learners do the same to their traces).

Everything works on fixed shapes (masks over units), so it runs inside the runners'
compiled scans.
"""

import abc
from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray, PyTree

from alberta_eqx import _checks
from alberta_eqx._checks import ArrayLike
from alberta_eqx.nn import MLP
from alberta_eqx.nonlinear._plasticity import dormancy_scores

LayerMasks = list[tuple[Bool[Array, "o i"], Bool[Array, " o"]]]


class AbstractUnitReset(eqx.Module):
    """A rule that replaces hidden units of an `alberta_eqx.nn.MLP`: its
    hyperparameters, and after `init` its per-unit state and the key its
    re-initialisations draw from. Pass one to a learner's `unit_reset=` (with
    `key=`): the learner calls `init` with its hidden sizes and, after every gradient
    step, `reset_units`."""

    key: eqx.AbstractVar[PRNGKeyArray | None]

    @abc.abstractmethod
    def init(
        self, hidden_sizes: Sequence[int], key: PRNGKeyArray, dtype=None
    ) -> "AbstractUnitReset":
        """This rule with fresh state for hidden layers of `hidden_sizes` units, and
        the key its re-initialisations draw from."""

    @abc.abstractmethod
    def select(
        self,
        hidden: Sequence[Float[Array, " _"]],
        outgoing: Sequence[Float[Array, "_ _"]],
    ) -> tuple["AbstractUnitReset", tuple[Bool[Array, " _"], ...]]:
        """One step of the rule's bookkeeping from this step's activations
        `hidden[l]` and the weights `outgoing[l]` leaving layer `l`: the new rule and,
        per hidden layer, the mask of the units to replace now."""

    def step(
        self, model: MLP, hidden: Sequence[Float[Array, " _"]]
    ) -> tuple["AbstractUnitReset", MLP, LayerMasks]:
        """`select` on this step's activations `hidden` (before the gradient step) and
        the network's current weights, then the chosen units re-initialised
        (`reinitialize_units`). Returns the rule, the network, and per linear layer
        the masks `(weight, bias)` of the weights that changed."""
        if self.key is None:
            raise ValueError(f"{type(self).__name__} has no state yet: call init (a learner does)")
        this, replace = self.select(hidden, [layer.weight for layer in model.layers[1:]])
        key, subkey = jax.random.split(self.key)
        this = eqx.tree_at(lambda c: c.key, this, key)
        model, masks = reinitialize_units(model, replace, subkey)
        return this, model, masks


def check_unit_reset(unit_reset: object, model: object, key: object) -> None:
    """Refuse a learner's `unit_reset` that cannot work, naming the argument."""
    if not isinstance(unit_reset, AbstractUnitReset):
        raise TypeError(
            f"unit_reset must be a ContinualBackprop or ReDo, got {type(unit_reset).__name__}"
        )
    if not isinstance(model, MLP):
        raise TypeError(
            "unit_reset needs model to be an alberta_eqx.nn.MLP (its hidden activations), "
            f"got {type(model).__name__}"
        )
    if not model.hidden_sizes:
        raise ValueError("unit_reset needs hidden units: model has no hidden layer")
    if key is None:
        raise ValueError("unit_reset draws new units: pass key=")


def reinitialize_units(
    model: MLP, replace: Sequence[Bool[Array, " _"]], key: PRNGKeyArray
) -> tuple[MLP, LayerMasks]:
    """The network with the hidden units `replace[l]` (a mask per hidden layer) reset:
    their incoming weights and biases drawn again as `model` was drawn (its
    `sparsity` included), their outgoing weights set to 0 (so the network's output
    does not change). Returns the network and, per linear layer, the masks
    `(weight, bias)` of the parameters that changed.

    **Arguments:**

    - `model`: an `alberta_eqx.nn.MLP`.
    - `replace`: one boolean mask per hidden layer.
    - `key`: the draw of the fresh weights.
    """
    dtype = model.layers[0].weight.dtype

    def draw(key):  # a network drawn as this one was; only replaced rows are used
        fresh = MLP(
            model.in_size,
            model.out_size,
            model.hidden_sizes,
            key=key,
            activation=model.activation,
            layer_norm=model.norms is not None,
            sparsity=model.sparsity,
            dtype=dtype,
        )
        return [(lay.weight, b) for lay, b in zip(fresh.layers, fresh.biases, strict=True)]

    old = [(lay.weight, b) for lay, b in zip(model.layers, model.biases, strict=True)]
    fresh = jax.lax.cond(jnp.any(jnp.concatenate(replace)), draw, lambda _: old, key)
    params, masks = [], []
    for i, ((w, b), (fw, fb)) in enumerate(zip(old, fresh, strict=True)):
        w_mask = jnp.zeros(w.shape, bool)
        b_mask = jnp.zeros(b.shape, bool)
        if i < len(replace):  # this layer's replaced units: incoming weights re-drawn
            w = jnp.where(replace[i][:, None], fw, w)
            b = jnp.where(replace[i], fb, b)
            w_mask, b_mask = w_mask | replace[i][:, None], b_mask | replace[i]
        if i > 0:  # the previous layer's replaced units: outgoing weights set to 0
            w = jnp.where(replace[i - 1][None, :], 0, w)
            w_mask = w_mask | replace[i - 1][None, :]
        params.append((w, b))
        masks.append((w_mask, b_mask))
    model = eqx.tree_at(
        lambda m: [a for layer in m.layers for a in (layer.weight, layer.bias)],
        model,
        [a for wb in params for a in wb],
    )
    return model, masks


def _is_masked(node: object) -> bool:
    return isinstance(node, optax.MaskedNode)


def reset_where(
    state: PyTree, fresh: PyTree, params: PyTree, mask: PyTree[Bool[Array, "..."]]
) -> PyTree:
    """An optimizer state with the entries of replaced weights back at their initial
    values: in every part of `state` shaped like `params` (a transformation's
    per-parameter moments, step-sizes, traces, L2 Init's initial weights), take
    `fresh`'s value (the transformation's `init` on the new parameters) where `mask`
    (shaped like `params`) is True. A part of `optax.masked` / `optax.partition`
    (`optax.MaskedNode` where a parameter is not its own) counts as shaped like
    `params`. Parts not shaped like the parameters (step counts, keys,
    hyperparameters) are kept."""
    treedef = jax.tree.structure(params)
    shapes = [jnp.shape(p) for p in jax.tree.leaves(params)]

    def is_params(node) -> bool:
        leaves, node_def = jax.tree.flatten(node, is_leaf=_is_masked)
        return node_def == treedef and all(
            _is_masked(x) or jnp.shape(x) == s for x, s in zip(leaves, shapes, strict=True)
        )

    def reset(s, f):
        if not is_params(s):
            return s
        return jax.tree.map(
            lambda a, b, m: a if _is_masked(a) else jnp.where(m, b, a),
            s,
            f,
            mask,
            is_leaf=_is_masked,
        )

    return jax.tree.map(reset, state, fresh, is_leaf=is_params)


def reset_units(
    unit_reset: AbstractUnitReset,
    model: MLP,
    hidden: Sequence[Float[Array, " _"]],
    opt_state: PyTree,
    init: Callable[[PyTree], PyTree],
    layout: Callable[[PyTree], PyTree] = lambda tree: tree,
) -> tuple[AbstractUnitReset, MLP, PyTree, PyTree[Bool[Array, "..."]]]:
    """One step of a unit-reset rule on a network and its optimizer's state, after the
    gradient step: the rule's bookkeeping on this step's activations, the chosen
    units re-initialised (`reinitialize_units`), and every part of the optimizer's
    state of the changed weights reset to its initial value (`reset_where`, with
    `init` applied to the new parameters).

    **Arguments:**

    - `unit_reset`: the rule, after `init`.
    - `model`: the network after the gradient step.
    - `hidden`: its hidden activations this step, before the gradient step
      (`model.forward`'s).
    - `opt_state`: the optimizer's state for `model`'s parameters.
    - `init`: the optimizer's `init`.
    - `layout`: maps a tree shaped like the parameters to the layout the optimizer
      sees (the identity; a ravel into one vector for `MLPLearner(flatten=True)`).

    **Returns:** the rule, the network, the optimizer's state, and the mask of the
    changed parameters (shaped like `eqx.filter(model, eqx.is_inexact_array)`), for
    the caller's traces.
    """
    unit_reset, model, masks = unit_reset.step(model, hidden)
    params = eqx.filter(model, eqx.is_inexact_array)
    mask = jax.tree.map(lambda p: jnp.zeros(p.shape, bool), params)
    mask = eqx.tree_at(
        lambda m: [a for layer in m.layers for a in (layer.weight, layer.bias)],
        mask,
        [a for wb in masks for a in wb],
    )
    dtype = model.layers[0].weight.dtype
    flat_mask = layout(jax.tree.map(lambda m: m.astype(dtype), mask))
    flat_mask = jax.tree.map(lambda m: m != 0, flat_mask)
    opt_state = reset_where(opt_state, init(layout(params)), layout(params), flat_mask)
    return unit_reset, model, opt_state, mask


class ReDo(AbstractUnitReset):
    """ReDo, recycling dormant units (Sokar, Agarwal, Castro and Evci 2023): every
    `period` steps, each hidden unit whose dormancy score

        s_i = E|h_i| / ((1/H) sum_k E|h_k|)                  (their Definition 3.1)

    is at most `tau` is reset: its incoming weights drawn again as at
    initialisation, its outgoing weights set to 0 (the authors' "zero" outgoing
    initialisation), and the optimizer's state of those weights reset.

    Online, one example per step, the expectation is the mean of `|h_i|` over the
    `period` examples since the last check (the authors take it over the batch at the
    reset step); when every unit of a layer was silent all are dormant (the
    authors' `score / (mean + 1e-9)` gives the same).

    ```python
    import jax
    import jax.numpy as jnp
    import optax
    from alberta_eqx import MLPLearner, ReDo
    from alberta_eqx.nn import MLP

    model = MLP(3, "scalar", (8,), key=jax.random.key(0))
    redo = ReDo(tau=0.1, period=1000)  # every 1,000 steps, reset the units with s_i <= 0.1
    learner = MLPLearner(model, optax.sgd(0.01), unit_reset=redo, key=jax.random.key(1))
    learner, _ = learner.update(jnp.array([1.0, 0.5, -1.0]), 2.0)
    learner.unit_reset.activity  # per hidden layer, the sum of |h_i| since the last check
    ```

    **Arguments:**

    - `tau`: `tau >= 0`, the dormancy threshold (the paper's 0.1 for ReDo, 0 for the
      strictly dead units).
    - `period`: `F >= 1`, the steps between checks (the paper's 1,000 gradient steps).
    """

    tau: Float[Array, ""]
    period: int = eqx.field(static=True)
    activity: tuple[Float[Array, " _"], ...] | None
    count: Int[Array, ""] | None
    key: PRNGKeyArray | None

    def __init__(self, tau: ArrayLike = 0.1, period: int = 1000):
        self.tau = _checks.non_negative("tau", tau)
        self.period = _checks.positive_int("period", period)
        self.activity = self.count = self.key = None

    def init(self, hidden_sizes: Sequence[int], key: PRNGKeyArray, dtype=None) -> "ReDo":
        dtype = dtype or _checks.default_float()
        this = _checks.cast_floating(self, dtype)
        state = (tuple(jnp.zeros(n, dtype) for n in hidden_sizes), jnp.zeros((), jnp.int32), key)
        return eqx.tree_at(
            lambda r: (r.activity, r.count, r.key), this, state, is_leaf=lambda x: x is None
        )

    def select(
        self,
        hidden: Sequence[Float[Array, " _"]],
        outgoing: Sequence[Float[Array, "_ _"]],
    ) -> tuple["ReDo", tuple[Bool[Array, " _"], ...]]:
        """Add `|h|` to each layer's activity; every `period` steps, the mask of the
        tau-dormant units (the activity reset to 0). `outgoing` is not used."""
        del outgoing
        if self.activity is None or self.count is None:
            raise ValueError("ReDo has no state yet: call init (a learner does)")
        count = self.count + 1
        check = count == self.period
        activity, masks = [], []
        for total, h in zip(self.activity, hidden, strict=True):
            total = total + jnp.abs(h)
            masks.append(check & (dormancy_scores(total[None] / self.period) <= self.tau))
            activity.append(jnp.where(check, 0, total))
        new = eqx.tree_at(
            lambda r: (r.activity, r.count),
            self,
            (tuple(activity), jnp.where(check, 0, count)),
        )
        return new, tuple(masks)
