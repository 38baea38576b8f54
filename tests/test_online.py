"""`OnlineLearner`: the single-event path gives exactly the functional updates."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import alberta_eqx as ae
import alberta_eqx.optax as aeo


@pytest.mark.parametrize("kind", ["linear", "mlp", "flat mlp"])
def test_online_learner_follows_the_functional_updates(kind):
    if kind == "linear":
        learner = ae.LinearLearner(4, ae.Autostep(0.05), normalizer=ae.WelfordNormalizer())
    elif kind == "mlp":
        # adam holds an int32 step count beside float32 arrays: two packed buffers
        learner = ae.MLPLearner(4, (8, 8), optax.adam(0.01), key=jax.random.key(0))
    else:  # the setting documented for this use
        tx = aeo.autostep(initial_step_size=0.05)
        learner = ae.MLPLearner(4, (8, 8), tx, key=jax.random.key(0), flatten=True)
    xs = jax.random.normal(jax.random.key(1), (20, 4))
    ys = xs @ jnp.array([1.0, -2.0, 0.5, 0.0])
    online = ae.OnlineLearner(learner)
    for x, y in zip(xs, ys, strict=True):
        np.testing.assert_allclose(online.predict(x), learner.predict(x), rtol=1e-5, atol=1e-6)
        result = online.update(x, y)
        learner, expected = learner.update(x, y)
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
