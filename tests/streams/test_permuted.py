"""The permuted classification streams and the online classifier."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import alberta_eqx.optax as aeo
from alberta_eqx import (
    ClassifierLearner,
    InputPermutedStream,
    LabelPermutedStream,
    metrics_to_dicts,
    run_learning_loop,
)
from alberta_eqx.nn import MLP

M, N, C = 10, 6, 5  # examples, features, classes
# Compiled: eager, every per-step permutation would be dispatched op by op.
_chunk = eqx.filter_jit(lambda stream, key, t0, n: stream.chunk(stream.init(key), t0, n)[0])


def _data():
    """Rows that name themselves: example i, feature j holds i * N + j, so that an
    observation gives back its example (min // N) and its permutation (x - i N)."""
    x = (np.arange(M)[:, None] * N + np.arange(N)).astype(np.float32)
    return x, (np.arange(M) % C).astype(np.int32)


@pytest.fixture(scope="module")
def input_steps():
    stream = InputPermutedStream(*_data(), interval=15)
    return _chunk(stream, jax.random.key(0), 0, 60)


def test_input_permuted_examples_and_permutations(input_steps):
    x, y = np.asarray(input_steps.observation), np.asarray(input_steps.target)
    index = (x.min(axis=1) // N).astype(int)
    # Shuffled passes: every block of M steps shows every example once.
    for start in range(0, 60, M):
        assert sorted(index[start : start + M]) == list(range(M))
    assert not all(index[:M] == np.arange(M))  # shuffled, not in order
    np.testing.assert_array_equal(y, index % C)  # labels untouched
    perms = x - index[:, None] * N
    for task in range(4):
        block = perms[15 * task : 15 * (task + 1)]
        assert (block == block[0]).all()  # one permutation per task
        assert sorted(block[0]) == list(range(N))
    assert len({tuple(perms[15 * k]) for k in range(4)}) == 4  # a new one each task


def test_label_permuted_relabels_per_task():
    stream = LabelPermutedStream(*_data(), interval=20)
    steps = _chunk(stream, jax.random.key(1), 0, 80)
    x, y = np.asarray(steps.observation), np.asarray(steps.target).astype(int)
    index = (x.min(axis=1) // N).astype(int)
    np.testing.assert_array_equal(x, index[:, None] * N + np.arange(N))  # inputs untouched
    maps = []
    for task in range(4):
        sl = slice(20 * task, 20 * (task + 1))
        mapping = {}
        for original, new in zip(index[sl] % C, y[sl], strict=True):
            assert mapping.setdefault(original, new) == new  # one relabelling per task
        assert len(set(mapping.values())) == len(mapping)  # a bijection
        maps.append(tuple(sorted(mapping.items())))
    assert len(set(maps)) > 1


def test_chunks_do_not_depend_on_grouping():
    stream = LabelPermutedStream(*_data(), interval=7)
    key = jax.random.key(2)
    whole = _chunk(stream, key, 0, 30)
    part = _chunk(stream, key, 11, 9)
    one = eqx.filter_jit(lambda s, k: s.step(s.init(k), 23)[0])(stream, key)
    np.testing.assert_array_equal(whole.observation[11:20], part.observation)
    np.testing.assert_array_equal(whole.target[11:20], part.target)
    np.testing.assert_array_equal(whole.observation[23], one.observation)


def test_bad_arguments_are_refused_by_name():
    x, y = _data()
    with pytest.raises(ValueError, match="interval"):
        InputPermutedStream(x, y, interval=0)
    with pytest.raises(ValueError, match="labels"):
        LabelPermutedStream(x, y, num_classes=3)
    with pytest.raises(ValueError, match="labels"):
        InputPermutedStream(x, y.astype(np.float32))
    with pytest.raises(ValueError, match="inputs"):
        InputPermutedStream(x[:, 0], y)
    with pytest.raises(ValueError, match="both"):
        InputPermutedStream(x)
    with pytest.raises(ValueError, match="num_classes"):
        ClassifierLearner(
            MLP(N, 1, (4,), key=jax.random.key(0), activation=jax.nn.relu, layer_norm=False),
            aeo.lms(0.1),
        )
    learner = ClassifierLearner(
        MLP(N, C, (4,), key=jax.random.key(0), activation=jax.nn.relu, layer_norm=False),
        aeo.lms(0.1),
    )
    with pytest.raises(ValueError, match="y must be a class index"):
        learner.update(jnp.zeros(N), 5.0)
    with pytest.raises(ValueError, match="y must be a class index"):
        learner.update(jnp.zeros(N), 1.5)


def test_classifier_follows_a_numpy_transcription():
    """Softmax cross-entropy SGD on a one-hidden-layer ReLU network, float64, 300
    steps, against the same written out in NumPy."""
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        xs = rng.normal(size=(300, N))
        ys = (np.abs(xs[:, :C]).argmax(1)).astype(np.float64)
        lr = 0.1
        learner = ClassifierLearner(
            MLP(
                N,
                C,
                (8,),
                key=jax.random.key(3),
                dtype=jnp.float64,
                activation=jax.nn.relu,
                layer_norm=False,
            ),
            aeo.lms(lr),
        )
        w1, b1 = (
            np.asarray(a) for a in (learner.model.layers[0].weight, learner.model.layers[0].bias)
        )
        w2, b2 = (
            np.asarray(a) for a in (learner.model.layers[1].weight, learner.model.layers[1].bias)
        )
        learner, results = jax.lax.scan(lambda ln, xy: ln.update(*xy), learner, (xs, ys))
        correct = []
        for x, label in zip(xs, ys.astype(int), strict=True):
            h = np.maximum(w1 @ x + b1, 0)
            logits = w2 @ h + b2
            p = np.exp(logits - logits.max())
            p /= p.sum()
            correct.append(float(logits.argmax() == label))
            dlogits = p - np.eye(C)[label]  # d(-log p_y)/dlogits
            dh = (w2.T @ dlogits) * (h > 0)
            w2, b2 = w2 - lr * np.outer(dlogits, h), b2 - lr * dlogits
            w1, b1 = w1 - lr * np.outer(dh, x), b1 - lr * dh
        np.testing.assert_allclose(learner.model.layers[0].weight, w1, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(learner.model.layers[1].bias, b2, rtol=1e-9, atol=1e-12)
        np.testing.assert_array_equal(results.metrics.accuracy, correct)
        assert np.mean(correct[-100:]) > 0.4  # it learned (chance is 0.2)


@pytest.mark.slow
def test_runner_reports_online_accuracy_on_digits():
    """Input-permuted digits (scikit-learn's) through the compiled runner: the
    windows average the accuracy, and the classifier learns the first task."""
    pytest.importorskip("sklearn", reason="the default data set is scikit-learn's digits")
    stream = InputPermutedStream(interval=1000)
    assert (stream.feature_dim, stream.num_classes) == (64, 10)
    learner = ClassifierLearner(
        MLP(64, 10, (32,), key=jax.random.key(0), activation=jax.nn.relu, layer_norm=False),
        aeo.lms(0.05),
    )
    result = run_learning_loop(learner, stream, 2000, jax.random.key(1), metrics_window=250)
    accuracy = np.asarray(result.metrics.accuracy)
    assert accuracy.shape == (8,)
    assert accuracy[3] > 0.7  # the end of the first task, well above chance (0.1)
    assert accuracy[4] < accuracy[3]  # a new permutation: accuracy drops
    assert "accuracy" in metrics_to_dicts(result.metrics)[0]
