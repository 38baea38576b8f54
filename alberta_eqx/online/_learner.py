"""`OnlineLearner`: one event at a time, from Python, at the least cost per call.

At this scale the cost of a call is dispatch, not arithmetic. `eqx.filter_jit`
partitions its arguments into arrays and static parts and hashes the static parts at
every call, which costs more than a small learner's whole update; a `jax.jit`
function of the arrays alone does not, but it still pays for every array it takes
and returns (an MLP and its optimizer state are dozens). So `OnlineLearner`:

- partitions the learner once and keeps its arrays between events packed into one
  flat buffer per dtype, donated to each call (updated in place, no allocation);
- converts `x` and `y` to NumPy arrays of the learner's dtype before the call, so
  that one compiled entry serves lists, Python floats, NumPy arrays of any dtype and
  JAX arrays alike (`jax.jit` keys its cache on the argument types);
- packs the step's whole result (prediction, error, metrics) and a status code into
  one array, read back in one transfer and unpacked in NumPy;
- checks for non-finite values inside the compiled update (one fused reduction) and
  selects the old or the new state there, so that the policy costs no extra dispatch.
"""

import functools
import math
import threading
from collections.abc import Sequence
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Real

from alberta_eqx.learners import AbstractLearner, UpdateResult

NonFinitePolicy = Literal["raise", "skip", "allow"]

# The status code the compiled update returns, last in its packed result.
_OK, _BAD_X, _BAD_Y, _BAD_UPDATE = 0, 1, 2, 3
_WHAT = {_BAD_X: "x", _BAD_Y: "y", _BAD_UPDATE: "the update"}


class NonFiniteEventError(ValueError):
    """An event refused by `OnlineLearner(..., nonfinite="raise")`: its input holds a
    NaN or an infinity, or learning from it would have made the learner non-finite.
    The learner is left as it was before the event.

    **Attributes:**

    - `what`: `"x"`, `"y"` or `"the update"`.
    """

    def __init__(self, what: str, message: str):
        super().__init__(message)
        self.what = what


def _pack(leaves: list[Array]) -> dict[str, Array]:
    """The leaves raveled and concatenated, one 1-D buffer per dtype."""
    groups: dict[str, list[Array]] = {}
    for leaf in leaves:
        groups.setdefault(leaf.dtype.name, []).append(jnp.ravel(leaf))
    return {dtype: jnp.concatenate(parts) for dtype, parts in groups.items()}


def _all_finite(arrays) -> Array:
    checks = [jnp.isfinite(a).all() for a in arrays if jnp.issubdtype(a.dtype, jnp.inexact)]
    return jnp.stack(checks).all() if checks else jnp.array(True)


@functools.lru_cache(maxsize=16)
def _compiled(
    treedef: Any,
    static: Any,
    shapes: tuple,
    nonfinite: NonFinitePolicy,
    missing_ok: bool,
    dtype: np.dtype,
) -> tuple:
    """The compiled update and predict of a learner structure: `(unpack, update,
    predict, layouts)`. Cached, so that `OnlineLearner`s of one structure (a
    `DurableLearner` reopened, or restored after an I/O error) share one compilation;
    `layouts` (per input shapes: how to unpack the packed result) is shared with it."""
    layouts: dict = {}

    def unpack(buffers: dict[str, Array]) -> AbstractLearner:
        offsets = dict.fromkeys(buffers, 0)
        out = []
        for shape, leaf_dtype in shapes:
            start, size = offsets[leaf_dtype.name], math.prod(shape)
            out.append(buffers[leaf_dtype.name][start : start + size].reshape(shape))
            offsets[leaf_dtype.name] = start + size
        return eqx.combine(jax.tree.unflatten(treedef, out), static)

    def update(buffers, x, y):
        new, result = unpack(buffers).update(x, y)
        new_buffers = _pack(jax.tree.leaves(eqx.filter(new, eqx.is_array)))
        outputs, result_def = jax.tree.flatten(result)
        packed_dtype = jnp.result_type(*outputs, dtype)
        # Runs while tracing: how the host splits the packed result again (in one
        # slice when every output is a scalar of the packed dtype, the usual case).
        scalars = all(o.shape == () and o.dtype == packed_dtype for o in outputs)
        layouts[(x.shape, y.shape)] = (
            result_def,
            len(outputs) if scalars else None,
            [(o.shape, o.dtype, math.prod(o.shape)) for o in outputs],
        )
        packed = [jnp.ravel(o).astype(packed_dtype) for o in outputs]
        if nonfinite != "allow":
            y_ok = ~jnp.isinf(y).any() if missing_ok else jnp.isfinite(y).all()
            status = jnp.where(
                ~jnp.isfinite(x).all(),
                _BAD_X,
                jnp.where(~y_ok, _BAD_Y, jnp.where(_all_finite(new_buffers.values()), 0, 3)),
            )
            keep_old = status != _OK
            new_buffers = {k: jnp.where(keep_old, buffers[k], v) for k, v in new_buffers.items()}
            packed.append(status.astype(packed_dtype)[None])
        return new_buffers, jnp.concatenate(packed)

    predict = jax.jit(lambda buffers, x: unpack(buffers).predict(x))
    return unpack, jax.jit(update, donate_argnums=0), predict, layouts


class OnlineResult:
    """What `OnlineLearner.update` returns: the learner's result (an `UpdateResult`
    for the supervised learners), read back from the device in one array and unpacked
    into NumPy values the first time one of its fields is read, so that a daemon that
    does not read it pays nothing for it.

    Its fields read as the result's (`result.prediction`, `result.error`,
    `result.metrics.squared_error`, ...), it unpacks as the result does
    (`prediction, error, metrics = result`), and `result.unpacked` is the result
    itself.
    """

    __slots__ = ("_host", "_layout", "_unpacked")

    def __init__(self, host: np.ndarray, layout: tuple):
        self._host, self._layout, self._unpacked = host, layout, None

    @property
    def unpacked(self) -> UpdateResult | Any:
        """The learner's result (its own type), with NumPy leaves."""
        if self._unpacked is None:
            host, (result_def, scalars, layout) = self._host, self._layout
            if scalars is not None:
                parts = list(host[:scalars])
            else:
                parts, start = [], 0
                for shape, dtype, size in layout:
                    part = host[start] if shape == () else host[start : start + size]
                    part = part.reshape(shape)
                    parts.append(part if part.dtype == dtype else part.astype(dtype))
                    start += size
            self._unpacked = result_def.unflatten(parts)
        return self._unpacked

    def __getattr__(self, name: str):  # the fields: prediction, error, metrics, ...
        return getattr(self.unpacked, name)

    def __iter__(self):
        return iter(self.unpacked)

    def __len__(self) -> int:
        return len(self.unpacked)

    def __getitem__(self, index):
        return self.unpacked[index]

    def __repr__(self) -> str:
        return f"OnlineResult({self.unpacked!r})"


class OnlineLearner:
    """A learner kept ready for single-event updates (a mutable holder, unlike the
    learners themselves: a daemon keeps one and feeds it events).

    ```python
    from alberta_eqx import IDBD, LinearLearner, OnlineLearner

    online = OnlineLearner(LinearLearner(3, IDBD(0.05, meta_step_size=0.01)))
    events = [([1.0, 0.5, -1.0], 2.0), ([0.0, 1.0, 1.0], -1.0)]  # as they arrive
    for x, y in events:                 # compiled at the first event
        result = online.update(x, y)    # result.prediction, result.error, result.metrics
    online.learner                      # the current learner, an ordinary module
    ```

    **Arguments:**

    - `learner`: any learner (`LinearLearner`, `MLPLearner`, ...). Its non-array fields
      (an activation function, an optax transformation) are compiled in as constants.
      Build an `MLPLearner` with `flatten=True` for this use: its optimizer then runs
      on one parameter vector, which halves the latency per event of a 64x64 MLP
      under Autostep (see `MLPLearner`).
    - `nonfinite`: what an event does when `x` or `y` holds a NaN or an infinity
      (after conversion to the learner's dtype, so `1e39` is an infinity in float32),
      or when learning from it would leave a NaN or an infinity anywhere in the
      learner (a finite target of `1e30` overflows in float32):
        - `"raise"` (the default): refuse it with a `NonFiniteEventError` naming `x`,
          `y` or `"the update"`; the learner stays as it was;
        - `"skip"`: leave the learner as it was, count the event in `skipped`, and
          return its result (whose numbers may be non-finite);
        - `"allow"`: learn from it regardless (a NaN then spreads to every weight).

      A learner whose class sets `accepts_missing_targets = True` (a multi-head
      learner, where NaN marks a head without a target this step) may be given NaN
      in `y`; an infinity in `y` is still refused.

    **Threads:** every method takes a lock, so threads may share one `OnlineLearner`;
    their events are applied one at a time, in the order they take the lock.

    **Results:** `update` waits for the event to be learned and returns an
    `OnlineResult`, which reads as the learner's `UpdateResult` with NumPy values.
    """

    def __init__(self, learner: AbstractLearner, *, nonfinite: NonFinitePolicy = "raise"):
        if not isinstance(learner, AbstractLearner):
            raise TypeError(
                f"learner must be an alberta_eqx learner, got {type(learner).__name__}"
            )
        if nonfinite not in ("raise", "skip", "allow"):
            raise ValueError(f"nonfinite must be 'raise', 'skip' or 'allow', got {nonfinite!r}")
        arrays, static = eqx.partition(learner, eqx.is_array)
        leaves, treedef = jax.tree.flatten(arrays)
        shapes = [(leaf.shape, leaf.dtype) for leaf in leaves]
        floats = [leaf.dtype for leaf in leaves if jnp.issubdtype(leaf.dtype, jnp.floating)]
        if not floats:
            raise TypeError(f"{type(learner).__name__} has no floating-point arrays to learn")
        self.dtype = np.dtype(jnp.result_type(*floats))
        """The dtype `x` and `y` are converted to: the learner's floating dtype."""
        self.nonfinite = nonfinite
        self.events = 0
        """How many events the learner has learned from (refused and skipped ones
        not counted)."""
        self.skipped = 0
        """How many events `nonfinite="skip"` has left out."""
        self._missing_ok = type(learner).accepts_missing_targets
        self._lock = threading.Lock()
        key = (treedef, static, tuple(shapes), nonfinite, self._missing_ok, self.dtype)
        try:
            compiled = _compiled(*key)
        except (TypeError, ValueError):  # a static part that cannot be hashed or compared
            compiled = _compiled.__wrapped__(*key)
        self._unpack, self._update, self._predict, self._layouts = compiled
        self._buffers = _pack(leaves)

    @property
    def learner(self) -> AbstractLearner:
        """The learner as it is now (after every event so far)."""
        with self._lock:
            return self._unpack(self._buffers)

    def _convert(self, name: str, value: ArrayLike | Sequence[float | int]) -> np.ndarray:
        """`value` as a NumPy array of the learner's dtype. Everything goes through
        NumPy, JAX arrays included: `jax.jit` keys its cache on the argument types
        (NumPy or JAX, weak or strong type), so one compiled entry serves them all."""
        array = np.asarray(value)
        if array.dtype != self.dtype:
            if array.dtype.kind not in "biuf":
                raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")
            with np.errstate(over="ignore"):  # an overflow is reported as an infinity
                array = array.astype(self.dtype)
        return array

    def update(
        self,
        x: Real[ArrayLike, " n"] | Sequence[float | int],
        y: ArrayLike | Sequence[float | int],
    ) -> "OnlineResult":
        """Predict `x`, learn from the target `y`; returns the step's result (an
        `OnlineResult`: the learner's `UpdateResult`, with the prediction made before
        learning, the error and the metrics, as NumPy values, unpacked when read).

        **Raises:** `NonFiniteEventError` under `nonfinite="raise"` (see the class).
        """
        # The common case (float32 NumPy arrays) without a method call: this is the
        # whole of the per-event Python cost, so it is kept short.
        if type(x) is not np.ndarray or x.dtype != self.dtype:
            x = self._convert("x", x)
        if type(y) is not np.ndarray or y.dtype != self.dtype:
            y = self._convert("y", y)
        with self._lock:
            self._buffers, packed = self._update(self._buffers, x, y)
            host = np.asarray(packed)
            status = _OK if self.nonfinite == "allow" else host[-1]
            if status == _OK:
                self.events += 1
            elif self.nonfinite == "skip":
                self.skipped += 1
        if status != _OK and self.nonfinite == "raise":
            raise self._refusal(int(status), x, y)
        return OnlineResult(host, self._layouts[x.shape, y.shape])

    def _refusal(self, status: int, x: ArrayLike, y: ArrayLike) -> NonFiniteEventError:
        what = _WHAT[status]
        if status == _BAD_UPDATE:
            detail = (
                "learning from it would make the learner non-finite (an overflow in "
                f"{self.dtype.name}?)"
            )
        else:
            value = np.asarray(x if status == _BAD_X else y)
            missing_ok = status == _BAD_Y and self._missing_ok  # only infinities are bad
            bad = np.flatnonzero(np.isinf(value) if missing_ok else ~np.isfinite(value))
            detail = (
                f"{what} holds {value.ravel()[bad[0]]} at index {bad[0]} "
                f"({len(bad)} non-finite value(s) in {self.dtype.name})"
            )
        return NonFiniteEventError(
            what, f"event refused: {detail}; the learner is unchanged (nonfinite='raise')"
        )

    def predict(self, x: Real[ArrayLike, " n"] | Sequence[float | int]) -> Float[Array, "*k"]:
        """The prediction for `x`, without learning from it."""
        x = self._convert("x", x)
        with self._lock:
            return self._predict(self._buffers, x)
