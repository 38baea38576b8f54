"""to_config / from_config round-trip every public module of alberta_eqx.

The modules are enumerated, not listed: every concrete `eqx.Module` class exported by
`alberta_eqx` or by one of its public subpackages (`alberta_eqx.control`, ...). A
newly exported class is round-tripped with no argument (or a feature count of 3); one
that needs more gets an example below, or the test fails.
"""

import importlib
import inspect
import json
import pkgutil

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import alberta_eqx
import alberta_eqx.control as aec
import alberta_eqx.optax as aeo
from alberta_eqx.config import Configurable, from_config, to_config

KEY = jax.random.key(0)


def _questions(policies: bool) -> alberta_eqx.GVFQuestion:
    """Two GVF questions over 3 features: the reward (gamma 0.9) and feature 1 (gamma 0)."""
    return alberta_eqx.GVFQuestion(
        jnp.eye(4)[jnp.array([0, 2])],
        jnp.array([0.9, 0.0]),
        jnp.array([0.5, 0.25]),
        jnp.array([[0.25, 0.75], [1.0, 0.0]]) if policies else None,
    )


def _mountain_car_tiles(**kwargs) -> alberta_eqx.TileCoder:
    return alberta_eqx.TileCoder(4, jnp.array([8 / 1.7, 8 / 0.14]), **kwargs)


# Example constructions, several per class where its options take different paths
# (every optional piece set away from its default somewhere).
EXAMPLES = {
    "LinearLearner": [
        lambda: alberta_eqx.LinearLearner(
            4, alberta_eqx.Autostep(0.05), alberta_eqx.WelfordNormalizer(), use_bias=False
        ),
        lambda: alberta_eqx.LinearLearner(
            2, alberta_eqx.ObGDBounding(alberta_eqx.IDBD(0.02, meta_step_size=0.1), kappa=3.0)
        ),
    ],
    "MinAtarNetwork": [
        lambda: alberta_eqx.nn.MinAtarNetwork((10, 10, 4), 3, key=KEY, hidden_size=8, channels=3)
    ],
    "TDLinearLearner": [lambda: alberta_eqx.TDLinearLearner(4, alberta_eqx.IDBD(), 0.9)],
    "MLPLearner": [
        lambda: alberta_eqx.MLPLearner(
            alberta_eqx.MLP(3, "scalar", (4,), key=KEY, activation=jax.nn.relu, layer_norm=False),
            aeo.idbd(meta_step_size=0.01),
        ),
        lambda: alberta_eqx.MLPLearner(
            alberta_eqx.MLP(3, "scalar", (4, 5), key=KEY, sparsity=0.5),
            aeo.autostep(meta_step_size=0.02),
            normalizer=alberta_eqx.EMANormalizer(0.9),
            head_optimizer=aeo.lms(0.1),
        ),
        # a chain of alberta_eqx.optax pieces: the ObGD bound around IDBD
        lambda: alberta_eqx.MLPLearner(
            alberta_eqx.MLP(3, "scalar", (4,), key=KEY, activation=jax.nn.relu, layer_norm=False),
            aeo.chain(aeo.idbd(meta_step_size=0.01, initial_step_size=0.02), aeo.obgd_bound(3.0)),
            flatten=True,
        ),
        # optax's own transformations, through alberta_eqx.optax.inject_hyperparams
        lambda: alberta_eqx.MLPLearner(
            alberta_eqx.MLP(3, "scalar", (), key=KEY, activation=jnp.tanh, layer_norm=False),
            aeo.inject_hyperparams(optax.sgd)(learning_rate=0.1, momentum=0.5),
        ),
        lambda: alberta_eqx.MLPLearner(
            alberta_eqx.MLP(3, "scalar", (4,), key=KEY, activation=jax.nn.relu, layer_norm=False),
            aeo.inject_hyperparams(aeo.lms, static_args="step_size")(step_size=0.1),
            head_optimizer=aeo.inject_hyperparams(optax.adam)(learning_rate=1e-3),
        ),
    ],
    "TDMLPLearner": [
        lambda: alberta_eqx.TDMLPLearner(
            alberta_eqx.MLP(3, "scalar", (4,), key=KEY, activation=jax.nn.relu, layer_norm=False),
            aeo.obgd(),
        ),
        lambda: alberta_eqx.TDMLPLearner(
            alberta_eqx.MLP(3, "scalar", (4, 4), key=KEY, sparsity=0.9),
            aeo.adaptive_obgd(0.5, kappa=3.0),
            lambda_=0.8,
            head_optimizer=aeo.trace_sgd(0.1),
            trace_type="replacing",
        ),
    ],
    "MultiHeadLearner": [
        lambda: alberta_eqx.MultiHeadLearner(
            alberta_eqx.MLP(5, 3, (8, 8), key=KEY, sparsity=0.9),
            aeo.obgd(1.0, kappa=2.0),
            key=KEY,
            head_optimizer=aeo.autostep(),
            unit_reset=alberta_eqx.ContinualBackprop(1e-3),
            normalizer=alberta_eqx.EMANormalizer(0.9),
        ),
        lambda: alberta_eqx.MultiHeadLearner(
            alberta_eqx.MLP(2, 1, (), key=KEY, layer_norm=False), aeo.lms(0.1)
        ),
    ],
    "MLP": [
        lambda: alberta_eqx.MLP(3, 2, (4,), key=KEY),
        lambda: alberta_eqx.MLP(
            3, "scalar", (4, 5), key=KEY, activation=jax.nn.tanh, layer_norm=False, sparsity=0.5
        ),
    ],
    "ObGDBounding": [lambda: alberta_eqx.ObGDBounding(alberta_eqx.LMS(1.0), kappa=2.0)],
    "ScaledStreamWrapper": [
        lambda: alberta_eqx.ScaledStreamWrapper(
            alberta_eqx.DriftingTargetStream(3), jnp.array([1.0, 2.0, 3.0]), 2.0
        )
    ],
    "BitFlipStream": [
        lambda: alberta_eqx.BitFlipStream(8, 4, 100, 6, flip_one=False, num_targets=3),
    ],
    "GVFQuestion": [lambda: _questions(False), lambda: _questions(True)],
    "Horde": [
        lambda: alberta_eqx.Horde(
            _questions(False), alberta_eqx.TDLinearLearner(3, alberta_eqx.IDBD(0.02))
        ),
        lambda: alberta_eqx.Horde(
            _questions(True),
            alberta_eqx.GradientTDLearner(3, "gtd", 0.05, 0.2),
            names=("reward", "feature"),
        ),
    ],
    "GradientTDLearner": [lambda: alberta_eqx.GradientTDLearner(3, "gq", 0.05, lambda_=0.5)],
    "TrunkHorde": [
        lambda: alberta_eqx.TrunkHorde(
            _questions(False),
            alberta_eqx.MLP(3, 2, (4,), key=KEY, sparsity=0.9),
            aeo.obgd(0.5),
            names=("reward", "feature"),
        ),
    ],
    "TileCoder": [
        lambda: _mountain_car_tiles(size=4096),
        lambda: _mountain_car_tiles(low=[-1.2, -0.07], high=[0.5, 0.07], int_sizes=(3,)),
    ],
    "SarsaLambda": [
        lambda: alberta_eqx.SarsaLambda(_mountain_car_tiles(size=4096), 3, 0.5 / 4),
        lambda: alberta_eqx.SarsaLambda(
            _mountain_car_tiles(low=[-1.2, -0.07], high=[0.5, 0.07], int_sizes=(3,)),
            3,
            0.1,
            0.8,
            0.95,
            aec.Softmax(0.5),
            target="q",
        ),
    ],
    "MountainCar": [lambda: alberta_eqx.MountainCar(2)],
    "SwiftSarsa": [lambda: aec.SwiftSarsa(3, 2, 0.9, 0.2, 0.5, 0.05, meta_step_size=0.01)],
    "StreamAC": [lambda: alberta_eqx.StreamAC(4, 2, key=KEY, hidden_sizes=(8,), sparsity=0.5)],
    "StreamQ": [
        lambda: aec.StreamQ(4, 3, key=KEY, hidden_sizes=(8, 8), kappa=3.0, target="sarsa"),
    ],
    "StreamingWrapper": [
        lambda: aec.StreamingWrapper(alberta_eqx.MountainCar(), 0.9, 200, scale_reward=False)
    ],
    "FixedPolicy": [lambda: aec.FixedPolicy([0.25, 0.75])],
    "SuttonExperiment1Stream": [lambda: alberta_eqx.SuttonExperiment1Stream(3, 4, 10)],
    "RandomWalkChainStream": [lambda: alberta_eqx.RandomWalkChainStream(7, 0.9)],
    "ClassifierLearner": [
        lambda: alberta_eqx.ClassifierLearner(
            alberta_eqx.MLP(4, 3, (5,), key=KEY, activation=jax.nn.relu, layer_norm=False),
            aeo.chain(aeo.l2_init(0.01), aeo.lms(0.1), aeo.weight_clipping(2.0)),
        ),
        lambda: alberta_eqx.ClassifierLearner(
            alberta_eqx.MLP(4, 3, (5,), key=KEY, activation=jax.nn.relu, layer_norm=False),
            aeo.upgd(0.1, 3, sigma=0.01, protect=False),
        ),
        # a typed PRNG key is written as its raw data, which upgd reads back
        lambda: alberta_eqx.ClassifierLearner(
            alberta_eqx.MLP(4, 2, (), key=KEY, activation=jax.nn.relu, layer_norm=False),
            aeo.upgd(0.1, jax.random.key(3)),
        ),
    ],
}
# Public modules that are state, not a construction: to_config must refuse them with
# a clear error (the test checks that it does).
STATE = {
    "ControlRun": lambda: alberta_eqx.control.start_control(
        aec.SarsaLambda(_mountain_car_tiles(size=64), 3, 0.1),
        alberta_eqx.MountainCar(),
        KEY,
        max_episodes=2,
    ),
}


def _public_modules() -> dict[str, type]:
    """Every concrete eqx.Module class exported by alberta_eqx or its public packages."""
    packages = [alberta_eqx] + [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(alberta_eqx.__path__, "alberta_eqx.")
        if info.ispkg and not any(p.startswith("_") for p in info.name.split("."))
    ]
    classes = {}
    for package in packages:
        public = getattr(package, "__all__", [n for n in dir(package) if n[0] != "_"])
        for name in public:
            obj = getattr(package, name)
            if (
                isinstance(obj, type)
                and obj.__module__.startswith("alberta_eqx")
                and issubclass(obj, eqx.Module)
                and not inspect.isabstract(obj)
                and not obj.__name__.startswith("Abstract")
            ):
                classes.setdefault(obj.__name__, obj)  # aliases: one entry per class
    return classes


MODULES = _public_modules()


def _cases():
    cases = []
    for name in sorted(MODULES):
        if name in STATE:
            continue
        builders = EXAMPLES.get(name, [None])
        cases += [pytest.param(name, b, id=f"{name}-{i}") for i, b in enumerate(builders)]
    return cases


def _default(name: str) -> eqx.Module:
    cls = MODULES[name]
    for args in ((), (3,)):  # no argument, or a feature count
        try:
            return cls(*args)
        except TypeError:
            continue
    pytest.fail(f"{name} needs constructor arguments: add an example to EXAMPLES")


def test_examples_and_state_name_public_modules():
    assert set(EXAMPLES) <= set(MODULES), set(EXAMPLES) - set(MODULES)
    assert set(STATE) <= set(MODULES), set(STATE) - set(MODULES)
    # the enumeration finds the subpackages' modules too
    assert {"MLP", "StreamQ", "FixedPolicy", "Horde", "TileCoder"} <= set(MODULES)


@pytest.mark.parametrize(("name", "build"), _cases())
@pytest.mark.slow
def test_round_trip(name, build):
    module = build() if build is not None else _default(name)
    assert type(module) is MODULES[name]
    config = to_config(module)
    text = json.dumps(config, allow_nan=False)  # plain JSON
    # KEY goes to every construction in the config that draws (a learner's network too)
    rebuilt = from_config(json.loads(text), key=KEY)
    assert type(rebuilt) is type(module)
    assert to_config(rebuilt) == config
    # The same construction: the same arrays at the same paths, equal in value (the
    # examples draw their weights from KEY, and from_config is given KEY again).
    # Static parts such as an optax transformation's functions are rebuilt as new
    # objects: the config equality above compares their arguments.
    a = jax.tree_util.tree_leaves_with_path(eqx.filter(module, eqx.is_array))
    b = jax.tree_util.tree_leaves_with_path(eqx.filter(rebuilt, eqx.is_array))
    assert [path for path, _ in a] == [path for path, _ in b]
    for (path, x), (_, y) in zip(a, b, strict=True):
        assert x.shape == y.shape and x.dtype == y.dtype, path
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_array_equal(x, y, err_msg=jax.tree_util.keystr(path))


def test_round_trip_of_a_learned_module_is_its_construction():
    """A config holds the construction: after learning, it is still the same."""
    learner = alberta_eqx.MLPLearner(
        alberta_eqx.MLP(
            3, "scalar", (4,), key=KEY, sparsity=0.5, activation=jax.nn.relu, layer_norm=False
        ),
        aeo.idbd(meta_step_size=0.01),
    )
    config = to_config(learner)
    # jitted: one program each, not one per operation of an eager update
    learned, _ = eqx.filter_jit(lambda learner, x, y: learner.update(x, y))(
        learner, jnp.ones(3), 1.0
    )
    assert to_config(learned) == config
    fresh = from_config(config, key=KEY)
    predict = eqx.filter_jit(lambda learner, x: learner.predict(x))
    np.testing.assert_array_equal(predict(fresh, jnp.ones(3)), predict(learner, jnp.ones(3)))


@pytest.mark.parametrize("name", sorted(STATE))
@pytest.mark.slow
def test_state_is_not_configuration(name):
    with pytest.raises(TypeError, match="state, not configuration"):
        to_config(STATE[name]())


class _MethodNamedLikeArgument(eqx.Module):
    weights: jax.Array

    def __init__(self, scale: float = 1.0):
        self.weights = jnp.full(2, scale)

    def scale(self):
        return 2 * self.weights


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="outside the trusted modules"):
        from_config({"class": "os.system", "arguments": {}})
    with pytest.raises(TypeError, match=r"inject_hyperparams\(optax\.sgd\)"):
        to_config(
            alberta_eqx.MultiHeadLearner(
                alberta_eqx.MLP(3, 1, (), key=KEY, sparsity=0.9),
                optax.sgd(0.1),
            )
        )
    with pytest.raises(TypeError, match="writes functions by name"):
        to_config(alberta_eqx.MLP(3, 1, (2,), key=KEY, activation=lambda x: x))
    with pytest.raises(TypeError, match="schedules"):
        schedule = optax.linear_schedule(0.1, 0.01, 100)
        tx = aeo.inject_hyperparams(optax.sgd)(learning_rate=schedule)
        to_config(
            alberta_eqx.MLPLearner(
                alberta_eqx.MLP(3, "scalar", (), key=KEY),
                tx,
            )
        )
    with pytest.raises(TypeError, match=r"'scale' is neither a field nor a property"):
        to_config(_MethodNamedLikeArgument(2.0))


def test_factories_record_their_calls():
    """The factories declare how a transformation was made (no closure is read): the
    factory and every argument, defaults included; a factory calling another (`upgd`
    chains `scale_by_upgd` and `lms`) is recorded as the outer call."""
    call = aeo.factory_call(aeo.idbd(0.02, meta_step_size=0.1))
    arguments = {"initial_step_size": 0.02, "meta_step_size": 0.1}
    assert call == aeo.FactoryCall(aeo.idbd, arguments, None)
    upgd = aeo.factory_call(aeo.upgd(0.1, 3))
    assert upgd.factory is aeo.upgd and upgd.arguments["step_size"] == 0.1
    members = (aeo.lms(0.5), aeo.obgd_bound(2.0))
    assert aeo.factory_call(aeo.chain(*members)).arguments == {"transformations": members}
    injected = aeo.factory_call(aeo.inject_hyperparams(optax.sgd, static_args="nesterov")(0.1))
    assert injected.factory is optax.sgd and injected.arguments["learning_rate"] == 0.1
    assert injected.injection == aeo.Injection(("nesterov",), None)
    # optax's own calls record nothing, and to_config says how to write them
    assert aeo.factory_call(optax.chain(*members)) is None
    with pytest.raises(TypeError, match=r"alberta_eqx\.optax\.chain, not optax\.chain"):
        to_config(
            alberta_eqx.MLPLearner(
                alberta_eqx.MLP(3, "scalar", (), key=KEY), optax.chain(*members)
            )
        )


def test_configs_naming_optax_chain_still_read():
    """Configs written before `alberta_eqx.optax.chain` named it `optax.chain`."""
    member = {"transformation": "alberta_eqx.optax.lms", "arguments": {"step_size": 0.5}}
    config = to_config(
        alberta_eqx.MLPLearner(alberta_eqx.MLP(3, "scalar", (), key=KEY), aeo.chain(aeo.lms(0.5)))
    )
    config["arguments"]["optimizer"] = {"transformation": "optax.chain", "arguments": [member]}
    learner = from_config(config, key=KEY)
    written = to_config(learner)["arguments"]["optimizer"]
    assert written == {"transformation": "alberta_eqx.optax.chain", "arguments": [member]}


def test_configurable_is_the_declared_protocol():
    assert isinstance(aec.FixedPolicy([0.25, 0.75]), Configurable)
    assert not isinstance(alberta_eqx.LMS(0.1), Configurable)
    arguments = to_config(aec.FixedPolicy([0.25, 0.75]))["arguments"]
    assert arguments == {"probabilities": {"array": [0.25, 0.75]}}
