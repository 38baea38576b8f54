"""The event journal: an append-only file of the events a `DurableLearner` learned.

    MAGIC ("alberta_eqx journal 1" and a newline) | dtype name and a newline | records

Each record is

    payload length (4 bytes) | CRC-32 of the payload (4 bytes) | payload

(little-endian), and its payload is the event's sequence number (8 bytes), the number
of axes of `x` and of `y` (1 byte each), their shapes (4 bytes an axis), then the bytes
of `x` and of `y` in the journal's dtype. A record is written with one `write` call,
so a killed process leaves whole records behind it; a power loss can leave the last
ones torn (cut short, or zeros where the data did not reach the disk), which the
length and the checksum detect.
"""

import os
import struct
import time
import zlib
from collections.abc import Iterator

import numpy as np

from alberta_eqx.checkpoint._files import fsync_directory

_MAGIC = b"alberta_eqx journal 1\n"
_FRAME = struct.Struct("<II")  # payload length, CRC-32
_EVENT = struct.Struct("<QBB")  # sequence number, x.ndim, y.ndim
_MIN_PAYLOAD = _EVENT.size


class JournalError(RuntimeError):
    """A journal that cannot be replayed: damaged before its last record (not a torn
    last write), of another dtype, or with events out of sequence."""


def encode(sequence: int, x: np.ndarray, y: np.ndarray) -> bytes:
    """One record: the frame and the payload, ready for one `write`."""
    payload = b"".join(
        (
            _EVENT.pack(sequence, x.ndim, y.ndim),
            struct.pack(f"<{x.ndim + y.ndim}I", *x.shape, *y.shape),
            x.tobytes(),
            y.tobytes(),
        )
    )
    return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def _decode(payload: bytes, dtype: np.dtype) -> tuple[int, np.ndarray, np.ndarray]:
    sequence, ndim_x, ndim_y = _EVENT.unpack_from(payload)
    shapes = struct.unpack_from(f"<{ndim_x + ndim_y}I", payload, _EVENT.size)
    shape_x, shape_y = shapes[:ndim_x], shapes[ndim_x:]
    start = _EVENT.size + 4 * (ndim_x + ndim_y)
    size_x = int(np.prod(shape_x, dtype=np.int64)) * dtype.itemsize
    size_y = int(np.prod(shape_y, dtype=np.int64)) * dtype.itemsize
    if start + size_x + size_y != len(payload):
        raise ValueError("the shapes do not match the payload's length")
    x = np.frombuffer(payload, dtype, offset=start, count=size_x // dtype.itemsize)
    y = np.frombuffer(payload, dtype, offset=start + size_x, count=size_y // dtype.itemsize)
    return sequence, x.reshape(shape_x), y.reshape(shape_y)


def read(path: str, dtype: np.dtype) -> tuple[list[tuple[int, np.ndarray, np.ndarray]], int]:
    """The journal's events in order, and the length of its valid part: a torn last
    record (and anything after it that is all zeros) is left out.

    **Raises:** `JournalError` when a damaged record is followed by valid data."""
    with open(path, "rb") as f:
        data = f.read()
    head = _MAGIC + dtype.name.encode() + b"\n"
    if not data.startswith(head):
        if head.startswith(data):  # killed while creating it: no record yet
            return [], 0
        raise JournalError(f"{path!r} is not an alberta_eqx journal of {dtype.name} events")
    events, offset = [], len(head)
    for payload, end in _records(data, offset):
        if payload is None:  # the damaged part: allowed only as the tail
            if end < len(data) and any(data[end:]):
                raise JournalError(
                    f"{path!r} is damaged at byte {offset}, before its last record (a torn "
                    f"write leaves only the tail damaged): refusing to replay it"
                )
            break
        try:
            events.append(_decode(payload, dtype))
        except (ValueError, struct.error) as error:  # a valid checksum, a bad layout
            raise JournalError(f"{path!r} has a malformed record at byte {offset}") from error
        offset = end
    return events, offset


def _records(data: bytes, offset: int) -> Iterator[tuple[bytes | None, int]]:
    """(payload, end) for each record from `offset`; (None, end of the damage) for
    the first record that is cut short or fails its checksum, then stop."""
    while offset < len(data):
        if offset + _FRAME.size > len(data):
            yield None, len(data)
            return
        length, crc = _FRAME.unpack_from(data, offset)
        end = offset + _FRAME.size + length
        if length < _MIN_PAYLOAD or end > len(data):
            yield None, len(data)
            return
        payload = data[offset + _FRAME.size : end]
        if zlib.crc32(payload) != crc:
            yield None, end
            return
        yield payload, end
        offset = end


def create(path: str, dtype: np.dtype) -> None:
    """A new, empty journal at `path`, durably (written aside, flushed, renamed)."""
    temporary = path + ".tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        os.write(fd, _MAGIC + dtype.name.encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    fsync_directory(os.path.dirname(path) or ".")  # the rename, durably


class Writer:
    """Appends records to a journal and flushes them to disk by a policy: after every
    `fsync_events` records, and at the first record `fsync_seconds` or more after the
    last flush (either may be None)."""

    def __init__(
        self, path: str, valid_length: int, fsync_events: int | None, fsync_seconds: float | None
    ):
        self.fd = os.open(path, os.O_WRONLY)
        os.ftruncate(self.fd, valid_length)  # drop a torn tail before appending
        os.lseek(self.fd, 0, os.SEEK_END)
        self.fsync_events, self.fsync_seconds = fsync_events, fsync_seconds
        self.unsynced = 0
        self.last_sync = time.monotonic()

    def append(self, record: bytes) -> None:
        view = memoryview(record)
        while view:  # a regular file takes it in one call; a short write would continue
            view = view[os.write(self.fd, view) :]
        self.unsynced += 1
        if (self.fsync_events is not None and self.unsynced >= self.fsync_events) or (
            self.fsync_seconds is not None
            and time.monotonic() - self.last_sync >= self.fsync_seconds
        ):
            self.sync()

    def sync(self) -> None:
        if self.unsynced:
            # fdatasync flushes the data and the file's new length, all a reader needs.
            getattr(os, "fdatasync", os.fsync)(self.fd)
            self.unsynced = 0
        self.last_sync = time.monotonic()

    def close(self) -> None:
        self.sync()
        os.close(self.fd)
