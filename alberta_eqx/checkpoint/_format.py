"""The checkpoint file's format: the magic line naming the format version, the header
(JSON, with its length and SHA-256) and the payload, read back with every check made
before the payload is deserialised (`read_file`). `CheckpointError` is what a file that
cannot be loaded raises."""

import hashlib
import json
import os
import re
import struct
from typing import Any

import alberta_eqx
from alberta_eqx.checkpoint._structure import _is_description, _is_int

FORMAT_VERSION = 2
"""The checkpoint format this library writes; it reads this one and older ones.
(Format 1 had no checksum of its header.)"""

_MAGIC_V1 = b"alberta_eqx checkpoint\n"
_MAGIC = re.compile(rb"alberta_eqx checkpoint (\d{1,6})\n")  # format 2 on
_LENGTH = struct.Struct("<Q")
_DIGEST = 32  # bytes of the header's SHA-256 (format 2 on)
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
