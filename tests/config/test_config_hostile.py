"""Hostile configs (issue 21, item 1): `from_config` looks every name up in an
explicit registry and refuses anything else with a `ConfigError` naming the config
key, before anything is called. Each case below, if it were resolved the way
configs once were (attributes walked from a trusted prefix), would run code, read a
pickle or write a file; each must raise and leave no trace (the marker files stay
absent, the folder stays empty).
"""

import json
import pathlib
import pickle
import re
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import alberta_eqx
from alberta_eqx.config import ConfigError, from_config, registered_names, to_config


class _Touch:
    """Unpickling this creates its marker file (what a hostile pickle would do)."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture
def folder(tmp_path):
    """A folder the hostile configs aim at: a marker for shell commands, a pickle
    whose loading creates a marker, and the place `save` would write to."""
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(_Touch(str(tmp_path / "unpickled"))))
    np.save(tmp_path / "evil.npy", np.array([_Touch(str(tmp_path / "unpickled"))]))
    return tmp_path


def _class(name, arguments=None) -> dict:
    return {"class": name, "arguments": arguments or {}}


def _tx(name, arguments=None, **more) -> dict:
    return {"transformation": name, "arguments": arguments or {}, **more}


def _hostile(d) -> list[tuple[str, dict, str]]:
    """(case id, config, the key the error must name)."""
    touch = {"command": f"touch {d / 'shell'}"}
    os_system = _class("os.system", touch)

    def inside(entry):  # the entry as a LinearLearner's optimizer: the key is nested
        arguments = {"feature_dim": 2, "optimizer": entry}
        return _class("alberta_eqx.LinearLearner", arguments)

    def step_size(value):
        return inside(_class("alberta_eqx.LMS", {"step_size": value}))

    pickled = {"file": str(d / "evil.npy"), "allow_pickle": True}
    saved = {"file": str(d / "written"), "arr": 1.0}
    return [
        # attribute paths through modules that alberta_eqx imports
        ("os-via-durable", _class("alberta_eqx.online._durable.os.system", touch), "class"),
        ("os-via-config", _class("alberta_eqx.config.os.system", touch), "class"),
        ("os", os_system, "class"),
        ("subprocess", _class("subprocess.run", {"args": ["touch", str(d / "x")]}), "class"),
        ("importlib-via-config", _class("alberta_eqx.config.importlib.import_module"), "class"),
        (
            "importlib-via-spec",
            _class("alberta_eqx.sweeps.spec.importlib.import_module", {"name": "os"}),
            "class",
        ),
        ("importlib", _class("importlib.import_module", {"name": "os"}), "class"),
        # builtins and dunder names
        ("builtins-eval", _class("builtins.eval", {"source": "1"}), "class"),
        ("builtins-exec", _class("builtins.exec"), "class"),
        ("dunder-import", _class("builtins.__import__", {"name": "os"}), "class"),
        ("dunder-builtins", _class("alberta_eqx.config.__builtins__"), "class"),
        ("dunder-class", _class("alberta_eqx.LinearLearner.__class__"), "class"),
        ("dunder-globals", {"function": "jax.nn.relu.__globals__"}, "function"),
        ("dunder-init-globals", _class("alberta_eqx.LMS.__init__.__globals__"), "class"),
        ("dunder-subclasses", _class("alberta_eqx.LMS.__subclasses__"), "class"),
        # pickles and files through pickle, numpy and jax.numpy
        ("pickle-loads", _class("pickle.loads", {"data": "x"}), "class"),
        ("pickle-load", _class("pickle.load", {"file": str(d / "evil.pkl")}), "class"),
        ("numpy-load", _class("numpy.load", pickled), "class"),
        ("jax-numpy-load", _class("jax.numpy.load", pickled), "class"),
        ("jax-numpy-load-tx", _tx("jax.numpy.load", pickled), "transformation"),
        ("jax-numpy-load-function", {"function": "jax.numpy.load"}, "function"),
        ("jax-numpy-save", _class("jax.numpy.save", saved), "class"),
        ("numpy-save-tx", _tx("numpy.save", saved), "transformation"),
        # names that merely start like a trusted one
        ("prefix-package", _class("alberta_eqx_evil.Learner"), "class"),
        ("prefix-module", _class("alberta_eqx.configX.from_config"), "class"),
        ("prefix-optax", _tx("optaxevil.sgd"), "transformation"),
        ("prefix-jax-nn", {"function": "jax.nnx.relu"}, "function"),
        ("module-function", _class("alberta_eqx.config.from_config"), "class"),
        ("optax-unlisted", _tx("optax.inject_hyperparams"), "transformation"),
        # public names of the wrong kind, or that have effects
        ("function-as-class", _class("jax.nn.relu", {"x": 1.0}), "class"),
        ("factory-as-class", _class("alberta_eqx.optax.lms"), "class"),
        ("class-as-function", {"function": "alberta_eqx.LinearLearner"}, "function"),
        (
            "durable-learner",
            _class("alberta_eqx.DurableLearner", {"directory": str(d / "daemon")}),
            "class",
        ),
        ("runner", _class("alberta_eqx.run_learning_loop"), "class"),
        (
            "save-checkpoint",
            _class("alberta_eqx.save_checkpoint", {"path": str(d / "x")}),
            "class",
        ),
        ("not-a-name", _class(["os", "system"]), "class"),
        # positional arguments: only optax.chain takes a list, of transformation entries
        ("positional-factory", _tx("alberta_eqx.optax.lms", [0.1]), "arguments"),
        ("positional-chain-of-values", _tx("optax.chain", ["os"]), "arguments[0]"),
        (
            "chain-of-hostile",
            _tx("optax.chain", [_tx("os.system", touch)]),
            "arguments[0].transformation",
        ),
        (
            "inject-hostile",
            _tx("os.system", touch, inject_hyperparams={"static_args": []}),
            "transformation",
        ),
        # argument names: never dunders, `self` or a name the constructor does not take
        ("argument-dunder", _class("alberta_eqx.LMS", {"__class__": 1}), "arguments.__class__"),
        ("argument-self", _class("alberta_eqx.LMS", {"self": 1}), "arguments.self"),
        ("argument-unknown", _class("alberta_eqx.LMS", {"command": "ls"}), "arguments.command"),
        # malformed entries: two meanings at once, or values that are not numbers
        ("two-kinds", {"class": "alberta_eqx.LMS", "function": "os.system"}, "config"),
        ("top-level-not-a-class", _tx("os.system", touch), "config"),
        (
            "object-dtype",
            step_size({"dtype": "O"}),
            "arguments.optimizer.arguments.step_size.dtype",
        ),
        (
            "object-array",
            step_size({"array": ["os"]}),
            "arguments.optimizer.arguments.step_size.array",
        ),
        # hostile names nested in an honest config: the error names the whole path
        ("nested-class", inside(os_system), "arguments.optimizer.class"),
        (
            "nested-list",
            _class("alberta_eqx.MLP", {"in_size": 2, "hidden_sizes": [4, os_system]}),
            "arguments.hidden_sizes[1].class",
        ),
    ]


CASE_IDS = [name for name, _, _ in _hostile(pathlib.Path("."))]


@pytest.mark.parametrize("case", CASE_IDS)
def test_hostile_config_is_refused_naming_the_key_and_runs_nothing(case, folder):
    _, config, key = next(c for c in _hostile(folder) if c[0] == case)
    if key != "config" and "class" not in config:
        # a config is a class at the top: the other entries are read as its arguments
        config = _class("alberta_eqx.MLPLearner", {"optimizer": config})
        key = f"arguments.optimizer.{key}"
    registered_names()  # the registry imports alberta_eqx.optax once, before the snapshot
    modules = set(sys.modules)
    text = json.dumps(config)  # a config is read from JSON: test what JSON gives back
    expected = "config must be a dict" if key == "config" else f"config key '{key}'"
    with pytest.raises(ConfigError, match=re.escape(expected)):
        from_config(json.loads(text))
    assert sorted(p.name for p in folder.iterdir()) == ["evil.npy", "evil.pkl"]
    assert set(sys.modules) == modules  # nothing was imported


def test_the_error_names_the_key_and_says_why():
    config = {
        "class": "alberta_eqx.LinearLearner",
        "arguments": {"optimizer": {"class": "os.system"}},
    }
    with pytest.raises(ConfigError) as error:
        from_config(config)
    message = str(error.value)
    assert "'arguments.optimizer.class'" in message and "'os.system'" in message
    assert "registered" in message
    assert isinstance(error.value, ValueError)  # callers catching ValueError still do


def test_registry_is_explicit():
    """The registry holds public constructions, the listed factories and activations:
    none of the names the cases above used, and nothing private but the defining
    modules' names of registered classes (configs written before the registry)."""
    names = registered_names()
    assert "alberta_eqx.LinearLearner" in names["class"]
    assert "alberta_eqx.control.StreamQ" in names["class"]
    assert "alberta_eqx.DurableLearner" not in names["class"]
    assert {"alberta_eqx.optax.idbd", "optax.chain", "optax.sgd"} <= set(names["transformation"])
    assert {"jax.nn.relu", "jax.numpy.tanh"} <= set(names["function"])
    for kind, listed in names.items():
        for name in listed:
            assert "__" not in name, (kind, name)
            assert not any(part in name.split(".") for part in ("os", "importlib", "load", "save"))


def test_to_config_writes_only_registered_names():
    class Mine(alberta_eqx.LMS):  # a user's subclass is not in the registry
        pass

    with pytest.raises(TypeError, match="only registered classes"):
        to_config(Mine(0.1))
    with pytest.raises(TypeError, match="writes functions by name"):
        to_config(alberta_eqx.MLP(2, 1, (2,), key=jax.random.key(0), activation=jnp.exp))


def test_checkpoint_metadata_is_data_that_nothing_constructs(tmp_path):
    """A checkpoint's metadata is read back as plain JSON: a hostile config kept there
    is returned as the dict it is, and nothing it names is called."""
    learner = alberta_eqx.LinearLearner(2, alberta_eqx.LMS(0.1))
    hostile = {"class": "os.system", "arguments": {"command": f"touch {tmp_path / 'shell'}"}}
    path = tmp_path / "a.ckpt"
    alberta_eqx.save_checkpoint(path, learner, metadata={"config": hostile})
    assert alberta_eqx.load_checkpoint(path, learner).metadata == {"config": hostile}
    assert alberta_eqx.read_checkpoint_header(path)["metadata"] == {"config": hostile}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.ckpt"]


def test_configs_written_before_the_registry_still_read():
    """Older configs named some classes by their defining module: the registry reads
    those names of registered classes (a lookup, not a path walked), and writes the
    public name."""
    config = {"class": "alberta_eqx.control._policies.FixedPolicy", "arguments": {}}
    config["arguments"]["probabilities"] = [0.25, 0.75]
    policy = from_config(config)
    assert type(policy) is alberta_eqx.control.FixedPolicy
    assert to_config(policy)["class"] == "alberta_eqx.control.FixedPolicy"
