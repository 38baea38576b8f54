"""Saving and loading a learner (and a run's stream state and step): `save_checkpoint`,
`load_checkpoint`, `read_checkpoint_header`."""

import hashlib
import io
import json
import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

import equinox as eqx
import jax
import numpy as np

import alberta_eqx
from alberta_eqx._checks import non_negative_int
from alberta_eqx.checkpoint._format import (
    _LENGTH,
    FORMAT_VERSION,
    CheckpointError,
    _read,
)
from alberta_eqx.checkpoint._structure import (
    _describe,
    _differences,
    _rewrap_keys,
    _unwrap_keys,
)
from alberta_eqx.checkpoint.files import write_atomically
from alberta_eqx.learners import AbstractLearner
from alberta_eqx.streams import StreamState

_MAX_DIFFERENCES = 6  # listed in an error message; the rest are counted


class Checkpoint(NamedTuple):
    """What `load_checkpoint` returns.

    ```python
    import jax.numpy as jnp
    from alberta_eqx import LMS, LinearLearner, load_checkpoint, save_checkpoint

    learner, _ = LinearLearner(3, LMS(0.1)).update(jnp.array([1.0, 0.5, -1.0]), 2.0)
    save_checkpoint("learner.eqx", learner, metadata={"note": "after one step"})
    checkpoint = load_checkpoint("learner.eqx", LinearLearner(3, LMS(0.1)))  # a Checkpoint
    checkpoint.learner.weights[0]  # about 0.2, the saved weights
    checkpoint.metadata["note"]  # 'after one step'
    ```

    **Fields:**

    - `learner`: the saved learner.
    - `stream_state`: the saved stream state, or None when none was saved.
    - `step`: the saved step counter (the next step to run), or None.
    - `metadata`: the user's metadata saved with it (`save_checkpoint(metadata=)`), or
      an empty dict.
    """

    learner: AbstractLearner
    stream_state: StreamState | None
    step: int | None
    metadata: Mapping[str, Any] = MappingProxyType({})


def save_checkpoint(
    path: str | os.PathLike,
    learner: AbstractLearner,
    *,
    stream_state: StreamState | None = None,
    step: int | None = None,
    allow_nonfinite: bool = False,
    metadata: Mapping[str, Any] | None = None,
    follow_symlinks: bool = True,
) -> None:
    """Save `learner` (and, for a run in progress, its stream state and step) to `path`.

    **Arguments:**

    - `path`: the file to write; an existing file is replaced atomically. A symbolic
      link is followed: its target is replaced and the link kept.
    - `learner`: the learner (`result.learner` of a run, batched or not).
    - `stream_state`: the stream's state (`result.stream_state`), to continue the run.
    - `step`: the index of the next step (the run's `start_step + num_steps`); required
      with `stream_state`.
    - `allow_nonfinite`: save a learner holding NaN or infinite values. By default
      such a learner is refused, so that a diverged learner never replaces the last
      good checkpoint.
    - `metadata`: the user's own JSON-able information to keep with the learner (what
      the daemon runs, for example `alberta_eqx.config.to_config(learner)`, a version,
      a data source), read back as `Checkpoint.metadata` and in
      `read_checkpoint_header(path)["metadata"]`; covered by the header's checksum.
    - `follow_symlinks`: with False, a symbolic link at `path` is replaced by the new
      file instead of followed (for a file the program owns, in a directory others
      may write to: a link planted there never redirects the save).

    To continue the run, load it and pass `stream_state=checkpoint.stream_state` (or
    `stream_states=` to the batched runner) and `start_step=checkpoint.step`.

    **Raises:** `ValueError` naming the first non-finite array of the learner;
    `PermissionError` when `path` (or the file a link at `path` points to) is
    read-only.
    """
    if stream_state is not None and step is None:
        raise ValueError("step must be given with stream_state: it is where the run resumes")
    if step is not None:
        step = non_negative_int("step", step)
    if not allow_nonfinite:
        _check_finite(learner)
    metadata = _json_metadata(metadata)
    buffer = io.BytesIO()
    eqx.tree_serialise_leaves(buffer, _unwrap_keys((learner, stream_state)))
    payload = buffer.getvalue()
    header = {
        "format_version": FORMAT_VERSION,
        "library_version": alberta_eqx.__version__,
        "step": step,
        "metadata": metadata,
        "learner": _describe(learner),
        "stream_state": None if stream_state is None else _describe(stream_state),
        "payload_bytes": len(payload),
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
    }
    encoded = json.dumps(header, allow_nan=False).encode()
    magic = b"alberta_eqx checkpoint %d\n" % FORMAT_VERSION
    digest = hashlib.sha256(encoded).digest()
    write_atomically(
        path,
        [magic, _LENGTH.pack(len(encoded)), digest, encoded, payload],
        follow_symlinks=follow_symlinks,
    )


def _json_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """`metadata` as a plain dict that JSON writes and reads back unchanged; raises
    naming `metadata` otherwise (before anything is written)."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}")
    try:
        text = json.dumps(dict(metadata), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"metadata must be JSON-able (str keys, finite numbers): {error}"
        ) from None
    if json.loads(text) != metadata:
        raise TypeError("metadata must read back unchanged from JSON (str keys, lists not tuples)")
    return json.loads(text)


def _check_finite(learner: AbstractLearner) -> None:
    for path, leaf in jax.tree_util.tree_flatten_with_path(learner)[0]:
        if isinstance(leaf, jax.Array | np.ndarray) and np.issubdtype(leaf.dtype, np.inexact):
            values = np.asarray(leaf)
            bad = ~np.isfinite(values)
            if bad.any():
                raise ValueError(
                    f"learner{jax.tree_util.keystr(path)} holds {int(bad.sum())} non-finite "
                    f"value(s) (such as {values[bad].flat[0]}): refusing to save a diverged "
                    f"learner over a good checkpoint; pass allow_nonfinite=True to save it"
                )


def load_checkpoint(
    path: str | os.PathLike,
    like_learner: AbstractLearner,
    *,
    like_stream_state: StreamState | None = None,
) -> Checkpoint:
    """Load a checkpoint saved by `save_checkpoint`.

    **Arguments:**

    - `path`: the checkpoint file.
    - `like_learner`: a learner of the saved one's structure (same class, optimizer,
      normalizer, feature count and batch shape), for example a freshly built one.
      Only its structure is used: every array, hyperparameters included, comes from
      the file.
    - `like_stream_state`: likewise for the stream state, for example
      `stream.init(key)` (vmapped over keys for a batched run); required when the
      checkpoint holds one.

    **Returns:** a `Checkpoint`.

    **Raises:** `CheckpointError` when the file is truncated or corrupted, of a newer
    format, or its contents do not match `like_learner` / `like_stream_state`; the
    message says what differs.
    """
    header, payload = _read(path)
    differences = _differences("learner", header["learner"], _describe(like_learner))
    saved_state = header["stream_state"]
    if saved_state is not None and like_stream_state is None:
        raise CheckpointError(
            f"{os.fspath(path)!r} holds a stream state: pass like_stream_state (for "
            f"example stream.init(key)) to load it"
        )
    if saved_state is None and like_stream_state is not None:
        raise CheckpointError(
            f"{os.fspath(path)!r} holds no stream state, but like_stream_state was given"
        )
    if saved_state is not None:
        differences += _differences("stream_state", saved_state, _describe(like_stream_state))
    if differences:
        listed = differences[:_MAX_DIFFERENCES]
        more = len(differences) - len(listed)
        raise CheckpointError(
            f"{os.fspath(path)!r} does not match the structure it is loaded into "
            f"(file vs like_learner / like_stream_state): "
            + "; ".join(listed)
            + (f"; and {more} more" if more else "")
        )
    like = _unwrap_keys((like_learner, like_stream_state))
    learner, stream_state = eqx.tree_deserialise_leaves(io.BytesIO(payload), like)
    stream_state = _rewrap_keys(stream_state, like_stream_state)
    return Checkpoint(
        _rewrap_keys(learner, like_learner), stream_state, header["step"], header["metadata"]
    )


def read_checkpoint_header(path: str | os.PathLike) -> dict:
    """The header of a checkpoint file (its format and library versions, step and the
    description of its contents) as a dict, after checking the file is complete.

    **Raises:** `CheckpointError` when the file is not a checkpoint, is truncated or
    corrupted, or is of a newer format than this library reads.
    """
    return _read(path)[0]
