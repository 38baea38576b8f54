"""Checkpoints: a learner, and for a run in progress its stream state and step, in a file.

A checkpoint file is

    MAGIC | header length (8 bytes, little-endian) | header SHA-256 | header (JSON) | payload

where MAGIC names the format version (`alberta_eqx checkpoint 2` and a newline), the
payload is `eqx.tree_serialise_leaves` of `(learner, stream_state)` and the header
describes it: the format and library versions, the step, and for the learner
and the stream state their structure (the class at every node, the static fields,
every leaf's path, shape and dtype, and the value of every scalar leaf, among them
the hyperparameters), with the payload's length and SHA-256. Loading compares that
description with the templates it is given before reading a single leaf, so a
checkpoint of another optimizer or feature count, a truncated or corrupted file, or
one from a newer format is refused with a `CheckpointError` naming what differs:
nothing is half-loaded.

Typed PRNG keys (`jax.random.key`) cannot be written as arrays: they are stored as
their `jax.random.key_data` and rewrapped, with the implementation recorded in the
header, on loading.

Saving is atomic: the file is written beside its destination under a temporary
name, flushed to disk and renamed over it, so a crash mid-save leaves the previous
checkpoint in place. A symbolic link is followed (its target is replaced, the link
kept) unless `follow_symlinks=False`; the temporary file is created new, never
through a link (`O_EXCL`, `O_NOFOLLOW`); a read-only destination is refused; the new
file's mode is the one `open()` would give it (the umask applied to 0o666, or the
replaced file's mode); temporary files left behind by a killed save are removed by
the next save to that path.
"""

import dataclasses
import hashlib
import io
import json
import math
import os
import re
import struct
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

import equinox as eqx
import jax
import numpy as np
from jaxtyping import PyTree

import alberta_eqx
from alberta_eqx._checks import non_negative_int
from alberta_eqx.checkpoint._files import write_atomically
from alberta_eqx.learners import AbstractLearner
from alberta_eqx.streams import StreamState

FORMAT_VERSION = 2
"""The checkpoint format this library writes; it reads this one and older ones.
(Format 1 had no checksum of its header.)"""

_MAGIC_V1 = b"alberta_eqx checkpoint\n"
_MAGIC = re.compile(rb"alberta_eqx checkpoint (\d{1,6})\n")  # format 2 on
_LENGTH = struct.Struct("<Q")
_DIGEST = 32  # bytes of the header's SHA-256 (format 2 on)
_MAX_DIFFERENCES = 6  # listed in an error message; the rest are counted
_HEADER_FIELDS = frozenset(
    {
        "format_version",
        "library_version",
        "step",
        "metadata",
        "learner",
        "stream_state",
        "payload_bytes",
        "payload_sha256",
    }
)


class CheckpointError(ValueError):
    """A checkpoint file cannot be loaded: it is truncated, corrupted, of a newer
    format, or does not match the structure it is loaded into."""


class Checkpoint(NamedTuple):
    """What `load_checkpoint` returns.

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


def _read(path: str | os.PathLike) -> tuple[dict, bytes]:
    """The checked header and the payload of a checkpoint file."""
    name = repr(os.fspath(path))
    with os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0)), "rb") as f:
        data = f.read()
    return _parse(data, name)


def _parse(data: bytes, name: str) -> tuple[dict, bytes]:
    """The checked header and the payload of a checkpoint file's bytes: every check
    before the payload is deserialised, so that a bad file costs little."""
    match = _MAGIC.match(data, 0, 40)
    if data.startswith(_MAGIC_V1):
        version, start, digest = 1, len(_MAGIC_V1) + _LENGTH.size, None
    elif match is not None:
        version, start = int(match.group(1)), match.end() + _LENGTH.size + _DIGEST
        if version > FORMAT_VERSION:
            raise CheckpointError(
                f"{name} has format version {version}; this alberta_eqx "
                f"({alberta_eqx.__version__}) reads format versions up to "
                f"{FORMAT_VERSION}: upgrade alberta_eqx to load it"
            )
        if version < 2:
            raise CheckpointError(f"{name} has a corrupted magic line (format {version})")
        digest = data[match.end() + _LENGTH.size : start]
    else:
        raise CheckpointError(f"{name} is not an alberta_eqx checkpoint (no magic bytes)")
    if len(data) < start:
        raise CheckpointError(f"{name} is truncated: it ends inside the header length")
    (length,) = _LENGTH.unpack_from(data, start - _LENGTH.size - (0 if version == 1 else _DIGEST))
    if len(data) < start + length:
        raise CheckpointError(
            f"{name} is truncated or corrupted: its header should be {length} bytes, "
            f"{len(data) - start} are present"
        )
    encoded = data[start : start + length]
    if digest is not None and hashlib.sha256(encoded).digest() != digest:
        raise CheckpointError(f"{name} has a corrupted header: it fails its SHA-256 check")
    try:
        header = json.loads(encoded, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as error:
        raise CheckpointError(f"{name} has a corrupted header ({error!r})") from error
    if version == 1 and isinstance(header, dict) and "metadata" not in header:
        header["metadata"] = {}  # format 1 had no user metadata
    problem = _header_problem(header, version)
    if problem:
        raise CheckpointError(f"{name} has a corrupted header: {problem}")
    payload = data[start + length :]
    if header["payload_bytes"] != len(payload):
        raise CheckpointError(
            f"{name} is truncated or corrupted: its payload should be "
            f"{header['payload_bytes']} bytes, {len(payload)} are present"
        )
    if hashlib.sha256(payload).hexdigest() != header["payload_sha256"]:
        raise CheckpointError(f"{name} is corrupted: its payload fails its SHA-256 check")
    return header, payload


def _refuse_constant(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _header_problem(header: Any, version: int) -> str | None:
    """What is wrong with a parsed header, or None: every field's type and range."""
    if not isinstance(header, dict):
        return f"it is a JSON {type(header).__name__}, not an object"
    if header.keys() != _HEADER_FIELDS:
        missing, extra = _HEADER_FIELDS - header.keys(), header.keys() - _HEADER_FIELDS
        return ", ".join(
            f"{what} {sorted(fields)}"
            for what, fields in (("missing", missing), ("unknown", extra))
            if fields
        )
    checks = {
        "format_version": header["format_version"] == version
        and _is_int(header["format_version"]),
        "library_version": isinstance(header["library_version"], str),
        "step": header["step"] is None or (_is_int(header["step"]) and header["step"] >= 0),
        "metadata": isinstance(header["metadata"], dict),
        "payload_bytes": _is_int(header["payload_bytes"]) and header["payload_bytes"] >= 0,
        "payload_sha256": isinstance(header["payload_sha256"], str)
        and re.fullmatch("[0-9a-f]{64}", header["payload_sha256"]) is not None,
        "learner": _is_description(header["learner"]),
        "stream_state": header["stream_state"] is None or _is_description(header["stream_state"]),
    }
    bad = [field for field, ok in checks.items() if not ok]
    if bad:
        field = bad[0]
        shown = repr(header[field]) if field not in ("learner", "stream_state") else "..."
        return f"{field} is invalid ({shown[:80]})" + (
            f" (format version {version})" if field == "format_version" else ""
        )
    return None


_LEAF_KEYS = ({"shape", "dtype"}, {"shape", "dtype", "value"}, {"shape", "dtype", "key_impl"})


def _is_description(described: Any) -> bool:
    """Whether `described` has the form `_describe` writes."""
    if not isinstance(described, dict) or described.keys() != {"nodes", "leaves"}:
        return False
    nodes, leaves = described["nodes"], described["leaves"]
    if not isinstance(nodes, dict) or not isinstance(leaves, dict):
        return False
    for node in nodes.values():
        if not (
            isinstance(node, dict)
            and isinstance(node.get("type"), str)
            and node.keys() <= {"type", "static"}
            and isinstance(node.get("static", {}), dict)
        ):
            return False
    for leaf in leaves.values():
        if not isinstance(leaf, dict):
            return False
        if "shape" in leaf:
            shape = leaf["shape"]
            if not (
                leaf.keys() in _LEAF_KEYS
                and isinstance(shape, list)
                and all(_is_int(n) and n >= 0 for n in shape)
                and isinstance(leaf["dtype"], str)
                and isinstance(leaf.get("key_impl", ""), str)
            ):
                return False
        elif not (isinstance(leaf.get("type"), str) and leaf.keys() <= {"type", "value"}):
            return False
    return True


def _is_key(leaf: Any) -> bool:
    return isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def _unwrap_keys(tree: PyTree) -> PyTree:
    """Typed PRNG keys replaced by their raw `uint32` key data, which serialises."""
    return jax.tree.map(lambda leaf: jax.random.key_data(leaf) if _is_key(leaf) else leaf, tree)


def _rewrap_keys(tree: PyTree, like: PyTree) -> PyTree:
    """Undo `_unwrap_keys`: wrap the key data where `like` has typed keys (whose
    implementation `_differences` has checked is the saved one)."""
    return jax.tree.map(
        lambda leaf, template: (
            jax.random.wrap_key_data(leaf, impl=jax.random.key_impl(template))
            if _is_key(template)
            else leaf
        ),
        tree,
        like,
    )


def _describe_leaf(leaf: Any) -> dict:
    if _is_key(leaf):
        return {
            "shape": list(leaf.shape),
            "dtype": "key",
            "key_impl": str(jax.random.key_impl(leaf)),
        }
    if isinstance(leaf, jax.Array | np.ndarray | np.generic):
        described: dict = {"shape": list(np.shape(leaf)), "dtype": str(leaf.dtype)}
        if np.ndim(leaf) == 0 and np.issubdtype(leaf.dtype, np.number):
            described["value"] = _json_number(np.asarray(leaf).item())
        return described
    if isinstance(leaf, bool | int | float):
        return {"type": type(leaf).__name__, "value": _json_number(leaf)}
    # Not serialised (a function in an `eqx.nn.MLP`, say): taken from the template.
    return {"type": type(leaf).__name__}


def _json_number(value: Any) -> Any:
    """JSON has no NaN or infinity: those are written as "nan", "inf", "-inf"."""
    return str(value) if isinstance(value, float) and not math.isfinite(value) else value


def _static_value(value: Any) -> Any:
    """A static field as JSON: plain values as they are, anything else by type name
    (a function's repr holds its address, which differs from process to process)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, tuple | list) and all(
        isinstance(v, bool | int | float | str) for v in value
    ):
        return list(value)
    return f"<{type(value).__qualname__}>"


def _describe(tree: PyTree) -> dict:
    """The structure of `tree`: every inner node's class (and a module's static
    fields), and every leaf's shape and dtype, all keyed by path."""
    nodes: dict[str, dict] = {}
    leaves: dict[str, dict] = {}

    def walk(node: Any, path: tuple) -> None:
        name = jax.tree_util.keystr(path)
        # One level, every child a leaf. (`flatten_one_level_with_keys` names a
        # NamedTuple's children all after its first field in JAX 0.10.)
        children, treedef = jax.tree_util.tree_flatten_with_path(
            node, is_leaf=lambda child: child is not node
        )
        if jax.tree_util.treedef_is_leaf(treedef) and children == [((), node)]:
            leaves[name] = _describe_leaf(node)
            return
        described: dict = {"type": f"{type(node).__module__}.{type(node).__qualname__}"}
        if isinstance(node, eqx.Module):
            described["static"] = {
                field.name: _static_value(getattr(node, field.name, None))
                for field in dataclasses.fields(node)
                if field.metadata.get("static", False)
            }
        nodes[name] = described
        for (key,), child in children:
            walk(child, (*path, key))

    walk(tree, ())
    return {"nodes": nodes, "leaves": leaves}


def _differences(what: str, saved: dict, like: dict) -> list[str]:
    """What differs between the saved description and the template's, one line each:
    nodes first, by path, and nothing below a node whose class differs (that
    difference explains the rest)."""
    differences: list[str] = []
    replaced: list[str] = []
    for kind in ("nodes", "leaves"):
        saved_items, like_items = saved[kind], like[kind]
        for path in sorted(saved_items.keys() | like_items.keys()):
            if any(path.startswith(node) and path != node for node in replaced):
                continue
            where = f"{what}{path}"
            a, b = saved_items.get(path), like_items.get(path)
            if a is None or b is None:
                present = "the file" if b is None else f"like_{what}"
                differences.append(f"{where} is only in {present}")
                continue
            if a.get("type") != b.get("type") and kind == "nodes":
                replaced.append(path)
            a, b = _comparable(a), _comparable(b)
            for field in sorted(a.keys() | b.keys()):
                if a.get(field) != b.get(field):
                    differences.append(
                        f"{where} {field}: {_show(a.get(field))} vs {_show(b.get(field))}"
                    )
                    if field == "type":
                        break
    return differences


def _comparable(described: dict) -> dict:
    """A description's fields to compare, with "type" first and a module's static
    fields one by one; scalar values are left out (they come from the file)."""
    fields = {k: v for k, v in described.items() if k not in ("value", "static")}
    fields.update({f"static {k}": v for k, v in described.get("static", {}).items()})
    return fields


def _show(value: Any) -> str:
    if isinstance(value, list):
        return f"({', '.join(map(str, value))}{',' if len(value) == 1 else ''})"
    return str(value)
