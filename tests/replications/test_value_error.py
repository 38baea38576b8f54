"""`rms_error` for any learner with `predict` (issue 22, item 6): the linear and the
MLP TD learners, one and batched, against the values computed state by state."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import alberta_eqx as ae
import alberta_eqx.optax as aeo
from alberta_eqx.replications.random_walk import rms_error

N = 5
TRUE = jnp.linspace(-1.0, 1.0, N)


def _linear(key):
    w, b = jax.random.normal(key, (2, N))
    learner = ae.TDLinearLearner(N, ae.IDBD(), 0.5)
    return eqx.tree_at(lambda m: (m.weights, m.bias), learner, (w, b[0]))


def _mlp(key):
    return ae.TDMLPLearner(
        ae.MLP(N, "scalar", (4,), key=key, activation=jax.nn.relu, layer_norm=False),
        aeo.obgd(),
        lambda_=0.5,
    )


_predict = eqx.filter_jit(lambda learner, x: learner.predict(x))


def _direct(learner, batch_shape, features):
    """The RMS error in float64 NumPy, each learner of the batch and each state
    predicted on its own."""
    out = np.empty(batch_shape)
    for index in np.ndindex(*batch_shape):
        one = jax.tree.map(lambda a, i=index: a[i] if eqx.is_array(a) else a, learner)
        values = np.array([float(_predict(one, jnp.asarray(x, jnp.float32))) for x in features])
        out[index] = np.sqrt(np.mean((values - np.asarray(TRUE, np.float64)) ** 2))
    return out


@pytest.mark.slow  # about 15 s (linear) and 35 s (MLP) on the loaded 2-core machine
@pytest.mark.parametrize("build", [_linear, _mlp], ids=["td-linear", "td-mlp"])
def test_rms_error_of_any_learner_one_and_batched(build):
    keys = jax.random.split(jax.random.key(0), 6).reshape(2, 3)
    single = build(keys[0, 0])
    batched = eqx.filter_vmap(eqx.filter_vmap(build))(keys)
    assert batched.batch_shape == (2, 3)
    eye = np.eye(N)
    np.testing.assert_allclose(float(rms_error(single, TRUE)), _direct(single, (), eye), 1e-5)
    np.testing.assert_allclose(rms_error(batched, TRUE), _direct(batched, (2, 3), eye), 1e-5)
    # features other than one-hot ones: two states sharing a feature
    features = jnp.asarray(np.triu(np.ones((N, N))))
    np.testing.assert_allclose(
        rms_error(batched, TRUE, features), _direct(batched, (2, 3), np.asarray(features)), 1e-5
    )
