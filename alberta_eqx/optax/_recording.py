"""Transformations that record how they were made: `FactoryCall` (the factory and its
arguments), kept for every transformation that a factory of `alberta_eqx.optax`
returns, so that `alberta_eqx.config.to_config` can write it without looking inside
optax's closures; and `chain` and `inject_hyperparams`, optax's composition recorded
the same way."""

import functools
import inspect
import weakref
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, ParamSpec

import optax

__all__ = ["FactoryCall", "Injection", "chain", "factory_call", "inject_hyperparams", "recorded"]

_P = ParamSpec("_P")


class Injection(NamedTuple):
    """How `inject_hyperparams` wrapped a factory: optax's `static_args` and
    `hyperparam_dtype`."""

    static_args: tuple[str, ...]
    hyperparam_dtype: Any


class FactoryCall(NamedTuple):
    """How a transformation was made: `factory(**arguments)`, wrapped in
    `optax.inject_hyperparams(factory, *injection)` when `injection` is set.

    **Fields:**

    - `factory`: the factory as written (`alberta_eqx.optax.idbd`, `chain`, `optax.sgd`).
    - `arguments`: every parameter of the factory by name, defaults included (`chain`'s
      is `transformations`, the tuple of its members).
    - `injection`: the `Injection`, or None for a plain call.
    """

    factory: Callable[..., Any]
    arguments: Mapping[str, Any]
    injection: Injection | None = None


# Keyed by the transformation's `update` function, which every factory call makes anew
# (a closure) and which stays the same object wherever the transformation goes: a
# module's field, `jax.tree` maps, `eqx.filter_jit`'s static outputs. Weak: a record
# lives as long as its transformation.
_CALLS: "weakref.WeakKeyDictionary[Callable[..., Any], FactoryCall]" = weakref.WeakKeyDictionary()


def factory_call(transformation: optax.GradientTransformation) -> FactoryCall | None:
    """How `transformation` was made, or None for one that no recorded factory
    returned (`optax.sgd(0.1)` called directly, say).

    **Arguments:**

    - `transformation`: an optax gradient transformation.
    """
    return _CALLS.get(transformation.update)


def _record(
    transformation: optax.GradientTransformationExtraArgs,
    factory: Callable[..., Any],
    arguments: inspect.BoundArguments,
    injection: Injection | None = None,
) -> optax.GradientTransformationExtraArgs:
    arguments.apply_defaults()
    _CALLS[transformation.update] = FactoryCall(factory, dict(arguments.arguments), injection)
    return transformation


def recorded(
    factory: Callable[_P, optax.GradientTransformationExtraArgs],
) -> Callable[_P, optax.GradientTransformationExtraArgs]:
    """The factory, recording each call's `FactoryCall` (naming the recording factory
    itself, the public one) on what it returns; a factory calling another records
    last, so the outer call is the one kept."""
    signature = inspect.signature(factory)

    @functools.wraps(factory)
    def make(*args: _P.args, **kwargs: _P.kwargs) -> optax.GradientTransformationExtraArgs:
        transformation = factory(*args, **kwargs)
        return _record(transformation, make, signature.bind(*args, **kwargs))

    return make


@recorded
def chain(*transformations: optax.GradientTransformation) -> optax.GradientTransformationExtraArgs:
    """`optax.chain(*transformations)`, recorded (`to_config` writes it when it can
    write every member).

    **Arguments:**

    - `*transformations`: the members, applied in order.
    """
    return optax.chain(*transformations)


def inject_hyperparams(
    factory: Callable[..., optax.GradientTransformation],
    *,
    static_args: str | tuple[str, ...] = (),
    hyperparam_dtype: Any = None,
) -> Callable[..., optax.GradientTransformationExtraArgs]:
    """`optax.inject_hyperparams(factory, static_args, hyperparam_dtype)`, whose
    transformations record the factory and its arguments (the way to write optax's own
    factories: `inject_hyperparams(optax.sgd)(learning_rate=0.1)`).

    **Arguments:**

    - `factory`: any optax-style factory.
    - `static_args`: the arguments kept out of the state (a name or a tuple of names).
    - `hyperparam_dtype`: the dtype of the injected hyperparameters (None: theirs).
    """
    static = (static_args,) if isinstance(static_args, str) else tuple(static_args)
    injected = optax.inject_hyperparams(
        factory, static_args=static, hyperparam_dtype=hyperparam_dtype
    )
    signature = inspect.signature(factory)
    injection = Injection(static, hyperparam_dtype)

    @functools.wraps(factory)
    def make(*args: Any, **kwargs: Any) -> optax.GradientTransformationExtraArgs:
        transformation = injected(*args, **kwargs)
        return _record(transformation, factory, signature.bind(*args, **kwargs), injection)

    return make
