"""The event journal: an append-only file of the events a `DurableLearner` learned.

    MAGIC ("alberta_eqx journal 1" and a newline) | dtype name and a newline | records

Each record is

    payload length (4 bytes) | CRC-32 of the payload (4 bytes) | payload

(little-endian), and its payload is the event's sequence number (8 bytes), the number
of axes of `x` and of `y` (1 byte each), their shapes (4 bytes an axis), then the bytes
of `x` and of `y` in the journal's dtype. A record is written with one `write` call,
so a killed process leaves whole records behind it; a power loss can leave the last
one cut short, or zeros where the data did not reach the disk. Only that is taken for
a torn tail (and cut off); any other damage, which the length, the checksum and the
sequence numbers detect, makes the journal refuse to be read.
"""

import contextlib
import math
import os
import struct
import time
import zlib

import numpy as np

from alberta_eqx.checkpoint.files import (
    close_quietly,
    open_new,
    open_no_link,
    unlink_quietly,
    write_all,
)

_MAGIC = b"alberta_eqx journal 1\n"
_FRAME = struct.Struct("<II")  # payload length, CRC-32
_EVENT = struct.Struct("<QBB")  # sequence number, x.ndim, y.ndim
_MIN_PAYLOAD = _EVENT.size


class JournalError(RuntimeError):
    """A journal that cannot be replayed: damaged (anything but a torn last write), of
    another dtype, or with events out of sequence."""


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
    size_x = math.prod(shape_x) * dtype.itemsize
    size_y = math.prod(shape_y) * dtype.itemsize
    if start + size_x + size_y != len(payload):
        raise ValueError("the shapes do not match the payload's length")
    x = np.frombuffer(payload, dtype, offset=start, count=size_x // dtype.itemsize)
    y = np.frombuffer(payload, dtype, offset=start + size_x, count=size_y // dtype.itemsize)
    return sequence, x.reshape(shape_x), y.reshape(shape_y)


def header(dtype: np.dtype) -> bytes:
    """The journal's first bytes: the magic line and the events' dtype."""
    return _MAGIC + dtype.name.encode() + b"\n"


def read(path: str, dtype: np.dtype) -> tuple[list[tuple[int, np.ndarray, np.ndarray]], int]:
    """The journal's events in order, and the length of its valid part, which leaves
    out a torn tail: a short last record (a write cut off by a crash: it ends before
    the length its frame gives, and what is there agrees with that length), or zeros
    to the end of the file (a power loss that kept the file's length but not its
    data). A symbolic link at `path` is refused, not followed.

    **Raises:** `JournalError` for any other damage, anywhere: a record that fails
    its checksum or whose length is impossible (a full-length last record included),
    or a short last record that disagrees with its own length (a damaged length
    field, not a torn write)."""
    with os.fdopen(open_no_link(path, os.O_RDONLY), "rb") as f:
        return parse(f.read(), dtype, path)


def parse(
    data: bytes, dtype: np.dtype, path: str
) -> tuple[list[tuple[int, np.ndarray, np.ndarray]], int]:
    """`read` of a journal's bytes (`path` names it in errors)."""
    head = header(dtype)
    if not data.startswith(head):
        if head.startswith(data):  # killed while creating it: no record yet
            return [], 0
        raise JournalError(f"{path!r} is not an alberta_eqx journal of {dtype.name} events")
    events: list[tuple[int, np.ndarray, np.ndarray]] = []
    offset = len(head)
    while offset < len(data):
        problem = _damage(data, offset, dtype, events[-1][0] + 1 if events else None)
        if problem == "torn":
            break
        if problem is not None:
            raise JournalError(
                f"{path!r} is damaged at byte {offset} ({problem}; a write cut off by a "
                f"crash leaves only a short last record): refusing to replay it; the file "
                f"is left as it is"
            )
        length, _ = _FRAME.unpack_from(data, offset)
        end = offset + _FRAME.size + length
        try:
            events.append(_decode(data[offset + _FRAME.size : end], dtype))
        except (ValueError, struct.error) as error:  # a valid checksum, a bad layout
            raise JournalError(f"{path!r} has a malformed record at byte {offset}") from error
        offset = end
    return events, offset


def _damage(data: bytes, offset: int, dtype: np.dtype, sequence: int | None) -> str | None:
    """What is wrong with the record at `offset`: None (a whole, valid record),
    "torn" (a torn tail, see `read`), or a description of the damage.
    `sequence` is the number the record must carry (None for the first one)."""
    if offset + _FRAME.size > len(data):
        return "torn"  # the frame itself cut short
    length, crc = _FRAME.unpack_from(data, offset)
    start = offset + _FRAME.size
    whole = length >= _MIN_PAYLOAD and start + length <= len(data)
    if whole and zlib.crc32(data[start : start + length]) == crc:
        return None
    if not any(data[offset:]):
        return "torn"  # zeros to the end: never a written record (its length is >= 10)
    if length < _MIN_PAYLOAD:
        return f"a record length of {length} bytes"
    if not whole:  # short: a torn write only if what is there agrees with its length
        if _agrees(data[start:], length, dtype, sequence):
            return "torn"
        return f"a record length of {length} bytes, past the end, that its contents contradict"
    return "a record that fails its CRC-32"


def _agrees(prefix: bytes, length: int, dtype: np.dtype, sequence: int | None) -> bool:
    """Whether `prefix` (what is left of a cut-off payload) may be the start of a
    payload of `length` bytes: its sequence number and its shapes, where present,
    must give exactly that length."""
    if len(prefix) < _EVENT.size:
        return True
    number, ndim_x, ndim_y = _EVENT.unpack_from(prefix)
    if sequence is not None and number != sequence:
        return False
    start = _EVENT.size + 4 * (ndim_x + ndim_y)
    if len(prefix) < start:
        return True
    shapes = struct.unpack_from(f"<{ndim_x + ndim_y}I", prefix, _EVENT.size)
    sizes = math.prod(shapes[:ndim_x]) + math.prod(shapes[ndim_x:])
    return start + sizes * dtype.itemsize == length


def create(
    path: str, dtype: np.dtype, fsync_events: int | None, fsync_seconds: float | None
) -> "Writer":
    """A new, empty journal at `path`, replacing any there, and a `Writer` open on it.

    It is written aside (`path.tmp`, created new: a stale one, or a link planted
    there, is removed first, never followed), flushed and renamed over `path`. The
    caller flushes the directory (`fsync_directory`) to make the rename durable; on
    an error before the rename, nothing at `path` has changed."""
    temporary = path + ".tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temporary)  # left by a process killed while creating a journal
    fd = open_new(temporary)
    head = header(dtype)
    try:
        write_all(fd, head)
        os.fsync(fd)
        os.replace(temporary, path)
    except BaseException:
        close_quietly(fd)
        unlink_quietly(temporary)
        raise
    return Writer(fd, len(head), fsync_events, fsync_seconds)


def open_writer(
    path: str, valid_length: int, fsync_events: int | None, fsync_seconds: float | None
) -> "Writer":
    """A `Writer` appending to the journal at `path` after its first `valid_length`
    bytes (a torn tail is cut off). A symbolic link at `path` is refused."""
    fd = open_no_link(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, valid_length)
        os.lseek(fd, valid_length, os.SEEK_SET)
    except BaseException:
        close_quietly(fd)
        raise
    return Writer(fd, valid_length, fsync_events, fsync_seconds)


def _fdatasync(fd: int) -> None:
    # fdatasync flushes the data and the file's new length, all a reader needs.
    getattr(os, "fdatasync", os.fsync)(fd)


class Writer:
    """Appends records to an open journal and flushes them to disk by a policy: after
    every `fsync_events` records, and at the first record `fsync_seconds` or more
    after the last flush (either may be None).

    An append that fails is undone: the file is cut back to its length before it
    (and flushed), so the record is not in the journal. If undoing fails too,
    `broken` is set: whether the record is there is then unknown."""

    def __init__(
        self, fd: int, length: int, fsync_events: int | None, fsync_seconds: float | None
    ):
        self.fd = fd  # -1 once closed: a closed number is never used again
        self.length = length  # of the journal, every appended record included
        self.fsync_events, self.fsync_seconds = fsync_events, fsync_seconds
        self.unsynced = 0
        self.last_sync = time.monotonic()
        self.broken = False

    def append(self, record: bytes) -> None:
        try:
            write_all(self.fd, record)
            self.unsynced += 1
            if (self.fsync_events is not None and self.unsynced >= self.fsync_events) or (
                self.fsync_seconds is not None
                and time.monotonic() - self.last_sync >= self.fsync_seconds
            ):
                self.sync()
        except BaseException:
            self._undo()
            raise
        self.length += len(record)

    def _undo(self) -> None:
        """Cut the journal back to `length` (before the failed record), flushed: a
        record whose write or flush failed must not be replayed after a crash."""
        try:
            os.ftruncate(self.fd, self.length)
            os.lseek(self.fd, self.length, os.SEEK_SET)
            _fdatasync(self.fd)
            self.unsynced = 0
        except BaseException:
            self.broken = True

    def sync(self) -> None:
        if self.unsynced:
            _fdatasync(self.fd)
            self.unsynced = 0
        self.last_sync = time.monotonic()

    def close(self, *, sync: bool = True) -> None:
        """Flush (unless `sync=False`) and close. The descriptor is given up first:
        POSIX releases it even when `close` fails, so it is never closed twice."""
        fd, self.fd = self.fd, -1
        try:
            if sync and self.unsynced:
                _fdatasync(fd)
        finally:
            os.close(fd)
