"""Argument checks that fail early, name the argument, and still work under tracing.

A hyperparameter may be a concrete number (checked now, at construction) or a tracer
(inside `eqx.filter_vmap` / `jax.jit`, where its value is unknown): then the check is
left to the caller's concrete inputs, as DESIGN.md asks.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float


def _concrete(value: ArrayLike) -> np.ndarray | None:
    """The value as a NumPy array, or None when it is a tracer."""
    if isinstance(value, jax.core.Tracer):
        return None
    return np.asarray(value)


def as_float(name: str, value: ArrayLike, dtype=None) -> Array:
    """A real, finite floating-point scalar array; raises naming `name` otherwise."""
    concrete = _concrete(value)
    if concrete is not None:
        if concrete.shape != ():
            raise ValueError(f"{name} must be a scalar, got shape {concrete.shape}")
        if not np.issubdtype(concrete.dtype, np.number) or np.iscomplexobj(concrete):
            raise TypeError(f"{name} must be a real number, got {value!r}")
        if not math.isfinite(float(concrete)):
            raise ValueError(f"{name} must be finite, got {float(concrete)}")
    if dtype is None and not isinstance(value, jax.Array | np.ndarray):
        dtype = jnp.result_type(float)
    return jnp.asarray(value, dtype=dtype)


def positive(name: str, value: ArrayLike, dtype=None) -> Array:
    """`as_float`, and > 0."""
    array = as_float(name, value, dtype)
    concrete = _concrete(array)
    if concrete is not None and not concrete > 0:
        raise ValueError(f"{name} must be > 0, got {float(concrete)}")
    return array


def non_negative(name: str, value: ArrayLike, dtype=None) -> Array:
    """`as_float`, and >= 0."""
    array = as_float(name, value, dtype)
    concrete = _concrete(array)
    if concrete is not None and not concrete >= 0:
        raise ValueError(f"{name} must be >= 0, got {float(concrete)}")
    return array


def in_unit_interval(name: str, value: ArrayLike, dtype=None) -> Array:
    """`as_float`, and in (0, 1]."""
    array = as_float(name, value, dtype)
    concrete = _concrete(array)
    if concrete is not None and not 0 < concrete <= 1:
        raise ValueError(f"{name} must be in (0, 1], got {float(concrete)}")
    return array


def unit_interval_open(name: str, value: ArrayLike, dtype=None) -> Array:
    """`as_float`, and in [0, 1) (a decay rate such as Adam's `beta2`)."""
    array = as_float(name, value, dtype)
    concrete = _concrete(array)
    if concrete is not None and not 0 <= concrete < 1:
        raise ValueError(f"{name} must be in [0, 1), got {float(concrete)}")
    return array


def positive_int(name: str, value: int) -> int:
    """A Python int >= 1 (for static sizes such as feature counts and intervals)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def non_negative_int(name: str, value: int) -> int:
    """A Python int >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return int(value)


def ordered(low_name: str, low: Array, high_name: str, high: Array) -> None:
    """Raise unless `low <= high` (skipped for traced values)."""
    if isinstance(low, jax.core.Tracer) or isinstance(high, jax.core.Tracer):
        return
    if not float(low) <= float(high):
        raise ValueError(
            f"{low_name} must be <= {high_name}, got {low_name}={float(low)}, "
            f"{high_name}={float(high)}"
        )


def cast_floating(tree, dtype):
    """`tree` with every floating-point array leaf cast to `dtype`, so that a learner
    built in float64 computes in float64 throughout."""
    return jax.tree.map(lambda a: a.astype(dtype) if eqx.is_inexact_array(a) else a, tree)


def scalar_target(y: ArrayLike, dtype, name: str = "y") -> Float[Array, ""]:
    """A real scalar (a target, a reward) cast to `dtype`; the 0.2.x streams give
    shape `(1,)`, which is accepted too. Integers are exact in a float, so they pass;
    complex and boolean values do not."""
    y = jnp.asarray(y)
    if y.shape not in ((), (1,)):
        raise ValueError(f"{name} must be a scalar (or shape (1,)), got shape {y.shape}")
    if not jnp.issubdtype(y.dtype, jnp.floating) and not jnp.issubdtype(y.dtype, jnp.integer):
        raise TypeError(f"{name} must be real, got dtype {y.dtype}")
    return jnp.reshape(y, ()).astype(dtype)


def features(x: ArrayLike, feature_dim: int, dtype, name: str = "x") -> Float[Array, " n"]:
    """An observation of shape `(feature_dim,)`, real floating-point, cast to `dtype`.
    Integer, boolean and complex observations are refused, not cast: a silent cast
    would hide a stream that produces the wrong kind of data."""
    x = jnp.asarray(x)
    if x.shape != (feature_dim,):
        raise ValueError(
            f"{name} must have shape ({feature_dim},) for this learner, got {x.shape}"
        )
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{name} must be a real floating-point array, got dtype {x.dtype}")
    return x.astype(dtype)
