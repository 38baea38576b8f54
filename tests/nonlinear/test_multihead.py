"""MultiHeadLearner: k = 1 is MLPLearner, a missing target changes nothing of its
head, the trunk learns from the present heads only, no trunk is k linear learners;
it runs in the runners, one event at a time and through checkpoints."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import alberta_eqx.optax as aeo
from alberta_eqx import (
    IDBD,
    ContinualBackprop,
    EMANormalizer,
    LinearLearner,
    MLPLearner,
    MultiHeadLearner,
    OnlineLearner,
    find_divergence,
    load_checkpoint,
    run_learning_loop,
    run_learning_loop_batched,
    save_checkpoint,
)
from alberta_eqx.nn import MLP
from alberta_eqx.streams.bitflip import BitFlipStream
from tests._compiled import compiled, update

# The keys of 0.x's MultiHeadLearner(..., key=jax.random.key(0)): the network's, then
# continual backprop's.
NETWORK_KEY, CBP_KEY = jax.random.split(jax.random.key(0))


def _scan(learner, xs, ys):
    def step(learner, xy):
        learner, result = learner.update(*xy)
        return learner, result.prediction

    dynamic, static = eqx.partition(learner, eqx.is_array)

    def body(dynamic, xy):
        learner, out = step(eqx.combine(dynamic, static), xy)
        return eqx.filter(learner, eqx.is_array), out

    dynamic, predictions = jax.lax.scan(body, dynamic, (xs, ys))
    return eqx.combine(dynamic, static), predictions


# One compiled scan per learner structure and stream length.
_compiled_scan = eqx.filter_jit(_scan)


def _leaves(tree):
    """The tree's array leaves as NumPy arrays, so that the checks on them compile nothing."""
    return [np.asarray(a) for a in jax.tree.leaves(tree)]


def _data(steps, n, k, seed=0, missing=0.0):
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(steps, n))
    ys = np.tanh(xs @ rng.normal(size=(n, k))) + 0.1 * rng.normal(size=(steps, k))
    ys[rng.random((steps, k)) < missing] = np.nan
    return jnp.asarray(xs), jnp.asarray(ys)


@pytest.mark.parametrize(
    "tx, head_tx",
    [
        (aeo.idbd(meta_step_size=0.01, initial_step_size=0.05), None),
        (
            aeo.autostep(meta_step_size=0.01, initial_step_size=0.05),
            aeo.autostep(meta_step_size=0.02, initial_step_size=0.1),
        ),
    ],
    ids=["idbd", "autostep-with-head-optimizer"],
)
@pytest.mark.slow
def test_one_head_equals_mlp_learner(tx, head_tx):
    # Autostep's M sums over its own parameters: the trunk's, and the head's, in both
    # learners when MLPLearner has a head_optimizer.
    with jax.enable_x64(True):
        mlp = compiled(
            MLPLearner,
            compiled(
                MLP,
                3,
                "scalar",
                (8, 8),
                key=jax.random.key(1),
                dtype=jnp.float64,
                activation=jax.nn.relu,
                layer_norm=False,
            ),
            tx,
            head_optimizer=head_tx,
        )
        multi = compiled(
            MultiHeadLearner,
            compiled(
                MLP,
                3,
                1,
                (8, 8),
                key=jax.random.split(jax.random.key(2))[0],
                activation=jax.nn.relu,
                layer_norm=False,
                dtype=jnp.float64,
            ),
            tx,
            head_optimizer=head_tx,
        )
        # The same weights: MLPLearner's eqx.nn.MLP layers into the multi-head network.
        layers = mlp.model.layers
        multi = eqx.tree_at(
            lambda m: [a for layer in m.model.layers for a in (layer.weight, layer.bias)],
            multi,
            [a for layer in layers for a in (layer.weight, layer.bias)],
        )
        xs, ys = _data(300, 3, 1)
        mlp, p_mlp = _compiled_scan(mlp, xs, jnp.asarray(np.asarray(ys)[:, 0]))
        multi, p_multi = _compiled_scan(multi, xs, ys)
        np.testing.assert_allclose(np.asarray(p_multi)[:, 0], p_mlp, rtol=1e-10, atol=1e-12)
        for a, b in zip(multi.model.layers, mlp.model.layers, strict=True):
            np.testing.assert_allclose(a.weight, b.weight, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(a.bias, b.bias, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "tx", [aeo.autostep(), aeo.obgd(1.0, kappa=2.0)], ids=["autostep", "obgd"]
)
@pytest.mark.slow
def test_a_missing_target_changes_nothing_of_its_head(tx):
    # sparsity=None: with 4 inputs, sparsity 0.9 would zero every incoming weight
    learner = compiled(MultiHeadLearner, compiled(MLP, 4, 3, (8, 8), key=NETWORK_KEY), tx)
    xs, ys = _data(20, 4, 3)
    learner, _ = _compiled_scan(learner, xs, ys)  # some history in every state
    keep = np.array([0, 2])

    @eqx.filter_jit  # the step, and the same step of the present heads alone, one program
    def steps(learner, x, y):
        new, result = learner.update(x, y)
        # The trunk's update is the one a learner of the present heads alone makes.
        alone = MultiHeadLearner(MLP(4, 2, (8, 8), key=NETWORK_KEY, sparsity=0.9), tx)
        model = eqx.tree_at(
            lambda m: (m.layers[-1].weight, m.layers[-1].bias),
            learner.model,
            (learner.head_weights[keep], learner.head_biases[keep]),
        )
        alone = eqx.tree_at(
            lambda s: (s.model, s.trunk_state, s.head_state),
            alone,
            (model, learner.trunk_state, jax.tree.map(lambda a: a[keep], learner.head_state)),
        )
        return new, result, alone.update(x, y[keep])

    x, y = xs[0], jnp.asarray(np.where(np.arange(3) == 1, np.nan, np.asarray(ys[0])))
    new, result, (alone, alone_result) = steps(learner, x, y)
    error = np.asarray(result.error)
    assert np.isnan(error[1]) and np.isfinite(error[[0, 2]]).all()
    assert result.metrics.head_present.tolist() == [1.0, 0.0, 1.0]
    new_weights, old_weights = np.asarray(new.head_weights), np.asarray(learner.head_weights)
    np.testing.assert_array_equal(new_weights[1], old_weights[1])
    np.testing.assert_array_equal(
        np.asarray(new.head_biases)[1], np.asarray(learner.head_biases)[1]
    )
    for a, b in zip(_leaves(new.head_state), _leaves(learner.head_state), strict=True):
        np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(new_weights[0], old_weights[0])

    np.testing.assert_allclose(
        alone_result.prediction, np.asarray(result.prediction)[keep], rtol=1e-6
    )
    for a, b in zip(new._trunk_layers, alone._trunk_layers, strict=True):
        np.testing.assert_allclose(a.weight, b.weight, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(a.bias, b.bias, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(new_weights[keep], alone.head_weights, rtol=1e-5, atol=1e-7)


def test_no_target_at_all_changes_nothing():
    learner = compiled(MultiHeadLearner, compiled(MLP, 4, 2, (8,), key=NETWORK_KEY), aeo.obgd())
    new, result = update(learner, np.ones(4, np.float32), np.full(2, np.nan, np.float32))
    for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(learner), strict=True):
        np.testing.assert_array_equal(a, b)
    assert result.metrics.squared_error == 0


def test_no_trunk_is_k_linear_learners():
    with jax.enable_x64(True):
        k, n = 3, 5
        multi = compiled(
            MultiHeadLearner,
            compiled(
                MLP,
                n,
                k,
                (),
                key=NETWORK_KEY,
                dtype=jnp.float64,
                sparsity=0.9,
            ),
            aeo.idbd(meta_step_size=0.02, initial_step_size=0.05),
        )
        zero = jax.tree.map(lambda a: np.zeros(a.shape, a.dtype), multi._head)
        multi = eqx.tree_at(
            lambda s: (s.model.layers[-1].weight, s.model.layers[-1].bias), multi, zero
        )
        xs, ys = _data(300, n, k, missing=0.2)
        multi, predictions = _compiled_scan(multi, xs, ys)
        predictions, head_weights, head_biases = (
            np.asarray(a) for a in (predictions, multi.head_weights, multi.head_biases)
        )
        xs, ys = np.asarray(xs), np.asarray(ys)
        for i in range(k):
            linear = compiled(LinearLearner, n, IDBD(0.05, meta_step_size=0.02), dtype=jnp.float64)
            given = ~np.isnan(ys[:, i])
            linear, p = _compiled_scan(linear, jnp.asarray(xs[given]), jnp.asarray(ys[given, i]))
            np.testing.assert_allclose(predictions[given, i], p, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(head_weights[i], linear.weights, rtol=1e-10)
            np.testing.assert_allclose(head_biases[i], linear.bias, rtol=1e-10)


@pytest.mark.slow
def test_runs_in_the_runners_online_and_checkpoints(tmp_path):
    stream = BitFlipStream(num_targets=3, target_probability=0.7, flip_interval=50)
    learner = compiled(
        MultiHeadLearner,
        compiled(MLP, 20, 3, (16,), key=NETWORK_KEY, sparsity=0.9),
        aeo.autostep(),
    )
    result = run_learning_loop(learner, stream, 400, jax.random.key(1), metrics_window=20)
    m = result.metrics
    assert m.squared_error.shape == (20,) and m.head_squared_errors.shape == (20, 3)
    np.testing.assert_allclose(np.mean(np.asarray(m.head_present)), 0.7, atol=0.05)
    assert not find_divergence(result, 20).diverged
    # many seeds
    batched = run_learning_loop_batched(
        learner, stream, 100, jax.random.split(jax.random.key(2), 3)
    )
    assert batched.metrics.head_errors.shape == (3, 100, 3)

    # one event at a time: OnlineLearner follows the functional updates
    xs, ys = (np.asarray(a, np.float32) for a in _data(10, 20, 3, missing=0.3))
    online = OnlineLearner(learner)
    functional = learner
    for x, y in zip(xs, ys, strict=True):
        r = online.update(x, y)
        functional, expected = update(functional, x, y)
        np.testing.assert_allclose(r.prediction, expected.prediction, rtol=1e-5)
    np.testing.assert_allclose(
        online.predict(xs[0]), compiled(functional.predict, xs[0]), rtol=1e-5
    )

    path = tmp_path / "multi.ckpt"
    save_checkpoint(path, functional)
    loaded = load_checkpoint(path, learner).learner
    for a, b in zip(jax.tree.leaves(loaded), jax.tree.leaves(functional), strict=True):
        np.testing.assert_array_equal(a, b)


def test_bad_arguments():
    tx = optax.sgd(0.1)
    with pytest.raises(ValueError, match="out_size must be >= 1, got 0"):
        MultiHeadLearner(MLP(3, 0, (4,), key=NETWORK_KEY, sparsity=0.9), tx)
    model = compiled(MLP, 3, 2, (4,), key=NETWORK_KEY, sparsity=0.9)
    with pytest.raises(TypeError, match="head_optimizer"):
        MultiHeadLearner(model, tx, head_optimizer="sgd")
    with pytest.raises(ValueError, match="sparsity"):
        MultiHeadLearner(MLP(3, 2, (4,), key=NETWORK_KEY, sparsity=1.5), tx)
    learner = MultiHeadLearner(model, tx)
    with pytest.raises(ValueError, match=r"y must have shape \(2,\)"):
        learner.update(jnp.ones(3), jnp.ones(3))


def _bits(tree):
    """Every array leaf of `tree` as NumPy (PRNG keys as their key data)."""

    def bits(a):
        if jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
            a = jax.random.key_data(a)
        return np.asarray(a)

    return [bits(a) for a in jax.tree.leaves(eqx.filter(tree, eqx.is_array))]


def _cbp_learner(normalizer=None):
    return compiled(
        MultiHeadLearner,
        compiled(MLP, 4, 3, (8,), key=NETWORK_KEY, sparsity=0.9),
        aeo.idbd(meta_step_size=0.01, initial_step_size=0.05),
        key=CBP_KEY,
        unit_reset=ContinualBackprop(0.05, 0.9, 5),
        normalizer=normalizer,
    )


@pytest.fixture(scope="module")
def labelled():
    """20 events, each with at least one target (every step learns)."""
    xs, ys = _data(20, 4, 3, seed=3, missing=0.3)
    ys = np.array(ys)
    ys[:, 0] = np.where(np.isnan(ys).all(1), 1.0, ys[:, 0])
    return xs, jnp.asarray(ys)


def test_events_without_targets_leave_continual_backprop_and_the_trunk_alone(labelled):
    """Continual backprop's units age, and are replaced, only on steps that learn:
    20 events without any target leave the learner bit-identical (weights, ages,
    utilities, the replacement count, its key, the optimizers' state)."""
    xs, ys = labelled
    learner, _ = _compiled_scan(_cbp_learner(), xs, ys)
    ages = np.concatenate([np.asarray(a) for a in learner.unit_reset.age])
    assert (ages > 5).any() and (ages < 20).any()  # mature units, and replaced ones
    after, _ = _compiled_scan(learner, xs, jnp.full_like(ys, jnp.nan))
    for a, b in zip(_bits(after), _bits(learner), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_stream_equals_the_stream_without_its_target_free_events(labelled):
    """As documented: without a normalizer, events with no target at all change
    nothing, so inserting them anywhere gives the same learner and predictions."""
    xs, ys = labelled
    alone, predictions = _compiled_scan(_cbp_learner(), xs, ys)
    # the same events with one target-free event after each
    other = np.random.default_rng(1).normal(size=xs.shape)
    mixed_x = np.stack([xs, other], 1).reshape(-1, xs.shape[1])
    mixed_y = np.stack([ys, np.full_like(ys, np.nan)], 1).reshape(-1, ys.shape[1])
    mixed, mixed_predictions = _compiled_scan(
        _cbp_learner(), jnp.asarray(mixed_x), jnp.asarray(mixed_y)
    )
    np.testing.assert_array_equal(np.asarray(mixed_predictions)[::2], predictions)
    for a, b in zip(_bits(mixed), _bits(alone), strict=True):
        np.testing.assert_array_equal(a, b)


def test_with_a_normalizer_events_without_targets_change_only_the_normalizer(labelled):
    xs, ys = labelled
    learner, _ = _compiled_scan(_cbp_learner(EMANormalizer()), xs, ys)
    after, _ = _compiled_scan(learner, xs, jnp.full_like(ys, jnp.nan))
    assert float(after.normalizer.count) == 2 * float(learner.normalizer.count)
    rest = eqx.tree_at(lambda s: s.normalizer, after, learner.normalizer)
    for a, b in zip(_bits(rest), _bits(learner), strict=True):
        np.testing.assert_array_equal(a, b)
