"""`OnlineLearner`: the single-event path gives exactly the functional updates."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import alberta_eqx as ae
import alberta_eqx.optax as aeo
from tests._doubles import AbstractWrappedLearner

# The functional calls that `OnlineLearner` must reproduce, each one compiled program
# (op by op, an MLP's update compiles some hundred small ones).
_predict = eqx.filter_jit(lambda learner, x: learner.predict(x))
_update = eqx.filter_jit(lambda learner, x, y: learner.update(x, y))


@eqx.filter_jit
def _network():
    return ae.MLP(4, "scalar", (8, 8), key=jax.random.key(0))


@pytest.mark.parametrize("kind", ["linear", "mlp", "flat mlp"])
@pytest.mark.slow
def test_online_learner_follows_the_functional_updates(kind):
    if kind == "linear":
        learner = ae.LinearLearner(4, ae.Autostep(0.05), normalizer=ae.WelfordNormalizer())
    elif kind == "mlp":
        # adam holds an int32 step count beside float32 arrays: two packed buffers
        learner = ae.MLPLearner(
            _network(),
            optax.adam(0.01),
        )
    else:  # the setting documented for this use
        tx = aeo.autostep(initial_step_size=0.05)
        learner = ae.MLPLearner(
            _network(),
            tx,
            flatten=True,
        )
    xs = jax.random.normal(jax.random.key(1), (20, 4))
    # NumPy rows: slicing a JAX array compiles a program per shape
    xs, ys = np.asarray(xs), np.asarray(xs @ jnp.array([1.0, -2.0, 0.5, 0.0]))
    online = ae.OnlineLearner(learner)
    for x, y in zip(xs, ys, strict=True):
        np.testing.assert_allclose(online.predict(x), _predict(learner, x), rtol=1e-5, atol=1e-6)
        result = online.update(x, y)
        learner, expected = _update(learner, x, y)
        np.testing.assert_allclose(result.error, expected.error, rtol=1e-5, atol=1e-6)
    arrays = lambda tree: jax.tree.leaves(eqx.filter(tree, eqx.is_array))  # noqa: E731
    for got, want in zip(arrays(online.learner), arrays(learner), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert type(online.learner) is type(learner)


def test_online_learner_compiles_once(monkeypatch):
    traces = []
    update = ae.LinearLearner.update

    def counting(self, x, y):  # runs only while jax traces
        traces.append(1)
        return update(self, x, y)

    monkeypatch.setattr(ae.LinearLearner, "update", counting)
    online = ae.OnlineLearner(ae.LinearLearner(3, ae.IDBD()))
    for i in range(5):
        online.update(np.full(3, float(i)), 1.0)
    assert len(traces) == 1


def test_online_learner_refuses_other_objects():
    # the message is ours, or the runtime type checker's when it is on
    with pytest.raises(TypeError, match="learner"):
        ae.OnlineLearner(ae.IDBD())


def _buffers(online):
    return {k: np.asarray(v).copy() for k, v in online._buffers.items()}


def test_two_threads_lose_no_event():
    """Every event a constant (x = 0, y = 1): the bias's path does not depend on the
    order, so two threads sharing the learner must give exactly a sequential run."""
    import threading

    def learner():
        return ae.LinearLearner(2, ae.LMS(1e-4))

    shared, sequential = ae.OnlineLearner(learner()), ae.OnlineLearner(learner())
    zeros = np.zeros(2, np.float32)

    def feed(online, n):
        for _ in range(n):
            online.update(zeros, 1.0)

    threads = [threading.Thread(target=feed, args=(shared, 5_000)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    feed(sequential, 10_000)
    assert shared.events == 10_000
    assert shared.learner.bias == sequential.learner.bias
    assert 0 < float(shared.learner.bias) < 1  # still moving: a lost update would show


@pytest.mark.parametrize(
    ("x", "y", "what", "match"),
    [
        ([1.0, np.nan, 0.0], 1.0, "x", r"x holds nan at index 1"),
        ([1.0, 2.0, 1e39], 1.0, "x", r"x holds inf at index 2 .* in float32"),
        ([1.0, 2.0, 3.0], -np.inf, "y", r"y holds -inf"),
        ([1.0, 2.0, 3.0], 1e30, "the update", r"would make the learner non-finite"),
    ],
)
def test_a_non_finite_event_is_refused_and_the_learner_kept(x, y, what, match):
    online = ae.OnlineLearner(ae.LinearLearner(3, ae.IDBD(0.05, meta_step_size=0.01)))
    for _ in range(5):
        online.update([1.0, -1.0, 0.5], 2.0)
    before = _buffers(online)
    with pytest.raises(ae.NonFiniteEventError, match=match) as raised:
        online.update(x, y)
    assert raised.value.what == what
    assert all(np.array_equal(before[k], v) for k, v in _buffers(online).items())
    assert online.events == 5
    online.update([1.0, -1.0, 0.5], 2.0)  # and it goes on learning
    assert np.isfinite(online.learner.weights).all() and online.events == 6


def test_skip_counts_and_allow_learns_regardless():
    skip = ae.OnlineLearner(
        ae.LinearLearner(3, ae.IDBD(0.05, meta_step_size=0.01)), nonfinite="skip"
    )
    skip.update([1.0, 1.0, 1.0], 1.0)
    before = _buffers(skip)
    result = skip.update([1.0, 1.0, 1.0], 1e30)
    assert skip.skipped == 1 and skip.events == 1
    assert not np.isfinite(result.metrics.squared_error)  # the result is reported as it is
    assert all(np.array_equal(before[k], v) for k, v in _buffers(skip).items())
    allow = ae.OnlineLearner(ae.LinearLearner(3, ae.LMS(0.1)), nonfinite="allow")
    allow.update([1.0, np.nan, 1.0], 1.0)
    assert np.isnan(allow.learner.weights).all() and allow.events == 1
    # our message, or the runtime type checker's (the annotation is a Literal)
    with pytest.raises((ValueError, TypeError), match="nonfinite"):
        ae.OnlineLearner(ae.LinearLearner(3), nonfinite="ignore")


class _MissingTargets(AbstractWrappedLearner):
    """A learner that reads NaN in y as "no target": it then learns nothing."""

    inner: ae.LinearLearner
    accepts_missing_targets = True

    @property
    def weights(self):
        return self.inner.weights

    def update(self, x, y):
        y = jnp.where(jnp.isnan(y), self.predict(x), y)
        inner, result = self.inner.update(x, y)
        return self._with(inner), result


def test_nan_targets_pass_for_a_learner_that_accepts_missing_targets():
    assert ae.LinearLearner.accepts_missing_targets is False
    online = ae.OnlineLearner(_MissingTargets(ae.LinearLearner(2, ae.LMS(0.1))))
    online.update([1.0, 1.0], np.nan)
    assert online.events == 1 and np.array_equal(online.learner.weights, np.zeros(2))
    with pytest.raises(ae.NonFiniteEventError, match="y holds inf"):
        online.update([1.0, 1.0], np.inf)
    with pytest.raises(ae.NonFiniteEventError, match="x holds nan"):
        ae.OnlineLearner(_MissingTargets(ae.LinearLearner(2))).update([np.nan, 1.0], 1.0)


def test_one_compiled_entry_whatever_the_input_types():
    online = ae.OnlineLearner(ae.LinearLearner(3, ae.IDBD()))
    xs = [
        [1, 2, 3],
        [1.0, 2.0, 3.0],
        (1.0, 2.0, 3.0),
        np.array([1, 2, 3], np.int64),
        np.array([1, 2, 3], np.float64),
        np.array([1, 2, 3], np.float32),
        jnp.array([1.0, 2.0, 3.0]),
        jnp.array([1, 2, 3]),
    ]
    ys = [1, 1.0, np.float64(1.0), np.int32(1), jnp.float32(1.0), jnp.asarray(1.0), True]
    for x in xs:
        for y in ys:
            online.update(x, y)
    online.predict([1, 2, 3])
    assert online._update._cache_size() == 1
    assert online.events == len(xs) * len(ys)
    # our message, or the runtime type checker's
    with pytest.raises(TypeError, match=r"x must hold real numbers, got dtype complex|'x'"):
        online.update(np.ones(3, np.complex64), 1.0)
    with pytest.raises(TypeError, match="y must hold real numbers"):
        online.update(np.ones(3), np.array("1.0"))


class _VectorTarget(AbstractWrappedLearner):
    """A learner of a vector target (its mean), whose error is reported per entry: a
    result with a non-scalar leaf, as a multi-head learner's."""

    inner: ae.LinearLearner

    def update(self, x, y):
        inner, result = self.inner.update(x, jnp.mean(y))
        return self._with(inner), result._replace(error=y - result.prediction)


def test_the_result_unpacks_as_the_learners_own():
    learner = _VectorTarget(ae.LinearLearner(3, ae.IDBD(0.05, meta_step_size=0.01)))
    online = ae.OnlineLearner(learner)
    for step in range(3):
        x, y = jnp.array([1.0, -1.0, 0.5]) * step, jnp.array([1.0, 2.0, 4.0])
        result = online.update(x, y)
        learner, expected = _update(learner, x, y)
        assert isinstance(result.unpacked, ae.UpdateResult)
        assert result.error.shape == (3,) and result.error.dtype == np.float32
        np.testing.assert_allclose(result.error, expected.error, rtol=1e-6)
        prediction, error, metrics = result  # unpacks as the result does
        assert error is result.error
        np.testing.assert_allclose(
            metrics.squared_error, expected.metrics.squared_error, rtol=1e-6
        )
        assert result[0] == prediction and "OnlineResult(UpdateResult(" in repr(result)


def test_learners_of_one_structure_share_one_compilation():
    """A second `OnlineLearner` of the same structure (a reopened `DurableLearner`)
    reuses the compiled update; its own arrays (hyperparameters included) still decide
    what it learns, and another structure gets its own program."""
    slow, fast = (
        ae.LinearLearner(3, ae.IDBD(0.01, meta_step_size=0.01)),
        ae.LinearLearner(3, ae.IDBD(0.5, meta_step_size=0.01)),
    )
    a, b = ae.OnlineLearner(slow), ae.OnlineLearner(fast)
    assert a._update is b._update
    x, y = jnp.array([1.0, 2.0, -1.0]), jnp.asarray(3.0)
    a.update(x, y)
    b.update(x, y)
    np.testing.assert_array_equal(a.learner.weights, _update(slow, x, y)[0].weights)
    np.testing.assert_array_equal(b.learner.weights, _update(fast, x, y)[0].weights)
    assert not np.array_equal(a.learner.weights, b.learner.weights)
    assert (
        ae.OnlineLearner(ae.LinearLearner(4, ae.IDBD(0.01, meta_step_size=0.01)))._update
        is not a._update
    )
    assert ae.OnlineLearner(slow, nonfinite="skip")._update is not a._update
