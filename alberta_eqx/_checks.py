"""Argument checks that fail early, name the argument, and still work under tracing.

A hyperparameter may be a concrete number (checked now, at construction) or a tracer
(inside `eqx.filter_vmap` / `jax.jit`, where its value is unknown): then the check is
left to the caller's concrete inputs, as DESIGN.md asks.
"""

import math
from collections.abc import Sequence
from typing import Protocol, cast, runtime_checkable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float
from typing_extensions import TypeAliasType

ArrayLike = TypeAliasType("ArrayLike", jax.typing.ArrayLike)
"""What the library's functions accept for an array: a JAX or NumPy array, a NumPy
scalar or a Python number (`jax.typing.ArrayLike`), under a name that `help()` and
the signatures show instead of its eight-member union."""


def default_float() -> np.dtype:
    """JAX's default floating-point dtype: float64 with `jax_enable_x64`, float32
    otherwise (as Equinox's `default_floating_dtype`). Read at call time, so that
    `jax.enable_x64` blocks are honoured."""
    return np.dtype(jnp.result_type(float))


def is_traced(value: object) -> bool:
    """Whether `value` is a tracer (inside `jax.jit`, `vmap`, `scan`, ...), whose value
    is unknown: the checks leave it to the caller's concrete inputs."""
    return isinstance(value, jax.core.Tracer)


def _concrete(value: ArrayLike) -> np.ndarray | None:
    """The value as a NumPy array, or None when it is a tracer."""
    if is_traced(value):
        return None
    return np.asarray(value)


def hyperparameter():
    """Mark a module's field as a hyperparameter: a value the user chose, which
    learning never changes. `find_divergence` looks past such fields (an infinite
    `tau` is a choice, not a diverged run); every other floating array of a learner
    is its state."""
    return eqx.field(metadata={"hyperparameter": True})


def as_float(name: str, value: ArrayLike, dtype=None) -> Array:
    """A real, finite floating-point scalar array; raises naming `name` otherwise.
    Finiteness is checked after the cast to the dtype the value will be used in, so
    that `1e39`, which is `inf` in float32, is refused."""
    concrete = _concrete(value)
    if concrete is not None:
        if concrete.shape != ():
            raise ValueError(f"{name} must be a scalar, got shape {concrete.shape}")
        if not np.issubdtype(concrete.dtype, np.number) or np.iscomplexobj(concrete):
            raise TypeError(f"{name} must be a real number, got {value!r}")
        if not math.isfinite(float(concrete)):
            raise ValueError(f"{name} must be finite, got {float(concrete)}")
    if dtype is None and not isinstance(value, jax.Array | np.ndarray):
        dtype = default_float()
    with np.errstate(over="ignore"):  # an overflowing cast is reported below
        array = jnp.asarray(value, dtype=dtype)
    if concrete is not None:
        _finite_in(name, concrete, array)
    return array


def _finite_in(name: str, value: np.ndarray, cast: Array) -> None:
    """Raise if `value` (finite) becomes non-finite when cast to `cast.dtype`. The
    cast is redone in NumPy: under `jax.jit` even a constant's cast is a tracer."""
    with np.errstate(over="ignore"):
        converted = float(np.asarray(value).astype(np.dtype(cast.dtype)))
    if math.isfinite(float(value)) and not math.isfinite(converted):
        raise ValueError(
            f"{name} must be finite in {cast.dtype}, got {float(value):g}, which "
            f"overflows to {converted}"
        )


def float_dtype(name: str, dtype) -> np.dtype:
    """A real floating-point dtype (float16 ... float64), as a NumPy dtype."""
    try:
        resolved = np.dtype(dtype)
    except TypeError as error:
        raise TypeError(f"{name} must be a floating-point dtype, got {dtype!r}") from error
    if not jnp.issubdtype(resolved, jnp.floating):
        raise TypeError(f"{name} must be a real floating-point dtype, got {resolved}")
    return resolved


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


def unit_interval_closed(name: str, value: ArrayLike | Sequence, dtype=None) -> Array:
    """Numbers in `[0, 1]` (a trace-decay parameter `lambda`, a discount, a
    probability): `as_float` for a scalar; an array of any shape is checked element by
    element. Checked when concrete; raises naming `name`."""
    scalar = np.ndim(value) == 0
    array = as_float(name, cast(ArrayLike, value), dtype) if scalar else jnp.asarray(value, dtype)
    concrete = _concrete(array)
    if concrete is not None and not np.all((concrete >= 0) & (concrete <= 1)):
        shown = float(concrete) if concrete.ndim == 0 else concrete
        raise ValueError(f"{name} must be in [0, 1], got {shown}")
    return array


# A probability vector must sum to 1 to within this (float32 rounding of a few dozen
# actions stays well inside it).
PROBABILITY_SUM_TOLERANCE = 1e-5


def probabilities(
    name: str, value: ArrayLike | Sequence, dtype=None, *, batched: bool = False
) -> Array:
    """A probability vector over actions (the last axis; with `batched`, leading axes
    hold several): finite, non-negative and summing to 1 within
    `PROBABILITY_SUM_TOLERANCE`, checked when concrete; raises naming `name`. Cast to
    `dtype`, or, when not floating, to `default_float()`."""
    array = jnp.asarray(value, dtype)
    if not jnp.issubdtype(array.dtype, jnp.floating):
        array = array.astype(default_float())
    if batched and array.ndim < 1:
        raise ValueError(f"{name} must have an axis of actions, got shape {array.shape}")
    if not batched and (array.ndim != 1 or array.shape[0] < 1):
        raise ValueError(
            f"{name} must be a vector of action probabilities, got shape {array.shape}"
        )
    if is_traced(array):
        return array
    concrete = np.asarray(array, np.float64)
    if not np.all(np.isfinite(concrete)) or np.any(concrete < 0):
        raise ValueError(f"{name} must be non-negative and finite, got {concrete.tolist()}")
    sums = concrete.sum(axis=-1)
    if np.any(np.abs(sums - 1) > PROBABILITY_SUM_TOLERANCE):
        raise ValueError(f"{name} must sum to 1, got {concrete.tolist()} (sums {sums})")
    return array


def unit_interval_open(name: str, value: ArrayLike, dtype=None) -> Array:
    """`as_float`, and in [0, 1) (a decay rate such as Adam's `beta2`)."""
    array = as_float(name, value, dtype)
    concrete = _concrete(array)
    if concrete is not None and not 0 <= concrete < 1:
        raise ValueError(f"{name} must be in [0, 1), got {float(concrete)}")
    return array


def flag(name: str, value: object) -> bool:
    """A Python (or NumPy) bool, for a static switch such as `semi_gradient`."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return bool(value)


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
    if is_traced(low) or is_traced(high):
        return
    if not float(low) <= float(high):
        raise ValueError(
            f"{low_name} must be <= {high_name}, got {low_name}={float(low)}, "
            f"{high_name}={float(high)}"
        )


def cast_floating(tree, dtype):
    """`tree` with every floating-point array leaf cast to `dtype`, so that a learner
    built in float64 computes in float64 throughout. A concrete scalar that the cast
    makes non-finite (a step-size of `1e5` in float16) is refused, naming its field."""

    def cast(path, a):
        if not eqx.is_inexact_array(a):
            return a
        with np.errstate(over="ignore"):  # an overflowing cast is reported below
            cast = a.astype(dtype)
        concrete = _concrete(a)
        if concrete is not None and concrete.shape == ():
            _finite_in(jax.tree_util.keystr(path, simple=True, separator="."), concrete, cast)
        return cast

    return jax.tree_util.tree_map_with_path(cast, tree)


def scalar_target(y: ArrayLike, dtype, name: str = "y") -> Float[Array, ""]:
    """A real scalar (a target, a reward) cast to `dtype`; the 0.2.x streams give
    shape `(1,)`, which is accepted too. Integers are exact in a float, so they pass;
    complex and boolean values do not."""
    given = _dtype_of(y)
    y = jnp.asarray(y)
    if y.shape not in ((), (1,)):
        raise ValueError(f"{name} must be a scalar (or shape (1,)), got shape {y.shape}")
    if not jnp.issubdtype(y.dtype, jnp.floating) and not jnp.issubdtype(y.dtype, jnp.integer):
        raise TypeError(f"{name} must be real, got dtype {given}")
    return jnp.reshape(y, ()).astype(dtype)


def features(x: ArrayLike, feature_dim: int, dtype, name: str = "x") -> Float[Array, " n"]:
    """An observation of shape `(feature_dim,)`, real floating-point, cast to `dtype`.
    Integer, boolean and complex observations are refused, not cast: a silent cast
    would hide a stream that produces the wrong kind of data."""
    given = _dtype_of(x)
    x = jnp.asarray(x)
    if x.shape != (feature_dim,):
        raise ValueError(
            f"{name} must have shape ({feature_dim},) for this learner, got {x.shape}"
        )
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{name} must be a real floating-point array, got dtype {given}")
    return x.astype(dtype)


def _dtype_of(value: ArrayLike):
    """The dtype `value` was given in: a NumPy int64 array keeps int64 here, where
    `jnp.asarray` (without x64) would report int32."""
    dtype = getattr(value, "dtype", None)
    return dtype if dtype is not None else jnp.asarray(value).dtype


@runtime_checkable
class _Transition(Protocol):
    """What `transition` reads: a `TDTimeStep` or an `OffPolicyTimeStep` (read-only
    attributes, as a NamedTuple's fields are)."""

    @property
    def observation(self) -> ArrayLike: ...
    @property
    def next_observation(self) -> ArrayLike: ...
    @property
    def reward(self) -> ArrayLike: ...
    @property
    def discount(self) -> ArrayLike: ...


def transition(
    timestep: _Transition, feature_dim: int, dtype
) -> tuple[Float[Array, " n"], Float[Array, " n"], Float[Array, ""], Float[Array, ""]]:
    """A transition's features `x`, next features `x'`, reward and discount, each
    checked (`features`, `scalar_target`, naming the timestep's field) and cast to
    `dtype`: the start of every TD learner's `learn`."""
    x = features(timestep.observation, feature_dim, dtype, name="observation")
    x_next = features(timestep.next_observation, feature_dim, dtype, name="next_observation")
    reward = scalar_target(timestep.reward, dtype, name="reward")
    discount = scalar_target(timestep.discount, dtype, name="discount")
    return x, x_next, reward, discount
