"""`to_config` / `from_config`: a module's construction as a plain JSON-able dict, so
that a daemon can persist what it runs (alberta-framework 0.17's `to_config`).

One mechanism serves every module: the constructor's signature names the
arguments, and each argument is read back from the module's field (or property) of
the same name. Nested modules become nested configs; array hyperparameters become
numbers (or lists); `alberta_eqx.optax` transformations are written as the factory and
arguments they record (`alberta_eqx.optax.factory_call`); functions from `jax.nn` /
`jax.numpy` are written by name. A class whose constructor arguments are not all
fields or properties implements `Configurable.config_arguments` with the missing ones.
`key` arguments are never stored: pass one to `from_config`.

    config = to_config(learner)          # {"class": "alberta_eqx.LinearLearner", ...}
    json.dumps(config)                   # plain JSON
    fresh = from_config(config)          # the same construction, fresh state

A config holds the construction, not the state: `from_config` builds a fresh module
(for the state, use `save_checkpoint`).

A config is data, never code: every name in it is looked up in an explicit registry
(`registered_names()`): the concrete modules that `alberta_eqx` and its public
packages export, the factories of `alberta_eqx.optax` (with `chain`) and a short list
of optax's own factories, and a short list of activation functions. Any other name,
however it is spelt, raises `ConfigError` naming the config key that holds it, before
anything is called; `to_config` writes only registered names.
"""

import dataclasses
import functools
import importlib
import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import alberta_eqx.optax as aeo

__all__ = ["ConfigError", "Configurable", "from_config", "registered_names", "to_config"]

_SKIPPED = frozenset({"self", "key"})


@runtime_checkable
class Configurable(Protocol):
    """A module some of whose constructor arguments are neither fields nor properties
    of the same name (held inside a network, say, or with a method of that name)
    implements `config_arguments`: `to_config` reads those arguments from it, and
    every other argument from the field or property named like it.

    Implemented by `TileCoder`, `Horde`, `StreamAC`, `StreamQ` and `FixedPolicy`.
    """

    def config_arguments(self) -> dict[str, Any]:
        """The constructor's arguments that are not fields or properties, by name."""
        ...


class ConfigError(ValueError):
    """A config that names something outside the registry, or is malformed; the
    message names the config key (its path from the top, e.g.
    `arguments.optimizer.transformation`)."""


# The packages whose exported (`__all__`) concrete modules a config may construct.
# `alberta_eqx.online` is not among them: a daemon's learner opens files.
_PACKAGES = (
    "alberta_eqx",
    "alberta_eqx.control",
    "alberta_eqx.gvf",
    "alberta_eqx.nonlinear",
    "alberta_eqx.streams",
)
# optax's own factories a config may name (inside `alberta_eqx.optax.inject_hyperparams`,
# which is how `to_config` writes them), besides every factory of `alberta_eqx.optax`.
_OPTAX_FACTORIES = (
    "adabelief",
    "adagrad",
    "adam",
    "adamax",
    "adamw",
    "add_decayed_weights",
    "clip",
    "clip_by_global_norm",
    "lamb",
    "lion",
    "nadam",
    "rmsprop",
    "scale",
    "scale_by_adam",
    "scale_by_rms",
    "sgd",
    "yogi",
)
# Activation functions a config may name; the first name of an object is the one
# `to_config` writes (`jax.nn.tanh` is `jax.numpy.tanh`, `jax.nn.swish` is `silu`).
_FUNCTIONS = (
    *(
        f"jax.nn.{name}"
        for name in (
            "celu",
            "elu",
            "gelu",
            "hard_tanh",
            "identity",
            "leaky_relu",
            "log_sigmoid",
            "mish",
            "relu",
            "relu6",
            "selu",
            "sigmoid",
            "silu",
            "soft_sign",
            "softplus",
            "swish",
            "tanh",
        )
    ),
    *(f"jax.numpy.{name}" for name in ("abs", "cos", "sin", "tanh")),
)


@dataclasses.dataclass(frozen=True)
class _Registry:
    """Name -> object for each kind of config entry, and object -> the name written."""

    classes: Mapping[str, type]
    transformations: Mapping[str, Callable[..., Any]]
    functions: Mapping[str, Callable[..., Any]]

    def name_of(self, kind: str, obj: Any) -> str | None:
        """The first name of `obj` (runtime type checkers wrap the factories: those
        are compared unwrapped)."""
        table = getattr(self, kind)
        if kind != "transformations":
            return next((name for name, value in table.items() if value is obj), None)
        target = inspect.unwrap(obj)
        return next((n for n, value in table.items() if inspect.unwrap(value) is target), None)


# What `alberta_eqx.optax` exports that is not a transformation's factory: the
# composition helper that returns a factory, and the reader of the records.
_NOT_FACTORIES = frozenset({"inject_hyperparams", "factory_call"})


@functools.cache
def _registry() -> _Registry:
    """Built once, from fixed lists and the packages' `__all__`: a name is looked up,
    never resolved by importing or walking attributes."""
    classes: dict[str, type] = {}
    for package in _PACKAGES:
        module = importlib.import_module(package)
        for name in module.__all__:
            obj = getattr(module, name)
            if (
                isinstance(obj, type)
                and issubclass(obj, eqx.Module)
                and not inspect.isabstract(obj)
                and not name.startswith("Abstract")
            ):
                classes[f"{package}.{name}"] = obj
    # Configs written before the registry named a class by its defining module
    # (`alberta_eqx.control._stream.StreamQ`): read those names too.
    for cls in list(classes.values()):
        classes.setdefault(f"{cls.__module__}.{cls.__qualname__}", cls)
    transformations: dict[str, Callable[..., Any]] = {
        f"alberta_eqx.optax.{name}": getattr(aeo, name)
        for name in aeo.__all__
        if name not in _NOT_FACTORIES and inspect.isfunction(inspect.unwrap(getattr(aeo, name)))
    }
    # Configs written before `alberta_eqx.optax.chain` named it `optax.chain`.
    transformations["optax.chain"] = aeo.chain
    transformations.update({f"optax.{name}": getattr(optax, name) for name in _OPTAX_FACTORIES})
    namespaces: dict[str, Any] = {"jax.nn": jax.nn, "jax.numpy": jnp}
    functions = {}
    for function in _FUNCTIONS:
        namespace, _, attr = function.rpartition(".")
        functions[function] = getattr(namespaces[namespace], attr)
    return _Registry(classes, transformations, functions)


def registered_names() -> dict[str, list[str]]:
    """The names a config may hold, by kind: `{"class": [...], "transformation":
    [...], "function": [...]}`."""
    registry = _registry()
    return {
        "class": sorted(registry.classes),
        "transformation": sorted(registry.transformations),
        "function": sorted(registry.functions),
    }


def _join(path: str, key: str) -> str:
    """The config key `key` inside the entry at `path` (`""` is the top)."""
    return f"{path}.{key}" if path else key


def _lookup(kind: str, name: Any, path: str) -> Any:
    registry = _registry()
    table = {
        "class": registry.classes,
        "transformation": registry.transformations,
        "function": registry.functions,
    }[kind]
    if not isinstance(name, str) or name not in table:
        raise ConfigError(
            f"config key {path!r} names {name!r}, outside the trusted modules: a config "
            f"may name only a registered {kind} (alberta_eqx.config.registered_names()"
            f"[{kind!r}]), never other attributes, modules or builtins"
        )
    return table[name]


def _qualified(obj) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


def _factory_name(factory: Callable[..., Any]) -> str:
    """The registered name of a factory (`alberta_eqx.optax.X`, `optax.X`)."""
    name = _registry().name_of("transformations", factory)
    if name is None:
        raise TypeError(
            f"to_config cannot name the factory {factory!r}: a config may name only "
            "registered transformations (alberta_eqx.config.registered_names())"
        )
    return name


def _transformation_config(tx: optax.GradientTransformation) -> dict:
    """A transformation as the factory and the arguments that its `FactoryCall`
    records (`alberta_eqx.optax.factory_call`): a factory of `alberta_eqx.optax`,
    `alberta_eqx.optax.chain` of writable ones, or
    `alberta_eqx.optax.inject_hyperparams(factory)(...)` of a registered factory (the
    way to write optax's own, e.g. `optax.sgd`)."""
    call = aeo.factory_call(tx)
    if call is None:
        raise TypeError(
            "to_config writes the transformations that alberta_eqx.optax's factories "
            "return, which record how they were made; this one records nothing (compose "
            "with alberta_eqx.optax.chain, not optax.chain, and write optax's own through "
            "alberta_eqx.optax.inject_hyperparams: optax.sgd(0.1) as "
            "alberta_eqx.optax.inject_hyperparams(optax.sgd)(learning_rate=0.1))"
        )
    name = _factory_name(call.factory)
    if inspect.unwrap(call.factory) is inspect.unwrap(aeo.chain):
        members = call.arguments["transformations"]
        return {"transformation": name, "arguments": [_transformation_config(t) for t in members]}
    injection = call.injection
    if injection is None:
        return {"transformation": name, "arguments": _arguments_config(call.arguments)}
    # optax.inject_hyperparams reads a function that is not a static argument as a
    # schedule, which a config cannot hold
    static = injection.static_args
    schedules = sorted(k for k, v in call.arguments.items() if callable(v) and k not in static)
    if schedules:
        raise TypeError(
            f"to_config cannot write schedules ({schedules}) of an "
            "inject_hyperparams transformation"
        )
    dtype = injection.hyperparam_dtype
    return {
        "transformation": name,
        "arguments": _arguments_config(call.arguments),
        "inject_hyperparams": {
            "static_args": sorted(static),
            "hyperparam_dtype": None if dtype is None else _encode(np.dtype(dtype)),
        },
    }


def _arguments_config(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """A factory's arguments, encoded; a PRNG key (the noisy transformations' seed) as
    its raw data, which the factories read back."""
    prng = lambda v: isinstance(v, jax.Array) and jnp.issubdtype(v.dtype, jax.dtypes.prng_key)  # noqa: E731
    return {k: _encode(jax.random.key_data(v) if prng(v) else v) for k, v in arguments.items()}


def _function_name(fn) -> str:
    name = _registry().name_of("functions", fn)
    if name is None:
        raise TypeError(
            f"to_config writes functions by name and knows the registered activations "
            f"({', '.join(_FUNCTIONS)}); {fn!r} is none of them (use e.g. "
            "jax.nn.leaky_relu, not a lambda or a partial)"
        )
    return name


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, eqx.Module):
        return to_config(value)
    if isinstance(value, optax.GradientTransformation):
        return _transformation_config(value)
    if isinstance(value, jax.Array | np.ndarray | np.generic):
        if jnp.issubdtype(value.dtype, jax.dtypes.prng_key):
            raise TypeError("PRNG keys are not configuration (pass key= to from_config)")
        array = np.asarray(value)
        return array.item() if array.shape == () else {"array": array.tolist()}
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        # A NamedTuple is state (a stream's, an environment's), and a list would lose its type.
        raise TypeError(
            f"to_config cannot write a {type(value).__name__} (state, not configuration)"
        )
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
        return {"dtype": np.dtype(value).name}
    if callable(value) and hasattr(value, "__name__"):
        return {"function": _function_name(value)}
    raise TypeError(f"to_config cannot write a {type(value).__name__}: {value!r}")


# The keys each kind of entry may have: any other key is refused, so an entry means
# exactly one thing.
_ENTRY_KEYS = {
    "class": {"class", "arguments"},
    "transformation": {"transformation", "arguments", "inject_hyperparams"},
    "function": {"function"},
    "array": {"array"},
    "dtype": {"dtype"},
}


def _dtype(value: Any, path: str) -> np.dtype:
    """A numeric dtype by name (`np.dtype` reads names only, but only numbers are
    configuration)."""
    try:
        dtype = np.dtype(value) if isinstance(value, str) else None
    except TypeError:
        dtype = None
    if dtype is None or dtype.kind not in "biufc":
        raise ConfigError(f"config key {path!r}: {value!r} is not a numeric dtype name")
    return dtype


def _arguments(
    entry: Mapping[str, Any],
    callee: Callable[..., Any],
    name: str,
    path: str,
    drawn_from: Any = None,
) -> dict[str, Any]:
    """An entry's keyword arguments, each one a parameter `callee` takes, decoded
    (the modules among them constructed with the key `drawn_from`)."""
    arguments = entry.get("arguments", {})
    if not isinstance(arguments, dict):
        where = _join(path, "arguments")
        raise ConfigError(f"config key {where!r} must be a dict, got {arguments!r}")
    parameters = inspect.signature(callee).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    keyword = {
        n for n, p in parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    decoded = {}
    for key, value in arguments.items():
        where = _join(path, f"arguments.{key}")
        if (
            not isinstance(key, str)
            or key.startswith("_")
            or key == "self"
            or not (takes_any or key in keyword)
        ):
            raise ConfigError(
                f"config key {where!r}: {name} takes no argument {key!r} "
                f"(it takes {', '.join(sorted(keyword - _SKIPPED)) or 'none'})"
            )
        decoded[key] = _decode(value, where, drawn_from)
    return decoded


def _transformation(value: Mapping[str, Any], path: str) -> optax.GradientTransformation:
    where = _join(path, "transformation")
    name = value["transformation"]
    factory = _lookup("transformation", name, where)
    arguments = value.get("arguments", {})
    if isinstance(arguments, list):
        # Positional arguments are optax.chain's transformations, and nothing else's.
        if factory is not aeo.chain or "inject_hyperparams" in value:
            raise ConfigError(
                f"config key {_join(path, 'arguments')!r}: only optax.chain takes "
                f"a list (of transformation entries), not {name!r}"
            )
        parts = []
        for i, part in enumerate(arguments):
            at = _join(path, f"arguments[{i}]")
            if not isinstance(part, dict) or "transformation" not in part:
                raise ConfigError(f"config key {at!r}: optax.chain takes transformation entries")
            parts.append(_decode(part, at))
        return aeo.chain(*parts)
    if factory is aeo.chain:
        raise ConfigError(f"config key {where!r}: optax.chain takes a list of transformations")
    if "inject_hyperparams" in value:
        inject = value["inject_hyperparams"]
        at = _join(path, "inject_hyperparams")
        static = inject.get("static_args", []) if isinstance(inject, dict) else None
        if (
            not isinstance(inject, dict)
            or set(inject) - {"static_args", "hyperparam_dtype"}
            or not isinstance(static, list)
            or not all(isinstance(a, str) for a in static)
        ):
            raise ConfigError(
                f"config key {at!r} must be {{'static_args': [names], 'hyperparam_dtype': "
                f"dtype or null}}, got {inject!r}"
            )
        dtype = inject.get("hyperparam_dtype")
        dtype = None if dtype is None else _decode(dtype, f"{at}.hyperparam_dtype")
        if dtype is not None and not isinstance(dtype, np.dtype):
            raise ConfigError(f"config key '{at}.hyperparam_dtype' must be a dtype entry or null")
        arguments = _arguments(value, factory, name, path)
        return aeo.inject_hyperparams(factory, static_args=tuple(static), hyperparam_dtype=dtype)(
            **arguments
        )
    return factory(**_arguments(value, factory, name, path))


def _decode(value: Any, path: str, key: Any = None) -> Any:
    """A config value as Python: the entries (dicts) looked up in the registry."""
    if isinstance(value, list):
        return tuple(_decode(v, f"{path}[{i}]", key) for i, v in enumerate(value))
    if not isinstance(value, dict):
        return value
    kinds = [kind for kind in _ENTRY_KEYS if kind in value]
    if len(kinds) != 1 or set(value) - _ENTRY_KEYS[kinds[0]]:
        raise ConfigError(
            f"config key {path!r}: an entry is one of {sorted(_ENTRY_KEYS)} with its own "
            f"keys, got keys {sorted(value)}"
        )
    kind = kinds[0]
    if kind == "class":
        return _construct(value, path, key)
    if kind == "transformation":
        return _transformation(value, path)
    if kind == "function":
        return _lookup("function", value["function"], _join(path, "function"))
    if kind == "array":
        try:
            array = np.asarray(value["array"])
        except ValueError:
            array = None
        if array is None or array.dtype.kind not in "biuf":
            where = _join(path, "array")
            raise ConfigError(f"config key {where!r} must be a (nested) list of numbers")
        return array
    return _dtype(value["dtype"], _join(path, "dtype"))


def _construct(
    config: Mapping[str, Any], path: str, key: Any = None, **overrides: Any
) -> eqx.Module:
    cls = _lookup("class", config["class"], _join(path, "class"))
    arguments = _arguments(config, cls.__init__, config["class"], path, key)
    if key is not None and "key" in inspect.signature(cls.__init__).parameters:
        arguments["key"] = key  # every construction that draws takes the key given
    arguments.update(overrides)
    return cls(**arguments)


def to_config(module: eqx.Module) -> dict[str, Any]:
    """The construction of `module` as a JSON-able dict:
    `{"class": "alberta_eqx.Name", "arguments": {...}}`.

    **Arguments:**

    - `module`: any alberta_eqx module (learner, optimizer, normalizer, stream, ...).
      Every argument of its constructor must be readable from a field or property of
      the same name, or from its `config_arguments()` (`Configurable`).
    """
    if not isinstance(module, eqx.Module):
        raise TypeError(f"to_config takes an eqx.Module, got {type(module).__name__}")
    cls = type(module)
    overrides = module.config_arguments() if isinstance(module, Configurable) else {}
    fields = {field.name for field in dataclasses.fields(module)}
    arguments = {}
    for name, parameter in inspect.signature(cls.__init__).parameters.items():
        if name in _SKIPPED or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if name in overrides:
            value = overrides[name]
        elif name == "dtype":
            leaves = jax.tree.leaves(eqx.filter(module, eqx.is_inexact_array))
            value = np.dtype(leaves[0].dtype) if leaves else None
        elif name in fields or isinstance(inspect.getattr_static(cls, name, None), property):
            value = getattr(module, name)
        else:
            raise TypeError(
                f"to_config: {cls.__name__}'s argument {name!r} is neither a field nor a "
                f"property (a method of that name does not count); implement "
                f"alberta_eqx.config.Configurable ({cls.__name__}.config_arguments) to give it"
            )
        arguments[name] = _encode(value)
    registered = _registry().name_of("classes", cls)
    if registered is None:
        raise TypeError(
            f"to_config writes only registered classes (the concrete modules alberta_eqx "
            f"and its public packages export); {_qualified(cls)} is not one"
        )
    return {"class": registered, "arguments": arguments}


def from_config(config: dict[str, Any], **overrides: Any) -> eqx.Module:
    """A freshly constructed module from `to_config`'s dict.

    **Arguments:**

    - `config`: the dict (as read back from JSON).
    - `**overrides`: constructor arguments to add or replace. `key=` goes to every
      construction in the config that takes a key, nested ones included (a
      learner's network draws its weights from it).
    """
    if not isinstance(config, dict) or "class" not in config or set(config) - _ENTRY_KEYS["class"]:
        raise ConfigError(
            f"config must be a dict from to_config ('class' and 'arguments'), got {config!r}"
        )
    return _construct(config, "", **overrides)
