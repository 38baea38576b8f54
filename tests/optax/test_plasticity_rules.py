"""UPGD, shrink-and-perturb, L2 Init and weight clipping as optax transformations,
against float64 NumPy transcriptions of the papers' rules and of the authors' PyTorch
updates (github.com/mohmdelsayed/upgd, github.com/mohmdelsayed/weight-clipping), on a
small tanh network learning a regression stream for 300 steps."""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import alberta_eqx.optax as aeo
from alberta_eqx import MLPLearner
from alberta_eqx.nn import MLP

STEPS, N_IN, N_HID, SEED = 300, 3, 6, 7
SHAPES = [(N_HID, N_IN), (N_HID,), (1, N_HID), (1,)]  # w1, b1, w2, b2 (Equinox layout)


# float64 for the whole module (the fixture is in tests/conftest.py)
pytestmark = pytest.mark.usefixtures("x64_module")


def _initial(seed=0):
    """Equinox's default initialisation: uniform in +-1/sqrt(fan_in), biases too."""
    rng = np.random.default_rng(seed)
    return [
        rng.uniform(-1, 1, s) / np.sqrt(N_IN if i < 2 else N_HID) for i, s in enumerate(SHAPES)
    ]


def _stream():
    """A regression stream whose target changes sign halfway."""
    rng = np.random.default_rng(1)
    xs = rng.normal(size=(STEPS, N_IN))
    ys = np.sin(2 * xs[:, 0]) + xs[:, 1] * xs[:, 2]
    ys[STEPS // 2 :] *= -1
    return xs, ys


def _numpy_grads(p, x, y):
    """The loss `(y - f(x))^2 / 2`'s gradient for `f(x) = w2 tanh(w1 x + b1) + b2`."""
    w1, b1, w2, b2 = p
    h = np.tanh(w1 @ x + b1)
    delta = y - (w2 @ h + b2)[0]
    dh = -delta * w2[0] * (1 - h * h)
    return [np.outer(dh, x), dh, -delta * h[None, :], -delta * np.ones(1)]


@functools.cache
def _noise(seed):
    """The documented noise schedule, transcribed: step t (from 1), leaf i draws
    `normal(split(fold_in(PRNGKey(seed), t), 4)[i])`."""

    def step(t):
        keys = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed), t), len(SHAPES))
        return [jax.random.normal(k, s, jnp.float64) for k, s in zip(keys, SHAPES, strict=True)]

    return [np.asarray(a) for a in jax.jit(jax.vmap(step))(jnp.arange(1, STEPS + 1))]


def _loss(p, x, y):
    """The network's squared error on one example (the stream's)."""
    w1, b1, w2, b2 = p
    return 0.5 * (y - (w2 @ jnp.tanh(w1 @ x + b1) + b2)[0]) ** 2


def _run_jax(tx):
    """`tx` inside `jit`, on the stream; the parameters after every step."""
    xs, ys = _stream()
    params = tuple(jnp.asarray(p) for p in _initial())

    @jax.jit
    def run(params):
        def step(carry, xy):
            params, state = carry
            grads = jax.grad(_loss)(params, *xy)
            updates, state = tx.update(grads, state, params)
            params = optax.apply_updates(params, updates)
            return (params, state), params

        return jax.lax.scan(step, (params, tx.init(params)), (jnp.asarray(xs), jnp.asarray(ys)))[1]

    return [np.asarray(a) for a in run(params)]


def _run_numpy(rule):
    """`rule(t, p, g) -> p` (t from 1) on the stream; the parameters after every step."""
    xs, ys = _stream()
    p = _initial()
    history = []
    for t in range(1, STEPS + 1):
        p = rule(t, p, _numpy_grads(p, xs[t - 1], ys[t - 1]))
        history.append(p)
    return [np.stack([h[i] for h in history]) for i in range(len(SHAPES))]


def _close(got, want, rtol=1e-9, atol=1e-12):
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


def _upgd_reference(lr, beta, sigma, wd, protect, seed):
    """The authors' `FirstOrderGlobalUPGD` (protect) and
    `FirstOrderNonprotectingGlobalUPGD` step, transcribed: the utilities and their
    maximum first, then each parameter moved in place."""
    noise = _noise(seed)
    avg = [np.zeros(s) for s in SHAPES]

    def rule(t, p, g):
        global_max = -np.inf
        for i in range(len(p)):
            avg[i] = beta * avg[i] + (1 - beta) * (-g[i] * p[i])
            global_max = max(global_max, avg[i].max())
        out = []
        for i in range(len(p)):
            bias_correction = 1 - beta**t
            xi = noise[i][t - 1] * sigma
            scaled = 1 / (1 + np.exp(-(avg[i] / bias_correction) / global_max))
            step = (g[i] + xi) * (1 - scaled) if protect else g[i] + xi * (1 - scaled)
            out.append(p[i] * (1 - lr * wd) - lr * step)
        return out

    return rule


@pytest.mark.parametrize(
    ("protect", "wd"), [(True, 0.01), (False, 0.0)], ids=["protecting", "non-protecting"]
)
@pytest.mark.slow
def test_upgd_follows_the_reference(protect, wd):
    lr, beta, sigma = 0.05, 0.9, 0.1
    got = _run_jax(
        aeo.upgd(lr, SEED, utility_decay=beta, sigma=sigma, weight_decay=wd, protect=protect)
    )
    want = _run_numpy(_upgd_reference(lr, beta, sigma, wd, protect, SEED))
    _close(got, want)
    # The utility gate acted: the protecting variant did not follow plain SGD's path.
    sgd = _run_numpy(lambda t, p, g: [w - lr * gi for w, gi in zip(p, g, strict=True)])
    assert max(np.abs(a[-1] - b[-1]).max() for a, b in zip(want, sgd, strict=True)) > 1e-2


def test_scale_by_upgd_composes_with_autostep():
    """`scale_by_upgd` before Autostep gives Autostep the UPGD direction as its
    gradient: the chain equals Autostep run on the transcribed directions."""
    beta, sigma = 0.9, 0.1
    got = _run_jax(
        optax.chain(
            aeo.scale_by_upgd(SEED, beta, sigma),
            aeo.autostep(meta_step_size=0.01, initial_step_size=0.05),
        )
    )
    noise = _noise(SEED)
    avg = [np.zeros(s) for s in SHAPES]
    tx = aeo.autostep(meta_step_size=0.01, initial_step_size=0.05)
    state = tx.init(tuple(jnp.asarray(p) for p in _initial()))
    update = jax.jit(tx.update)

    def rule(t, p, g):
        nonlocal state
        avg[:] = [beta * a + (1 - beta) * (-gi * w) for a, gi, w in zip(avg, g, p, strict=True)]
        eta = max(a.max() for a in avg)
        s = [1 / (1 + np.exp(-a / (1 - beta**t) / eta)) for a in avg]
        d = [(gi + sigma * n[t - 1]) * (1 - si) for gi, n, si in zip(g, noise, s, strict=True)]
        updates, state = update(tuple(jnp.asarray(x) for x in d), state)
        return [w + np.asarray(u) for w, u in zip(p, updates, strict=True)]

    _close(got, _run_numpy(rule), rtol=1e-8, atol=1e-10)


def test_shrink_and_perturb_follows_the_reference():
    """The UPGD authors' `ShrinkandPerturb(lr, decay, sigma)`:
    `p <- p (1 - lr decay) - lr (g + sigma xi)`, which is `lms(lr)` then
    `shrink_and_perturb(lr decay, lr sigma)` with the noise's sign flipped (`xi` and
    `-xi` are both standard normal)."""
    lr, decay, sigma = 0.05, 0.1, 0.5
    tx = optax.chain(aeo.lms(lr), aeo.shrink_and_perturb(lr * decay, lr * sigma, SEED))
    noise = _noise(SEED)

    def rule(t, p, g):
        return [
            w * (1 - lr * decay) - lr * (gi - sigma * n[t - 1])
            for w, gi, n in zip(p, g, noise, strict=True)
        ]

    _close(_run_jax(tx), _run_numpy(rule))


def test_l2_init_follows_the_reference():
    """The weight-clipping authors' `L2InitSGD`: SGD with weight decay `lambda`, then
    `p += lr lambda p_0`, the gradient step on `L + (lambda/2)||w - w_0||^2`."""
    lr, lam = 0.05, 0.5
    w0 = _initial()

    def rule(t, p, g):
        return [w - lr * (gi + lam * w) + lr * lam * i for w, gi, i in zip(p, g, w0, strict=True)]

    want = _run_numpy(rule)
    _close(_run_jax(optax.chain(aeo.l2_init(lam), aeo.lms(lr))), want)
    # The pull towards w_0 acted: SGD alone ends elsewhere.
    sgd = _run_numpy(lambda t, p, g: [w - lr * gi for w, gi in zip(p, g, strict=True)])
    assert max(np.abs(a[-1] - b[-1]).max() for a, b in zip(want, sgd, strict=True)) > 1e-2


def test_weight_clipping_follows_the_reference():
    """The authors' `WeightClippingSGD`: an SGD step, then every parameter clamped to
    `+-kappa / sqrt(fan_in)`, a bias with its weight's fan-in."""
    lr, kappa = 0.2, 1.0
    bounds = [kappa / np.sqrt(N_IN)] * 2 + [kappa / np.sqrt(N_HID)] * 2

    def rule(t, p, g):
        return [np.clip(w - lr * gi, -b, b) for w, gi, b in zip(p, g, bounds, strict=True)]

    want = _run_numpy(rule)
    _close(_run_jax(optax.chain(aeo.lms(lr), aeo.weight_clipping(kappa))), want, atol=1e-15)
    # Some weights sat at their bound: the clip bound.
    assert sum(np.sum(np.isclose(np.abs(w), b)) for w, b in zip(want, bounds, strict=True)) > 100


def test_weight_clipping_with_given_bounds_after_autostep():
    """Bounds passed in (one per leaf) clip Autostep's updates: the chain equals
    Autostep followed by the transcribed clip at every step."""
    kappa, bounds = 1.0, (0.3, 0.2, 0.25, 0.1)
    tx = aeo.autostep(meta_step_size=0.01, initial_step_size=0.2)
    state = tx.init(tuple(jnp.asarray(p) for p in _initial()))
    update = jax.jit(tx.update)

    def rule(t, p, g):
        nonlocal state
        updates, state = update(tuple(jnp.asarray(x) for x in g), state)
        return [
            np.clip(w + np.asarray(u), -kappa * b, kappa * b)
            for w, u, b in zip(p, updates, bounds, strict=True)
        ]

    want = _run_numpy(rule)
    got = _run_jax(optax.chain(tx, aeo.weight_clipping(kappa, bounds=bounds)))
    _close(got, want, rtol=1e-8, atol=1e-10)
    assert sum(np.sum(np.isclose(np.abs(w), b)) for w, b in zip(want, bounds, strict=True)) > 100


@pytest.mark.parametrize(
    ("tx", "plain"),
    [
        (aeo.upgd(0.05, SEED, sigma=0.0, protect=False), aeo.lms(0.05)),
        (optax.chain(aeo.l2_init(0.0), aeo.lms(0.05)), aeo.lms(0.05)),
        (optax.chain(aeo.lms(0.05), aeo.shrink_and_perturb(0.0, 0.0, SEED)), aeo.lms(0.05)),
        (
            optax.chain(
                aeo.autostep(meta_step_size=0.01, initial_step_size=0.05), aeo.weight_clipping(1e6)
            ),
            aeo.autostep(meta_step_size=0.01, initial_step_size=0.05),
        ),
    ],
    ids=["upgd", "l2_init", "shrink_and_perturb", "weight_clipping"],
)
def test_zero_strength_is_the_wrapped_rule_exactly(tx, plain):
    """At every step, under `jit`, the update equals the wrapped rule's on the same
    gradient and parameters, bit for bit. (Compared as updates: XLA may fuse
    `w + u` into one multiply-add in one program and not in the other.)"""
    xs, ys = _stream()
    params = tuple(jnp.asarray(p) for p in _initial())

    @jax.jit
    def run(params):
        def step(carry, xy):
            params, state, plain_state = carry
            grads = jax.grad(_loss)(params, *xy)
            updates, state = tx.update(grads, state, params)
            expected, plain_state = plain.update(grads, plain_state, params)
            return (optax.apply_updates(params, updates), state, plain_state), (updates, expected)

        carry = (params, tx.init(params), plain.init(params))
        return jax.lax.scan(step, carry, (jnp.asarray(xs), jnp.asarray(ys)))[1]

    got, want = run(params)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)
    assert np.abs(np.asarray(got[0])).max() > 0  # the weights did move


def test_noise_is_deterministic_for_a_key():
    params = (jnp.zeros((3, 2)), jnp.zeros(3))
    grads = (jnp.ones((3, 2)), jnp.ones(3))

    def run(key):
        tx = optax.chain(aeo.lms(0.1), aeo.shrink_and_perturb(0.01, 0.1, key))
        return tx.update(grads, tx.init(params), params)[0]

    same = run(jax.random.key(3)), run(jax.random.key(3))
    for a, b in zip(*same, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(run(jax.random.key(3))[0], run(jax.random.key(4))[0])
    # An int seed is `PRNGKey(seed)`.
    np.testing.assert_array_equal(run(3)[0], run(jax.random.PRNGKey(3))[0])


def test_mlp_learner_keeps_clipped_weights_within_bounds():
    """In `MLPLearner` (Equinox's default init), L2 Init, Autostep and weight clipping
    chained: every parameter stays within kappa times its layer's bound."""
    kappa = 1.5
    tx = optax.chain(
        aeo.l2_init(1e-3),
        aeo.autostep(meta_step_size=0.01, initial_step_size=0.1),
        aeo.weight_clipping(kappa),
    )
    learner = MLPLearner(
        MLP(
            N_IN,
            "scalar",
            (N_HID,),
            key=jax.random.key(0),
            activation=jax.nn.relu,
            layer_norm=False,
        ),
        tx,
    )
    xs, ys = _stream()
    learner, _ = jax.lax.scan(lambda ln, xy: ln.update(*xy), learner, (xs, ys))
    layers = learner.model.layers
    for layer, fan_in in zip(layers, (N_IN, N_HID), strict=True):
        for p in (layer.weight, layer.bias):
            assert np.abs(np.asarray(p)).max() <= kappa / np.sqrt(fan_in) * (1 + 1e-12)
    params = eqx.filter(learner.model, eqx.is_inexact_array)
    assert all(np.all(np.isfinite(p)) for p in jax.tree.leaves(params))


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: aeo.upgd(0.1, 0, utility_decay=1.0), "utility_decay"),
        (lambda: aeo.upgd(0.1, 0, sigma=-1.0), "sigma"),
        (lambda: aeo.upgd(0.1, 0, weight_decay=-0.1), "weight_decay"),
        (lambda: aeo.upgd(0.0, 0), "step_size"),
        (lambda: aeo.shrink_and_perturb(1.0, 0.1, 0), "shrink"),
        (lambda: aeo.shrink_and_perturb(0.1, float("nan"), 0), "sigma"),
        (lambda: aeo.l2_init(-1.0), "strength"),
        (lambda: aeo.weight_clipping(0.0), "kappa"),
        (lambda: aeo.weight_clipping(1.0, bounds=(1.0, -1.0)), "bounds"),
    ],
)
def test_bad_hyperparameters_are_refused_by_name(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def test_bad_keys_and_missing_params_are_refused():
    with pytest.raises(TypeError, match="key"):
        aeo.shrink_and_perturb(0.1, 0.1, 1.5)
    with pytest.raises(TypeError, match="key"):
        aeo.scale_by_upgd(jnp.zeros(2))
    tx = aeo.l2_init(0.1)
    params = (jnp.zeros(2),)
    with pytest.raises(ValueError, match="params"):
        tx.update(params, tx.init(params))
    with pytest.raises(ValueError, match="bounds"):
        aeo.weight_clipping(1.0).init((jnp.zeros(4),))  # raveled: no layer to read
