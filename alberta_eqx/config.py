"""`to_config` / `from_config`: a module's construction as a plain JSON-able dict, so
that a daemon can persist what it runs (alberta-framework 0.17's `to_config`).

One mechanism serves every module: the constructor's signature names the
arguments, and each argument is read back from the module's field (or property) of
the same name. Nested modules become nested configs; array hyperparameters become
numbers (or lists); `alberta_eqx.optax` transformations record their factory and its
arguments; functions from `jax.nn` / `jax.numpy` are written by name. A class whose
constructor arguments are not all fields defines `_config_arguments(self) -> dict`
with the missing ones. `key` arguments are never stored: pass one to `from_config`.

    config = to_config(learner)          # {"class": "alberta_eqx.LinearLearner", ...}
    json.dumps(config)                   # plain JSON
    fresh = from_config(config)          # the same construction, fresh state

A config holds the construction, not the state: `from_config` builds a fresh module
(for the state, use `save_checkpoint`).
"""

import dataclasses
import importlib
import inspect
import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

__all__ = ["from_config", "to_config"]

# Where `from_config` may look classes, factories and functions up (a config names them).
_TRUSTED = ("alberta_eqx", "optax", "jax.nn", "jax.numpy")
_SKIPPED = frozenset({"self", "key"})


def _qualified(obj) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


def _public_name(cls) -> str:
    """`alberta_eqx.X` when the package exports the class, else its module path."""
    import alberta_eqx

    if getattr(alberta_eqx, cls.__name__, None) is cls:
        return f"alberta_eqx.{cls.__name__}"
    return _qualified(cls)


def _resolve(name: str):
    if not name.startswith(_TRUSTED):
        raise ValueError(f"config names {name!r}, outside the trusted modules {_TRUSTED}")
    module, _, attr = name.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        # A class nested in a module path: import the longest importable prefix.
        parts = name.split(".")
        for i in range(len(parts) - 1, 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:i]))
            except ImportError:
                continue
            for part in parts[i:]:
                obj = getattr(obj, part)
            return obj
        raise ValueError(f"config names {name!r}, which does not exist") from None


def _closure(fn) -> dict[str, Any]:
    """The variables a function's closure holds, by name. `inspect.unwrap`: runtime
    type checkers (jaxtyping + beartype) wrap the functions."""
    fn = inspect.unwrap(fn)
    code = getattr(fn, "__code__", None)
    if code is None:
        return {}
    cells = fn.__closure__ or ()
    return {name: cell.cell_contents for name, cell in zip(code.co_freevars, cells, strict=True)}


def _factory_name(factory) -> str:
    """`alberta_eqx.optax.X` or `optax.X` for a public factory of either module."""
    for module in ("alberta_eqx.optax", "optax"):
        name = getattr(factory, "__name__", None)
        if name and getattr(importlib.import_module(module), name, None) is factory:
            return f"{module}.{name}"
    raise TypeError(f"to_config cannot name the factory {factory!r} (not in optax's namespace)")


def _transformation_config(tx: optax.GradientTransformation) -> dict:
    """A transformation as its factory and the factory's arguments, read from the
    closures of its `init` and `update` (where the factories keep their arguments).

    Three kinds are written: transformations of `alberta_eqx.optax`'s factories;
    `optax.chain` of writable ones; and `optax.inject_hyperparams(factory)(...)` of any
    factory of `optax` or `alberta_eqx.optax`, which keeps the factory and its
    arguments (the way to write optax's own, e.g. `optax.sgd`)."""
    update = inspect.unwrap(tx.update)
    qualname = getattr(update, "__qualname__", "")
    module = getattr(update, "__module__", "") or ""
    captured = {**_closure(tx.init), **_closure(tx.update)}
    if module.startswith("optax") and qualname.startswith("with_extra_args_support."):
        return _transformation_config(captured["tx"])  # optax's wrapper (inside chain)
    if module.startswith("optax") and qualname.startswith("chain."):
        pairs = zip(captured["init_fns"], captured["update_fns"], strict=True)
        return {
            "transformation": "optax.chain",
            "arguments": [
                _transformation_config(optax.GradientTransformationExtraArgs(i, u))
                for i, u in pairs
            ],
        }
    if module.startswith("optax") and "inner_factory" in captured:
        # optax.inject_hyperparams: the hyperparameters sorted into numeric ones (in
        # its state), schedules and the others (static); schedules are functions.
        if captured["sched_hps"]:
            raise TypeError(
                f"to_config cannot write schedules ({sorted(captured['sched_hps'])}) of an "
                "optax.inject_hyperparams transformation"
            )
        numeric, other = captured["numeric_hps"], captured["other_hps"]
        return {
            "transformation": _factory_name(captured["inner_factory"]),
            "arguments": {k: _encode(v) for k, v in {**numeric, **other}.items()},
            "inject_hyperparams": {
                "static_args": sorted(other),
                "hyperparam_dtype": _encode(captured["hyperparam_dtype"]),
            },
        }
    factory_name, _, _ = qualname.partition(".<locals>")
    if not module.startswith("alberta_eqx") or not factory_name:
        raise TypeError(
            f"to_config records alberta_eqx.optax transformations, optax.chain of them, "
            f"and optax.inject_hyperparams(factory)(...) of any optax factory; "
            f"{qualname or tx!r} is none of these (e.g. write optax.sgd(0.1) as "
            "optax.inject_hyperparams(optax.sgd)(learning_rate=0.1))"
        )
    factory = getattr(importlib.import_module(module), factory_name)
    arguments = {}
    for name in inspect.signature(factory).parameters:
        if name not in captured:
            raise TypeError(f"cannot read argument {name!r} of {module}.{factory_name}")
        arguments[name] = _encode(captured[name])
    return {"transformation": f"{module}.{factory_name}", "arguments": arguments}


# Functions are written by name: those of these modules (activations, mostly).
_FUNCTION_MODULES = ("jax.nn", "jax.numpy")


def _function_name(fn) -> str:
    name = getattr(fn, "__name__", None)
    for module in _FUNCTION_MODULES:
        if name and getattr(importlib.import_module(module), name, None) is fn:
            return f"{module}.{name}"
    raise TypeError(
        f"to_config writes functions by name and knows those of {', '.join(_FUNCTION_MODULES)}; "
        f"{fn!r} is none of them (use e.g. jax.nn.leaky_relu, not a lambda or a partial)"
    )


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


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_decode(v) for v in value)
    if not isinstance(value, dict):
        return value
    if "class" in value:
        return from_config(value)
    if "transformation" in value:
        factory = _resolve(value["transformation"])
        arguments = value["arguments"]
        if isinstance(arguments, list):  # optax.chain's transformations
            return factory(*(_decode(a) for a in arguments))
        if "inject_hyperparams" in value:
            inject = value["inject_hyperparams"]
            factory = optax.inject_hyperparams(
                factory,
                static_args=tuple(inject["static_args"]),
                hyperparam_dtype=_decode(inject["hyperparam_dtype"]),
            )
        return factory(**{k: _decode(v) for k, v in arguments.items()})
    if "function" in value:
        return _resolve(value["function"])
    if "array" in value:
        return np.asarray(value["array"])
    if "dtype" in value:
        return np.dtype(value["dtype"])
    raise ValueError(f"unknown config entry {value!r}")


def to_config(module: eqx.Module) -> dict[str, Any]:
    """The construction of `module` as a JSON-able dict:
    `{"class": "alberta_eqx.Name", "arguments": {...}}`.

    **Arguments:**

    - `module`: any alberta_eqx module (learner, optimizer, normalizer, stream, ...).
      Every argument of its constructor must be readable from a field or property of
      the same name, or from the class's `_config_arguments()`.
    """
    if not isinstance(module, eqx.Module):
        raise TypeError(f"to_config takes an eqx.Module, got {type(module).__name__}")
    cls = type(module)
    overrides = module._config_arguments() if hasattr(module, "_config_arguments") else {}
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
                f"property (a method of that name does not count); define "
                f"{cls.__name__}._config_arguments to give it"
            )
        arguments[name] = _encode(value)
    return {"class": _public_name(cls), "arguments": arguments}


def from_config(config: dict[str, Any], **overrides: Any) -> eqx.Module:
    """A freshly constructed module from `to_config`'s dict.

    **Arguments:**

    - `config`: the dict (as read back from JSON).
    - `**overrides`: constructor arguments to add or replace, e.g. `key=` for a
      module whose constructor draws random weights.
    """
    if not isinstance(config, dict) or "class" not in config:
        raise ValueError(f"config must be a dict from to_config, got {config!r}")
    cls = _resolve(config["class"])
    arguments = {k: _decode(v) for k, v in config.get("arguments", {}).items()}
    arguments.update(overrides)
    return cls(**arguments)
