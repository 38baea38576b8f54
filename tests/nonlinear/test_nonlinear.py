"""MLPLearner: the runners work unchanged, it learns a drifting teacher, any optax works;
and the teacher stream itself."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import alberta_eqx.optax as aeo
from alberta_eqx import (
    EMANormalizer,
    MLPLearner,
    NonlinearTeacherStream,
    StepSizeTrackingConfig,
    TDMLPLearner,
    run_learning_loop,
    run_learning_loop_batched,
)
from alberta_eqx.nn import MLP, check_network
from tests._compiled import update
from tests._doubles import AbstractWrappedLearner


@eqx.filter_jit
def _targets(stream, keys, num_steps: int):
    """The targets of the first `num_steps` steps of each key's stream, one program."""
    return jax.vmap(lambda k: stream.chunk(stream.init(k), jnp.asarray(0), num_steps)[0].target)(
        keys
    )


@eqx.filter_jit  # one program per shape, where built eagerly each draw compiles its own
def _relu_mlp(feature_dim, hidden_sizes, key, dtype=None):
    return MLP(
        feature_dim,
        "scalar",
        hidden_sizes,
        key=key,
        dtype=dtype,
        activation=jax.nn.relu,
        layer_norm=False,
    )


class _Counting(AbstractWrappedLearner):
    """Counts how often `update` is traced (it runs only inside compiled scans)."""

    inner: MLPLearner
    traces = 0

    def update(self, x, y):
        _Counting.traces += 1
        inner, result = self.inner.update(x, y)
        return self._with(inner), result


@pytest.mark.slow
def test_autostep_mlp_learns_the_teacher_over_8_seeds_without_retracing():
    stream = NonlinearTeacherStream(4, hidden_size=4)
    tx = aeo.autostep(initial_step_size=0.01)
    learner = _Counting(MLPLearner(_relu_mlp(4, (16,), jax.random.key(0)), tx))
    keys = jax.random.split(jax.random.key(1), 8)
    result = run_learning_loop_batched(learner, stream, 6000, keys, metrics_window=1000)
    traced = _Counting.traces
    assert traced > 0
    # Same structure: the same learner again, and a fresh one with the same
    # transformation and other initial weights, run without tracing again.
    run_learning_loop_batched(learner, stream, 6000, keys, metrics_window=1000)
    other = _Counting(MLPLearner(_relu_mlp(4, (16,), jax.random.key(5)), tx))
    run_learning_loop_batched(other, stream, 6000, keys[::-1], metrics_window=1000)
    assert _Counting.traces == traced

    squared_error = np.asarray(result.metrics.squared_error)
    assert squared_error.shape == (8, 6)
    # The error of predicting zero: the targets' mean square over the same stretch.
    targets = np.asarray(_targets(stream, keys, 6000))
    zero_error = np.mean(targets[:, 5000:] ** 2)
    final = float(np.mean(squared_error[:, -1]))
    assert final < 0.3 * zero_error, (final, zero_error)
    assert np.all(np.isfinite(result.metrics.mean_step_size))


@pytest.mark.parametrize("tx", [optax.sgd(0.01), optax.adam(1e-3)], ids=["sgd", "adam"])
def test_plain_optax_transformations(tx):
    stream = NonlinearTeacherStream(3)
    learner = MLPLearner(
        _relu_mlp(3, (8, 8), jax.random.key(0)),
        tx,
        normalizer=EMANormalizer(),
    )
    result = run_learning_loop(learner, stream, 3000, jax.random.key(2), metrics_window=1000)
    squared_error = np.asarray(result.metrics.squared_error)
    assert np.all(np.isfinite(squared_error))
    assert squared_error[-1] < squared_error[0]
    assert np.all(np.isnan(result.metrics.mean_step_size))  # no step-size in the state
    with pytest.raises(ValueError, match="per-parameter step-sizes"):
        run_learning_loop(
            learner, stream, 100, jax.random.key(2), step_size_tracking=StepSizeTrackingConfig(50)
        )


def test_mean_step_size_reads_an_injected_learning_rate():
    tx = optax.inject_hyperparams(optax.sgd)(learning_rate=0.02)
    learner = MLPLearner(_relu_mlp(3, (4,), jax.random.key(0)), tx)
    _, result = update(learner, np.ones(3, np.float32), 1.0)
    np.testing.assert_allclose(result.metrics.mean_step_size, 0.02)
    # and, inside a chain, per-parameter step-sizes of ours
    tx = optax.chain(
        optax.clip_by_global_norm(1.0), aeo.idbd(meta_step_size=0.0, initial_step_size=0.03)
    )
    learner = MLPLearner(_relu_mlp(3, (4,), jax.random.key(0)), tx)
    _, result = update(learner, np.ones(3, np.float32), 1.0)
    np.testing.assert_allclose(result.metrics.mean_step_size, 0.03, rtol=1e-6)


def test_step_size_tracking_of_an_idbd_mlp():
    stream = NonlinearTeacherStream(3)
    learner = MLPLearner(
        _relu_mlp(3, (5,), jax.random.key(0)),
        aeo.idbd(meta_step_size=0.01),
    )
    result = run_learning_loop(
        learner, stream, 200, jax.random.key(0), step_size_tracking=StepSizeTrackingConfig(100)
    )
    num_params = 3 * 5 + 5 + 5 + 1
    history = result.step_size_history
    assert history.step_sizes.shape == (2, num_params)
    assert history.bias_step_sizes is None
    assert history.step_size_normalizers is None  # IDBD has no v
    final = jax.flatten_util.ravel_pytree(result.learner.opt_state.step_size)[0]
    np.testing.assert_allclose(np.asarray(history.step_sizes)[-1], final)


@pytest.mark.parametrize("flatten", [True, False], ids=["flat", "pytree"])
def test_the_update_uses_the_prediction_gradient_once_for_g_and_c(flatten):
    """One step of MLPLearner equals a hand-made step: g = -delta z, c = z**2, given to
    the optimizer as the model's arrays or raveled into one vector."""
    tx = aeo.autostep(initial_step_size=0.2)
    learner = MLPLearner(
        _relu_mlp(3, (4,), jax.random.key(0)),
        tx,
        flatten=flatten,
    )
    as_given = (lambda t: jax.flatten_util.ravel_pytree(t)[0]) if flatten else (lambda t: t)

    @eqx.filter_jit  # the step and the hand-made one, as one program
    def steps(learner, x, y):
        new, result = learner.update(x, y)
        params, static = eqx.partition(learner.model, eqx.is_inexact_array)
        z = jax.grad(lambda p: eqx.combine(p, static)(x))(params)
        delta = y - learner.model(x)
        g = jax.tree.map(lambda z: -delta * z, z)
        c = jax.tree.map(jnp.square, z)
        state = tx.init(as_given(params))
        updates, _ = tx.update(as_given(g), state, as_given(params), curvature=as_given(c))
        expected = optax.apply_updates(as_given(params), updates)
        return new, result, delta, expected, learner.model(x), new.model(x)

    x, y = jnp.array([0.5, -1.0, 2.0]), 3.0
    new, result, delta, expected, before, after = steps(learner, x, jnp.asarray(y))
    np.testing.assert_allclose(result.error, delta, rtol=1e-6)
    for a, b in zip(
        jax.tree.leaves(as_given(eqx.filter(new.model, eqx.is_inexact_array))),
        jax.tree.leaves(expected),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    # the overshoot guard held: the new prediction moved towards y, not past it
    assert float(before) < float(after) <= y


@pytest.mark.parametrize(
    "tx",
    [aeo.autostep(), aeo.idbd(meta_step_size=0.01), optax.adam(1e-3)],
    ids=["autostep", "idbd", "adam"],
)
@pytest.mark.slow
def test_flatten_changes_only_the_layout(tx):
    """Per-parameter transformations learn the same with the parameters raveled into
    one vector as with the model's pytree; the state holds vectors instead."""
    stream = NonlinearTeacherStream(3)
    runs = {
        flatten: run_learning_loop(
            MLPLearner(
                _relu_mlp(3, (6, 6), jax.random.key(0)),
                tx,
                flatten=flatten,
            ),
            stream,
            500,
            jax.random.key(1),
        )
        for flatten in (True, False)
    }
    flat, tree = runs[True], runs[False]
    np.testing.assert_allclose(flat.metrics.squared_error, tree.metrics.squared_error, rtol=2e-4)
    for a, b in zip(
        jax.tree.leaves(eqx.filter(flat.learner.model, eqx.is_array)),
        jax.tree.leaves(eqx.filter(tree.learner.model, eqx.is_array)),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    num_params = 3 * 6 + 6 + 6 * 6 + 6 + 6 + 1
    shapes = {leaf.shape for leaf in jax.tree.leaves(flat.learner.opt_state) if leaf.ndim}
    assert shapes == {(num_params,)}  # adam's step count aside, every leaf is a vector


def test_a_masked_transformation_on_the_default_pytree():
    """By default the optimizer sees the model's pytree, so a mask over it works:
    weight decay on the weight matrices only, the biases untouched by it."""
    learner = MLPLearner(
        _relu_mlp(3, (4,), jax.random.key(0)),
        optax.sgd(0.1),
    )
    is_weight = jax.tree.map(lambda p: p.ndim == 2, eqx.filter(learner.model, eqx.is_array))
    tx = optax.chain(optax.masked(optax.add_decayed_weights(0.5), is_weight), optax.sgd(0.1))
    learner = MLPLearner(_relu_mlp(3, (4,), jax.random.key(0)), tx)  # flatten=False, the default
    plain = MLPLearner(
        _relu_mlp(3, (4,), jax.random.key(0)),
        optax.sgd(0.1),
    )
    x, y = jnp.array([0.5, -1.0, 2.0]), 1.0
    (decayed, _), (sgd, _) = update(learner, x, y), update(plain, x, y)
    layers = zip(decayed.model.layers, sgd.model.layers, plain.model.layers, strict=True)
    for a, b, p in layers:
        # sgd(0.1) on g + 0.5 w subtracts 0.05 w more from the weights; biases agree
        np.testing.assert_allclose(a.weight, b.weight - 0.05 * p.weight, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(a.bias, b.bias, rtol=1e-6)
    with pytest.raises(ValueError) as error:  # optax's, for a mask over a vector
        MLPLearner(
            _relu_mlp(3, (4,), jax.random.key(0)),
            tx,
            flatten=True,
        )
    assert "pass flatten=False" in "".join(error.value.__notes__)


@pytest.mark.slow
def test_float32_learner_with_x64_on():
    with jax.enable_x64(True):
        stream = NonlinearTeacherStream(3)  # float64 observations
        model = _relu_mlp(3, (4,), jax.random.key(0), dtype=jnp.float32)
        for tx in (aeo.autostep(), optax.adam(1e-3)):
            learner = MLPLearner(model, tx)
            result = run_learning_loop(learner, stream, 50, jax.random.key(0))
            leaves = jax.tree.leaves(eqx.filter(result.learner, eqx.is_inexact_array))
            assert all(leaf.dtype == jnp.float32 for leaf in leaves)


@pytest.mark.slow
def test_any_network_with_the_interface():
    """`eqx.nn.MLP` is `MLP(..., activation=relu, layer_norm=False)` weight for weight,
    and a learner of either makes the same steps; a learnt activation (a module, in the
    network's dynamic `activation` field) is trained with the weights."""
    key, x, tx = jax.random.key(3), jnp.array([0.5, -1.0, 2.0]), aeo.autostep()
    theirs = MLPLearner(eqx.nn.MLP(3, "scalar", 4, 2, key=key), tx)
    ours = MLPLearner(_relu_mlp(3, (4, 4), key), tx)
    assert theirs.feature_dim == ours.feature_dim == 3
    for _ in range(3):
        (theirs, a), (ours, b) = update(theirs, x, 1.0), update(ours, x, 1.0)
        np.testing.assert_array_equal(a.prediction, b.prediction)
    for p, q in zip(theirs.model.layers, ours.model.layers, strict=True):
        np.testing.assert_array_equal(p.weight, q.weight)
        np.testing.assert_array_equal(p.bias, q.bias)
    td = TDMLPLearner(eqx.nn.MLP(3, "scalar", 4, 2, key=key), tx, lambda_=0.5)
    assert np.isfinite(update(td, x, 1.0)[1].prediction)

    prelu = MLPLearner(MLP(3, "scalar", (4,), key=key, activation=eqx.nn.PReLU()), optax.sgd(0.1))
    learned, _ = update(prelu, x, 1.0)
    slopes = learned.model.activation.negative_slope, prelu.model.activation.negative_slope
    assert np.asarray(slopes[0]) != np.asarray(slopes[1])


def test_bad_arguments():
    with pytest.raises(ValueError, match="hidden_sizes"):
        MLPLearner(_relu_mlp(3, (4, 0), jax.random.key(0)), optax.sgd(0.1))
    with pytest.raises(TypeError, match="optimizer"):
        MLPLearner(_relu_mlp(3, (4,), jax.random.key(0)), "adam")
    # the network: a scalar output, and the interface the learner reads
    with pytest.raises(ValueError, match="model must have out_size='scalar', got 2"):
        MLPLearner(MLP(3, 2, (4,), key=jax.random.key(0)), optax.sgd(0.1))
    with pytest.raises(TypeError, match="model"):
        MLPLearner(eqx.nn.Linear(3, "scalar", key=jax.random.key(0)), optax.sgd(0.1))
    with pytest.raises(TypeError, match="model must have an integer in_size"):
        check_network("model", eqx.nn.Linear(3, "scalar", key=jax.random.key(0)))
    with pytest.raises(TypeError, match="model must be a network"):
        check_network("model", "mlp")
    learner = MLPLearner(
        _relu_mlp(3, (4,), jax.random.key(0)),
        optax.sgd(0.1),
    )
    with pytest.raises(ValueError, match=r"x must have shape \(3,\)"):
        learner.update(jnp.ones(2), 0.0)


# The teacher stream.


def _numpy(tree):
    """The tree's float arrays as NumPy arrays (its keys as None), so that the checks
    on them compile nothing."""
    return jax.tree.map(np.asarray, eqx.filter(tree, eqx.is_inexact_array))


def test_teacher_chunks_equal_steps_and_follow_the_equations():
    @eqx.filter_jit  # one program, not one per operation
    def chunks(stream, key):
        state = stream.init(key)
        whole, end = stream.chunk(state, jnp.asarray(0), 40)
        first, middle = stream.chunk(state, jnp.asarray(0), 25)
        second, end2 = stream.chunk(middle, jnp.asarray(25), 15)
        return whole, end, first, second, end2

    stream = NonlinearTeacherStream(5, hidden_size=3, drift_rate=0.05, noise_std=0.0)
    whole, end, first, second, end2 = _numpy(chunks(stream, jax.random.key(0)))
    np.testing.assert_allclose(whole.observation[:25], first.observation)
    np.testing.assert_allclose(whole.observation[25:], second.observation)
    np.testing.assert_allclose(whole.target[25:], second.target, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(end.hidden, end2.hidden, rtol=1e-5, atol=1e-6)
    # y_t = v_t . tanh(W_t x_t) with the weights after step t (noise_std = 0)
    x = whole.observation[-1]
    np.testing.assert_allclose(
        whole.target[-1], end.output @ np.tanh(end.hidden @ x), rtol=1e-5, atol=1e-6
    )


@pytest.mark.slow
def test_teacher_drift_and_scale():
    @eqx.filter_jit  # one program, not one per operation
    def chunks(stream, frozen, key):
        state = stream.init(key)
        steps, end = stream.chunk(state, jnp.asarray(0), 2500)
        _, same = frozen.chunk(state, jnp.asarray(0), 10)
        return state, steps, end, same

    stream = NonlinearTeacherStream(16, hidden_size=32, drift_rate=0.01, noise_std=0.5)
    frozen = NonlinearTeacherStream(16, hidden_size=32, drift_rate=0.0)
    state, steps, end, same = _numpy(chunks(stream, frozen, jax.random.key(1)))
    # each weight walks drift_rate * sqrt(t) (W's scaled by 1/sqrt(n))
    np.testing.assert_allclose(np.std(end.output - state.output), 0.01 * 50, rtol=0.2)
    np.testing.assert_allclose(np.std(end.hidden - state.hidden), 0.01 * 50 / 4, rtol=0.1)
    # the target's mean square, on average over teachers: about 0.4 hidden_size +
    # noise_std**2 (one teacher's varies with its sum of v_j**2)
    targets = np.asarray(_targets(stream, jax.random.split(jax.random.key(2), 64), 200))
    np.testing.assert_allclose(np.mean(targets**2), 0.39 * 32 + 0.25, rtol=0.2)
    np.testing.assert_allclose(np.std(steps.observation), 1.0, rtol=0.05)
    np.testing.assert_array_equal(same.hidden, state.hidden)
    with pytest.raises(ValueError, match="drift_rate"):
        NonlinearTeacherStream(3, drift_rate=-1.0)
    with pytest.raises(ValueError, match="hidden_size"):
        NonlinearTeacherStream(3, hidden_size=0)


@pytest.mark.slow
def test_obgd_with_the_papers_defaults_learns_where_sgd_diverges():
    """Elsayed et al. (2024)'s network and optimizer (step-size 1.0, kappa 2, sparse
    init 0.9, parameterless LayerNorm, LeakyReLU): finite and learning on the teacher
    over 10 seeds, where plain SGD with the same step-size diverges in every seed."""
    stream = NonlinearTeacherStream(8)
    keys = jax.random.split(jax.random.key(0), 10)
    steps = 3000
    # LeakyReLU and parameterless LayerNorm are MLP's defaults
    model = MLP(8, "scalar", (32, 32), key=jax.random.key(100), sparsity=0.9)
    targets = np.asarray(_targets(stream, keys, steps))
    zero_error = np.mean(targets[:, -500:] ** 2, axis=1)
    runs = {
        name: run_learning_loop_batched(
            MLPLearner(model, tx),
            stream,
            steps,
            keys,
            metrics_window=500,
        ).metrics.squared_error
        for name, tx in (("obgd", aeo.obgd(1.0, kappa=2.0)), ("sgd", optax.sgd(1.0)))
    }
    obgd = np.asarray(runs["obgd"])
    assert np.all(np.isfinite(obgd))
    assert np.all(obgd[:, -1] < 0.15 * zero_error), (obgd[:, -1], zero_error)
    assert np.all(obgd[:, -1] < obgd[:, 0])
    assert not np.any(np.isfinite(np.asarray(runs["sgd"])[:, -1]))
