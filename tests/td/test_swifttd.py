"""SwiftTD, step for step: against the authors' `swifttd` package (float32, its three
forms) and against float64 transcriptions of the package's C++ (`reference_swifttd`)."""

import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import alberta_eqx
from alberta_eqx.config import from_config, to_config
from alberta_eqx.runners import run_learning_loop
from alberta_eqx.streams.random_walk import RandomWalkChainStream
from alberta_eqx.td import (
    SparseSwiftTDLearner,
    SparseTDTimeStep,
    SwiftTDLearner,
    SwiftTDState,
    TDTimeStep,
    TrueOnlineTDLearner,
)
from tests._reference import swifttd as reference_swifttd
from tests.td import test_true_online_td

N = 20
# (lambda_, initial_step_size, gamma, epsilon, max_step_size, step_size_decay,
# meta_step_size, eta_min): the package README's values, where the bound binds on a
# few steps, and one where it binds on about one step in eight and the decay acts.
SETTINGS = {
    "readme": (0.95, 1e-2, 0.99, 1e-5, 0.1, 0.999, 1e-3, 1e-10),
    "bound": (0.9, 0.05, 0.95, 1e-3, 0.2, 0.99, 3e-3, 1e-10),
}
FORMS = ("dense", "sparse", "binary")


def _data(seed, steps):
    """Random dense features (about 30% non-zero, signed), the same as padded
    (index, value) slots, random binary features as padded indices, random rewards."""
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(steps, N)) * (rng.uniform(size=(steps, N)) < 0.3)).astype(np.float32)
    on = rng.uniform(size=(steps, N)) < 0.3
    rewards = rng.normal(size=steps).astype(np.float32)
    x_idx = np.where(x != 0, np.arange(N), -1).astype(np.int32)
    b_idx = np.where(on, np.arange(N), -1).astype(np.int32)
    return x, x_idx, b_idx, rewards


def _package_inputs(form, data, t):
    x, x_idx, b_idx, _ = data
    if form == "dense":
        return x[t].tolist()
    if form == "sparse":
        return [(int(i), float(x[t, i])) for i in x_idx[t][x_idx[t] >= 0]]
    return [int(i) for i in b_idx[t][b_idx[t] >= 0]]


def _transitions(form, data, gamma, dtype):
    """Our transitions `(x_t, r_{t+1}, gamma, x_{t+1})` for the package's steps
    `(x_t, r_t)`."""
    x, x_idx, b_idx, r = data
    steps = len(r) - 1
    discount = jnp.full(steps, gamma, dtype)
    reward = jnp.asarray(r[1:], dtype)
    if form == "dense":
        xs = jnp.asarray(x, dtype)
        return TDTimeStep(xs[:-1], reward, discount, xs[1:])
    idx = jnp.asarray(x_idx if form == "sparse" else b_idx)
    values = jnp.asarray(x, dtype) if form == "sparse" else None
    return SparseTDTimeStep(
        idx[:-1],
        None if values is None else values[:-1],
        reward,
        discount,
        idx[1:],
        None if values is None else values[1:],
    )


def _learner(form, setting, dtype):
    lam, alpha, _, eps, eta, decay, meta, eta_min = setting
    cls = SwiftTDLearner if form == "dense" else SparseSwiftTDLearner
    return cls(N, lam, alpha, eta, decay, meta, eta_min, eps, dtype=dtype)


@eqx.filter_jit
def _predictions(learner, transitions):
    def step(learner, timestep):
        learner, result = learner.learn(timestep)
        return learner, result.prediction

    return jax.lax.scan(step, learner, transitions)


def _package_run(form, setting, data):
    swifttd = pytest.importorskip(
        "swifttd", reason="the authors' swifttd package (wheels for CPython 3.11 on Linux)"
    )
    cls = {
        "dense": swifttd.SwiftTDNonSparse,
        "sparse": swifttd.SwiftTD,
        "binary": swifttd.SwiftTDBinaryFeatures,
    }[form]
    package = cls(N, *setting)
    rewards = data[3]
    return np.array(
        [
            package.step(_package_inputs(form, data, t), float(rewards[t]))
            for t in range(len(rewards))
        ]
    )


@pytest.fixture(scope="module")
def long_data():
    return _data(0, 10_001)


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("form", FORMS)
def test_float32_equals_the_package(form, setting, long_data):
    """10,000 steps: each form against the package form of its kind, in float32.
    Over the first 2,000 steps to relative 1e-5 (plus 1e-5 of the predictions' RMS
    where a prediction is near 0); over all 10,000 to 1e-3 of the RMS: float32
    rounding (summation order, `exp`) grows through the meta-learning, and the
    package's own float32 predictions part from exact (float64) arithmetic by up to
    3e-4 of the RMS here ("bound", dense)."""
    expected = _package_run(form, SETTINGS[setting], long_data)
    assert np.isfinite(expected).all()
    learner = _learner(form, SETTINGS[setting], jnp.float32)
    final, ours = _predictions(
        learner, _transitions(form, long_data, SETTINGS[setting][2], jnp.float32)
    )
    # Our prediction of x_t (made when x_t was the next state) is the package's return
    # at step t; the last step's comes from predict.
    ours = np.append(np.asarray(ours), float(final.value_old))
    rms = np.sqrt(np.mean(expected**2))
    np.testing.assert_allclose(ours[:2000], expected[:2000], rtol=1e-5, atol=1e-5 * rms)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-3 * rms)


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("form", FORMS)
def test_float64_equals_the_transcription(form, setting):
    data = _data(1, 2_001)
    setting_values = SETTINGS[setting]
    reference = (
        reference_swifttd.SwiftTDNonSparse if form == "dense" else reference_swifttd.SwiftTD
    )(N, *setting_values)
    step = reference.step_binary if form == "binary" else reference.step
    x = data[0].astype(np.float64)
    inputs = [
        x[t] if form == "dense" else _package_inputs(form, (x, *data[1:]), t)
        for t in range(len(data[3]))
    ]
    expected = np.array([step(inp, float(r)) for inp, r in zip(inputs, data[3], strict=True)])
    # the bound binds on some steps, so its code paths run
    assert reference.bound_steps > (100 if setting == "bound" else 5)
    with jax.enable_x64(True):
        learner = _learner(form, setting_values, jnp.float64)
        transitions = _transitions(form, (x, *data[1:]), setting_values[2], jnp.float64)
        final, ours = _predictions(learner, transitions)
        ours = np.append(np.asarray(ours), float(final.value_old))
        np.testing.assert_allclose(np.asarray(final.weights), reference.w, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(np.asarray(final.step_sizes), np.exp(reference.beta), rtol=1e-8)
    np.testing.assert_allclose(ours, expected, rtol=1e-9, atol=1e-12)


def test_the_package_forms_differ_and_ours_follow_each(long_data):
    """The package's dense and sparse forms, on the same signed inputs, part within a
    few steps (the sparse form drops negative traces and resets before the increment:
    see docs/swifttd.md); our forms follow their own kind (the tests above)."""
    setting = SETTINGS["readme"]
    dense = _package_run("dense", setting, long_data)[:5000]
    sparse = _package_run("sparse", setting, long_data)[:5000]
    parted = np.flatnonzero(np.abs(dense - sparse) > 1e-3)
    assert parted[0] < 20 and np.abs(dense - sparse).max() > 0.5
    # On non-negative features, with the bound never binding (and fixed step-sizes, as
    # unbounded ones diverge there), they agree.
    x = np.abs(long_data[0][:500])
    data = (x, np.where(x != 0, np.arange(N), -1), None, long_data[3][:500])
    calm = (0.95, 1e-2, 0.99, 1e-5, 100.0, 0.999, 0.0, 1e-10)
    np.testing.assert_allclose(
        _package_run("dense", calm, data), _package_run("sparse", calm, data), rtol=1e-4, atol=1e-5
    )


@pytest.mark.slow
def test_small_trace_capacity_and_many_features():
    """5,000 features, 5 active binary ones, 1,200 trace slots (a trace lives about
    log(1e-5) / log(0.99 * 0.95) = 186 steps): no trace is dropped and the predictions
    equal the package's; 100 slots overflow, and it is counted."""
    swifttd = pytest.importorskip("swifttd", reason="the authors' swifttd package")
    rng = np.random.default_rng(3)
    n, steps, k = 5000, 2000, 5
    idx = np.stack([rng.choice(n, k, replace=False) for _ in range(steps)]).astype(np.int32)
    rewards = rng.normal(size=steps).astype(np.float32)
    setting = SETTINGS["readme"]
    package = swifttd.SwiftTDBinaryFeatures(n, *setting)
    expected = np.array([package.step(idx[t].tolist(), float(rewards[t])) for t in range(steps)])
    transitions = SparseTDTimeStep(
        jnp.asarray(idx[:-1]),
        None,
        jnp.asarray(rewards[1:]),
        jnp.full(steps - 1, setting[2]),
        jnp.asarray(idx[1:]),
        None,
    )
    lam, alpha, _, eps, eta, decay, meta, eta_min = setting
    learner = SparseSwiftTDLearner(
        n, lam, alpha, eta, decay, meta, eta_min, eps, trace_capacity=1200
    )
    final, ours = _predictions(learner, transitions)
    assert int(final.dropped_traces) == 0
    rms = np.sqrt(np.mean(expected**2))
    np.testing.assert_allclose(ours, expected[:-1], rtol=1e-5, atol=1e-5 * rms)
    small = SparseSwiftTDLearner(n, lam, alpha, eta, decay, meta, eta_min, eps, trace_capacity=100)
    assert int(_predictions(small, transitions)[0].dropped_traces) > 0


@pytest.mark.slow  # four compilations, shared by the settings
def test_the_slot_set_equals_the_mask(x64):
    """Fewer slots than features (features take, leave and retake slots, and a
    feature whose trace has gone keeps its state in a slot until another feature
    needs it) computes what a slot per feature computes, in float64: predictions
    and every field of the final state, `(index, value)` and binary features, with
    episode ends and truncations."""
    rng = np.random.default_rng(7)
    n, k, steps, capacity = 3000, 4, 1500, 900
    idx = np.stack([rng.choice(n, k, replace=False) for _ in range(steps + 1)]).astype(np.int32)
    idx[rng.uniform(size=idx.shape) < 0.2] = -1  # some padding
    values = rng.normal(size=idx.shape)
    assert len(np.unique(idx[idx >= 0])) > 2 * capacity  # the slots turn over
    end = rng.uniform(size=steps) < 0.02
    truncated = ~end & (rng.uniform(size=steps) < 0.02)
    for (lam, alpha, gamma, eps, eta, decay, meta, eta_min), binary in itertools.product(
        SETTINGS.values(), (False, True)
    ):
        transitions = SparseTDTimeStep(
            jnp.asarray(idx[:-1]),
            None if binary else jnp.asarray(values[:-1]),
            jnp.asarray(rng.normal(size=steps)),
            jnp.asarray(np.where(end, 0.0, gamma)),
            jnp.asarray(idx[1:]),
            None if binary else jnp.asarray(values[1:]),
            jnp.asarray(truncated),
        )
        runs = [
            _predictions(
                SparseSwiftTDLearner(
                    n, lam, alpha, eta, decay, meta, eta_min, eps, c, dtype=jnp.float64
                ),
                transitions,
            )
            for c in (None, capacity)
        ]
        (mask, expected), (slots, ours) = runs
        assert int(slots.dropped_traces) == 0
        np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-12)
        for name, a, b in zip(SwiftTDState._fields, slots.state, mask.state, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=name)


def test_fixed_unbounded_step_sizes_are_true_online_td():
    """With `meta_step_size = 0` and a bound that never binds, SwiftTD is True Online
    TD(lambda) with step-size `initial_step_size` (its trace is the dutch trace times
    alpha), episode ends and truncations included."""
    data = test_true_online_td._episodes(0)
    with jax.enable_x64(True):
        expected, _ = test_true_online_td._scan(
            TrueOnlineTDLearner(5, 0.05, 0.9, use_bias=False, dtype=jnp.float64), data
        )
        swift = SwiftTDLearner(5, 0.9, 0.05, 1e6, 1.0, 0.0, 1e-10, 0.0, dtype=jnp.float64)
        ours, _ = test_true_online_td._scan(swift, data)
    np.testing.assert_allclose(ours, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.slow  # about 15 s: two OnlineLearner compilations, a runner and a vmapped one
def test_runner_seeds_online_checkpoint_and_config(tmp_path):
    stream = RandomWalkChainStream(5)
    learner = SwiftTDLearner(5, lambda_=0.8)
    result = run_learning_loop(learner, stream, 3000, jax.random.key(0))
    error = np.sqrt(np.mean((result.learner.weights - stream.true_values()) ** 2))
    assert error < 0.15  # 0.47 at the start
    keys = jax.random.split(jax.random.key(1), 3)
    batched = jax.vmap(lambda k: run_learning_loop(learner, stream, 200, k).learner.weights)(keys)
    assert batched.shape == (3, 5)
    online = alberta_eqx.OnlineLearner(SwiftTDLearner(3))
    functional = SwiftTDLearner(3)
    for x, y in [([1.0, 0.0, 2.0], 1.0), ([0.5, 1.0, 0.0], -1.0), ([0.0, 1.0, 1.0], 0.5)]:
        out = online.update(np.asarray(x, np.float32), np.float32(y))
        functional, res = functional.update(jnp.asarray(x), y)
        np.testing.assert_allclose(out.prediction, res.prediction, rtol=1e-6)
    np.testing.assert_allclose(online.learner.weights, functional.weights, rtol=1e-6)
    sparse = SparseSwiftTDLearner(3, trace_capacity=3)
    sparse_online = alberta_eqx.OnlineLearner(sparse)
    sparse_online.update(np.asarray([1.0, 0.0, 2.0], np.float32), np.float32(1.0))
    np.testing.assert_allclose(sparse_online.learner.weights, functional_first(), rtol=1e-6)
    path = tmp_path / "swifttd.ckpt"
    alberta_eqx.save_checkpoint(path, result.learner)
    restored = alberta_eqx.load_checkpoint(path, learner).learner
    np.testing.assert_array_equal(restored.state.beta, result.learner.state.beta)
    for module in (
        SwiftTDLearner(4, 0.5, 0.02, 0.3, 0.9, 1e-2, 1e-8, 1e-4),
        SparseSwiftTDLearner(40, 0.5, 0.02, 0.3, 0.9, 1e-2, 1e-8, 1e-4, trace_capacity=7),
    ):
        rebuilt = from_config(to_config(module))
        assert type(rebuilt) is type(module)
        for name in (
            "lambda_",
            "initial_step_size",
            "max_step_size",
            "step_size_decay",
            "meta_step_size",
            "eta_min",
            "epsilon",
        ):
            assert float(getattr(rebuilt, name)) == pytest.approx(float(getattr(module, name)))
    assert rebuilt.trace_capacity == 7 and rebuilt.feature_dim == 40


def functional_first():
    """The dense learner's weights after the first event of the sparse online test."""
    return SwiftTDLearner(3).update(jnp.asarray([1.0, 0.0, 2.0]), 1.0)[0].weights


@pytest.mark.parametrize(
    ("argument", "kwargs"),
    [
        ("max_step_size", {"max_step_size": 0.0}),
        ("max_step_size", {"max_step_size": -1.0}),
        ("step_size_decay", {"step_size_decay": 0.0}),
        ("step_size_decay", {"step_size_decay": 1.5}),
        ("lambda_", {"lambda_": 1.1}),
        ("lambda_", {"lambda_": -0.1}),
        ("initial_step_size", {"initial_step_size": 0.0}),
    ],
)
def test_bad_hyperparameters_are_named(argument, kwargs):
    for cls in (SwiftTDLearner, SparseSwiftTDLearner):
        with pytest.raises(ValueError, match=argument):
            cls(4, **kwargs)


def test_an_index_beyond_the_feature_count_is_refused():
    learner = SparseSwiftTDLearner(4)
    good = jnp.asarray([0, 1, -1])
    bad = jnp.asarray([0, 4, -1])
    with pytest.raises(ValueError, match="next_indices"):
        learner.learn(SparseTDTimeStep(good, None, 1.0, 0.9, bad, None))
    with pytest.raises(Exception, match="indices must be < feature_dim"):
        jax.jit(lambda m, i: m.learn(SparseTDTimeStep(i, None, 1.0, 0.9, good, None)))(
            learner, bad
        )
