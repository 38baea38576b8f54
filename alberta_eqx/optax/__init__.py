"""IDBD, Autostep and LMS as optax gradient transformations, for any parameter pytree.

    tx = optax.chain(optax.clip_by_global_norm(1.0), alberta_eqx.optax.autostep())
    state = tx.init(params)
    updates, state = tx.update(grads, state, params, curvature=z_squared)
    params = optax.apply_updates(params, updates)

`grads` is the loss gradient `g = dL/dtheta`, as optax always passes it. The meta-rules
also need the curvature `c = z**2`, the squared gradient of the *prediction* with
respect to each parameter (ALGORITHMS.md, "on any parameter pytree"): pass it as the
extra keyword argument `curvature`, a pytree shaped like the parameters. For a linear
model `z = x` (and `1` for a bias), and the transformations then equal the papers'
per-weight rules exactly. `alberta_eqx.MLPLearner` computes `z` once per step and
passes both.

**Without `curvature`** the transformations use `g**2` in its place (the squared loss
gradient). Since `g = -delta z`, that is `delta**2 z**2`: exact only when `|delta| = 1`.
For IDBD the trace then decays by `[1 - alpha delta^2 z^2]^+`, fast after large errors
and hardly at all after small ones. For Autostep the overshoot guard becomes
`M = max(sum alpha delta^2 z^2, 1)`: it depends on the error's units, so it
normalises the step-sizes too much after large errors and not at all after small ones,
and Autostep loses its invariance to the scale of the target. Pass the curvature
whenever the model can give it.

**`meta_gradient`** (optional, `idbd` and `autostep`): the gradient the step-sizes
descend when it is not the one that moves the weights. `alberta_eqx.TDMLPLearner`
passes TD-IDBD's semi-gradient `-delta dv/dtheta` while the weights move along
`g = -delta e` (the eligibility trace), which makes these TD-IDBD and AutoTDIDBD.

**Composition.** `optax.chain` hands every extra keyword argument to each of its
members (`optax.with_extra_args_support` lets plain transformations ignore them);
`optax.inject_hyperparams(alberta_eqx.optax.idbd)(meta_step_size=...)` forwards them
to the transformation it rebuilds each step, with the hyperparameters read from
`state.hyperparams` (change them there between steps). A transformation placed
*before* ours in a chain (clipping, scaling) changes `g` but not `curvature`. Inside
`optax.masked` or `optax.partition`, pass `mask_compatible_extra_args=True` so the
curvature is masked like the gradients; Autostep's `M` then sums over its own part of
the parameters only.

**ObGD and the trace rules** (`obgd`, `adaptive_obgd`, `trace_sgd`) follow Elsayed,
Vasan and Mahmood (2024): the eligibility trace accumulates the *prediction's*
gradient, and the current error weights the whole trace, so they cannot be computed
from the loss gradient `g`. They take three keyword arguments instead:

    updates, state = tx.update(grads, state, params, error=delta,
                               prediction_gradient=z, trace_decay=gamma_lambda)

- `error`: the scalar `delta`, the TD error `R + gamma v(S') - v(S)` or, in supervised
  use, `y* - y`;
- `prediction_gradient`: `z = dv/dtheta`, a pytree shaped like the parameters;
- `trace_decay`: what multiplies the old trace before `z` is added, `gamma lambda`
  (default 0: no trace, the supervised case). Pass 0 at the first step of an
  episode: that cuts the trace (the authors' `reset` after the last step).

The state holds the trace. These rules ignore `grads`: with `trace_decay = 0`,
`z = -g / delta`, and the update equals `-alpha_eff g` (for ObGD). A transformation
placed before them in a chain therefore has no effect on them. `alberta_eqx.MLPLearner`
and `alberta_eqx.TDMLPLearner` pass all three (with `curvature`) every step.

**The bound alone** (`obgd_bound(kappa)`) scales *any* update `u` by
`1 / max(kappa max(|delta|, 1) ||u / delta||_1, 1)` (one L1 norm over all the
parameters; it reads `error`): put it last in a chain after `lms`, `idbd`, `autostep`,
`optax.adam`, ... `optax.chain(trace_sgd(alpha), obgd_bound(kappa))` is ObGD.
**`agc`** is adaptive gradient clipping (Brock et al. 2021) for Equinox's `(out, in)`
weight layout; it needs `params`.

**Plasticity** (`upgd`, `scale_by_upgd`, `shrink_and_perturb`, `l2_init`,
`weight_clipping`): remedies for the loss of plasticity, each composable with the rules
above. `l2_init` and `scale_by_upgd` change the gradient (put them before a step rule);
`shrink_and_perturb` and `weight_clipping` change the update (put them after one):
`optax.chain(l2_init(1e-3), autostep(), weight_clipping(2.0))`. The noisy ones draw
from a key kept in their state (docs/plasticity.md).

**Recorded construction.** Every factory here records how it was called:
`factory_call(tx)` returns the `FactoryCall` (the factory and its arguments, defaults
included) of any transformation it returned, which is how `alberta_eqx.config.to_config`
writes it. `chain(...)` and `inject_hyperparams(factory)(...)` are `optax.chain` and
`optax.inject_hyperparams` recorded the same way: compose with them what a config
should hold (`inject_hyperparams(optax.sgd)(learning_rate=0.1)` records optax's own).

The rules are the ones in `alberta_eqx._rules`, shared with the linear optimizers.
"""

from alberta_eqx.optax._plasticity import (
    L2InitState,
    NoiseState,
    UPGDState,
    WeightClippingState,
    l2_init,
    scale_by_upgd,
    shrink_and_perturb,
    upgd,
    weight_clipping,
)
from alberta_eqx.optax._recording import (
    FactoryCall,
    Injection,
    chain,
    factory_call,
    inject_hyperparams,
)
from alberta_eqx.optax._step_sizes import (
    AdaptiveObGDState,
    AutostepState,
    IDBDState,
    TraceState,
    adaptive_obgd,
    agc,
    autostep,
    idbd,
    lms,
    obgd,
    obgd_bound,
    trace_sgd,
)

__all__ = [
    "AdaptiveObGDState",
    "AutostepState",
    "FactoryCall",
    "IDBDState",
    "Injection",
    "L2InitState",
    "NoiseState",
    "TraceState",
    "UPGDState",
    "WeightClippingState",
    "adaptive_obgd",
    "agc",
    "autostep",
    "chain",
    "factory_call",
    "idbd",
    "inject_hyperparams",
    "l2_init",
    "lms",
    "obgd",
    "obgd_bound",
    "scale_by_upgd",
    "shrink_and_perturb",
    "trace_sgd",
    "upgd",
    "weight_clipping",
]
