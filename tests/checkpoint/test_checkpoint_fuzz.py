"""The checkpoint header is integrity-checked and validated: every byte before the
payload flipped, every truncation, and every ill-typed field gives a
`CheckpointError` (never a wrong load, never a bare `KeyError`)."""

import hashlib
import json
import random
import struct

import jax.numpy as jnp
import numpy as np
import pytest

from alberta_eqx import IDBD, LinearLearner
from alberta_eqx.checkpoint import (
    CheckpointError,
    _format,
    load_checkpoint,
    read_checkpoint_header,
    save_checkpoint,
)

MAGIC = b"alberta_eqx checkpoint 2\n"


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    learner, _ = LinearLearner(3, IDBD(0.05, meta_step_size=0.01)).update(jnp.ones(3), 2.0)
    path = tmp_path_factory.mktemp("fuzz") / "c.ckpt"
    save_checkpoint(path, learner, step=50_000)
    return learner, path.read_bytes()


def _header_end(data):
    (length,) = struct.unpack_from("<Q", data, len(MAGIC))
    return len(MAGIC) + 8 + 32 + length


LIKE = LinearLearner(3, IDBD())


def _load(path):
    return load_checkpoint(path, LIKE)


def _same(a, b):
    return a.step == b.step and all(
        np.array_equal(x, y) for x, y in zip(a.learner.weights, b.learner.weights, strict=True)
    )


def test_every_header_byte_flipped_is_refused(saved, tmp_path):
    _, data = saved
    path = tmp_path / "c.ckpt"
    path.write_bytes(data)
    original = _load(path)
    end = _header_end(data)
    flips = random.Random(0)
    refused = 0
    for i in range(end):
        for mask in (0xFF, 1 << flips.randrange(8)):  # every bit of the byte, and one
            broken = bytearray(data)
            broken[i] ^= mask
            try:  # what read_checkpoint_header and load_checkpoint check first, in memory
                _format._parse(bytes(broken), "c.ckpt")
            except CheckpointError:
                refused += 1
                continue
            path.write_bytes(bytes(broken))
            assert _same(_load(path), original), f"byte {i} ^ {mask:#x} loaded something else"
    assert refused == 2 * end  # the header's checksum leaves no flip unnoticed


def test_every_truncation_is_refused(saved, tmp_path):
    _, data = saved
    path = tmp_path / "c.ckpt"
    lengths = set(range(_header_end(data) + 2)) | set(
        random.Random(1).sample(range(len(data)), 50)
    )
    for length in sorted(lengths - {len(data)}):
        with pytest.raises(CheckpointError):
            _format._parse(data[:length], "c.ckpt")
    for length in sorted(lengths)[::50]:  # and through the file, for some
        path.write_bytes(data[:length])
        with pytest.raises(CheckpointError):
            read_checkpoint_header(path)


def _rewrite(path, data, edit):
    """The file with its header edited and its checksum made right again (a header
    as a faulty writer would make it)."""
    start = len(MAGIC) + 8 + 32
    header = json.loads(data[start : _header_end(data)])
    edit(header)
    encoded = json.dumps(header).encode()
    digest = hashlib.sha256(encoded).digest()
    path.write_bytes(
        MAGIC + struct.pack("<Q", len(encoded)) + digest + encoded + data[_header_end(data) :]
    )


def _set(field, value):
    return lambda header: header.__setitem__(field, value)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (_set("step", -7), r"step is invalid \(-7\)"),
        (_set("step", "50000"), r"step is invalid \('50000'\)"),
        (_set("step", 1.5), r"step is invalid \(1\.5\)"),
        (_set("step", [1]), r"step is invalid \(\[1\]\)"),
        (_set("step", True), r"step is invalid \(True\)"),
        (_set("format_version", 1), r"format_version is invalid"),
        (_set("library_version", 3), r"library_version is invalid"),
        (_set("payload_bytes", -1), r"payload_bytes is invalid"),
        (_set("payload_sha256", "00"), r"payload_sha256 is invalid"),
        (_set("extra", 1), r"unknown \['extra'\]"),
        (lambda h: h.pop("step"), r"missing \['step'\]"),
        (lambda h: h["learner"].pop("nodes"), r"learner is invalid"),
        (lambda h: h["learner"]["nodes"].__setitem__("", []), r"learner is invalid"),
        (lambda h: h["learner"]["leaves"][".weights"].__setitem__("shape", [-3]), r"learner"),
        (lambda h: h["learner"]["leaves"][".weights"].pop("dtype"), r"learner is invalid"),
        (_set("stream_state", {"nodes": {}}), r"stream_state is invalid"),
    ],
)
def test_ill_typed_header_fields_are_refused(saved, tmp_path, edit, match):
    _, data = saved
    path = tmp_path / "c.ckpt"
    _rewrite(path, data, edit)
    with pytest.raises(CheckpointError, match="corrupted header: " + match):
        _load(path)


def test_a_header_that_is_not_strict_json_is_refused(tmp_path):
    path = tmp_path / "c.ckpt"
    for text in (b"[1, 2]", b'{"step": NaN}', b"[" * 100_000):
        digest = hashlib.sha256(text).digest()
        path.write_bytes(MAGIC + struct.pack("<Q", len(text)) + digest + text)
        with pytest.raises(CheckpointError, match="corrupted header"):
            _load(path)
