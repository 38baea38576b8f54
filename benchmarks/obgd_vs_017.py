"""ObGD MLPs side by side: alberta_eqx against alberta-framework 0.17.1, from the same
initial parameters on the same data.

Both learners get 0.17.1's sparse-initialised parameters (2 hidden layers, LayerNorm,
LeakyReLU 0.01) and the same teacher stream; each step's prediction and the final
parameters are compared. Three configurations, each in alberta_eqx terms:

- ObGD: `optax.obgd(1.0, 2.0)` against 0.17.1's `LMS(1.0)` + `ObGDBounding(2.0)`;
- the bound after another rule: `optax.chain(autostep(...), obgd_bound(2.0))` against
  0.17.1's `Autostep(...)` + `ObGDBounding(2.0)`;
- the same without the bound.

Run with the 0.17.1 environment (it has alberta_eqx installed, editable):

    PYTHONPATH=$PWD /work/main/.venv-anchor17/bin/python benchmarks/obgd_vs_017.py [OUT.json]
"""

import argparse
import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from alberta_framework import MLPLearner as MLP017
from alberta_framework.core.optimizers import LMS as LMS017
from alberta_framework.core.optimizers import Autostep as Autostep017
from alberta_framework.core.optimizers import ObGDBounding

import alberta_eqx.optax as aeo
from alberta_eqx import MLPLearner, NonlinearTeacherStream
from alberta_eqx.nn import MLP

FEATURES, HIDDEN, STEPS = 8, (16, 16), 2000


def data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    stream = NonlinearTeacherStream(FEATURES)
    steps, _ = stream.chunk(stream.init(jax.random.key(seed)), jnp.asarray(0), STEPS)
    return np.asarray(steps.observation), np.asarray(steps.target)


def network(tx) -> MLPLearner:
    """Our MLPLearner with 0.17.1's architecture."""
    return MLPLearner(MLP(FEATURES, "scalar", HIDDEN, key=jax.random.key(0), sparsity=0.9), tx)


def ours_from(state017, tx) -> MLPLearner:
    """Our MLPLearner with 0.17.1's initial parameters (the same (out, in) layout)."""
    learner = network(tx)
    weights, biases = state017.params.weights, state017.params.biases
    layers = learner.model.layers
    learner = eqx.tree_at(
        lambda s: (
            [layer.weight for layer in s.model.layers] + [layer.bias for layer in s.model.layers]
        ),
        learner,
        [
            jnp.asarray(w).reshape(layer.weight.shape)
            for w, layer in zip(weights, layers, strict=True)
        ]
        + [
            jnp.asarray(b).reshape(layer.bias.shape)
            for b, layer in zip(biases, layers, strict=True)
        ],
    )
    # the optimizer's state for these parameters
    params = eqx.filter(learner.model, eqx.is_inexact_array)
    return eqx.tree_at(lambda s: s.opt_state, learner, tx.init(params))


def per_array(make) -> optax.GradientTransformation:
    """A separate transformation `make()` for every parameter array."""

    def labels(params):
        return jax.tree_util.tree_map_with_path(lambda path, _: jax.tree_util.keystr(path), params)

    model = network(optax.identity()).model
    names = jax.tree.leaves(labels(eqx.filter(model, eqx.is_array)))
    return optax.partition(
        {name: make() for name in names}, labels, mask_compatible_extra_args=True
    )


def compare(name, ours_tx, theirs_kwargs, seed=0) -> dict:
    xs, ys = data(seed)
    theirs = MLP017(
        hidden_sizes=HIDDEN,
        sparsity=0.9,
        use_layer_norm=True,
        leaky_relu_slope=0.01,
        **theirs_kwargs,
    )
    state = theirs.init(FEATURES, jax.random.key(seed + 1))
    ours = ours_from(state, ours_tx)
    update = eqx.filter_jit(lambda learner, x, y: learner.update(x, y))
    diffs, errors = [], []
    for x, y in zip(xs, ys, strict=True):
        result = theirs.update(state, jnp.asarray(x), jnp.asarray([y]))
        state = result.state
        ours, ours_result = update(ours, jnp.asarray(x), jnp.asarray(y))
        diffs.append(abs(float(result.prediction[0]) - float(ours_result.prediction)))
        errors.append(float(ours_result.error) ** 2)
    param_diff = max(
        float(jnp.max(jnp.abs(jnp.asarray(w).reshape(layer.weight.shape) - layer.weight)))
        for w, layer in zip(state.params.weights, ours.model.layers, strict=True)
    )
    out = {
        "configuration": name,
        "steps": STEPS,
        "max_abs_prediction_difference": max(diffs),
        "final_max_abs_weight_difference": param_diff,
        "mean_squared_error_last_500": float(np.mean(errors[-500:])),
        "mean_squared_target": float(np.mean(ys**2)),
    }
    print(json.dumps(out))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", help="write the comparisons here as JSON")
    args = parser.parse_args()
    results = [
        compare(
            "ObGD",
            aeo.obgd(1.0, kappa=2.0),
            dict(optimizer=LMS017(1.0), bounder=ObGDBounding(2.0)),
        ),
        compare(
            "Autostep + bound",
            optax.chain(
                aeo.autostep(meta_step_size=0.01, initial_step_size=0.05), aeo.obgd_bound(2.0)
            ),
            dict(optimizer=Autostep017(0.05, 0.01), bounder=ObGDBounding(2.0)),
        ),
        # 0.17.1's Autostep sums M = sum alpha z^2 over each parameter array on its own
        # (core/optimizers.py, Autostep.update_from_gradient): the same with one
        # Autostep per array, through optax.partition, follows it.
        compare(
            "Autostep with M per array + bound",
            optax.chain(
                per_array(lambda: aeo.autostep(meta_step_size=0.01, initial_step_size=0.05)),
                aeo.obgd_bound(2.0),
            ),
            dict(optimizer=Autostep017(0.05, 0.01), bounder=ObGDBounding(2.0)),
        ),
        compare("LMS(0.01), no bound", aeo.lms(0.01), dict(optimizer=LMS017(0.01))),
    ]
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
