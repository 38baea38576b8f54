"""Checkpoints: exact resume across processes, refusal of mismatched, truncated,
corrupted or newer files with a message naming the problem, and atomic saves."""

import json
import os
import signal
import struct
import subprocess
import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import resume_run

import alberta_eqx
import alberta_eqx.checkpoint as checkpoint
import alberta_eqx.optax as ae_optax
from alberta_eqx import (
    IDBD,
    LMS,
    AbruptChangeStream,
    Autostep,
    EMANormalizer,
    LinearLearner,
    MLPLearner,
    RandomWalkStream,
    run_learning_loop,
)
from alberta_eqx.checkpoint import (
    Checkpoint,
    CheckpointError,
    load_checkpoint,
    read_checkpoint_header,
    save_checkpoint,
)

SCRIPT = Path(__file__).with_name("resume_run.py")


@pytest.fixture(scope="module")
def resumed(tmp_path_factory) -> Path:
    """Every case of `resume_run` stopped at its split step in one process, which
    is then killed, and resumed from the checkpoint in another."""
    directory = tmp_path_factory.mktemp("resume")
    for part, status in (("first", -signal.SIGKILL), ("second", 0)):
        done = subprocess.run(
            [sys.executable, str(SCRIPT), part, str(directory)],
            cwd=Path(__file__).parent.parent,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == status, done.stderr
    return directory


@pytest.mark.parametrize("name", list(resume_run.cases()))
def test_kill_and_resume_is_bit_identical(resumed, name):
    case = resume_run.cases()[name]
    whole = resume_run.arrays(resume_run.run(case, case.learner, case.num_steps))
    first = dict(np.load(resumed / f"{name}.first.npz"))
    second = dict(np.load(resumed / f"{name}.second.npz"))
    assert set(second) == set(whole)
    assert any(k.startswith("learner.") for k in whole) and "metrics.error" in whole
    time_axis = 1 if case.seeds else 0
    for k, expected in whole.items():
        if k.startswith(("metrics.", "ss.", "norm.")):  # per step or per recording
            actual = np.concatenate([first[k], second[k]], axis=time_axis)
        else:  # the final learner and stream state
            actual = second[k]
        assert actual.shape == expected.shape, k
        assert np.array_equal(actual, expected), f"{name}: {k} differs"


def _run(learner, stream=None, steps=50):
    stream = stream or RandomWalkStream(learner.feature_dim)
    return run_learning_loop(learner, stream, steps, jax.random.key(0))


def _save(path, learner, stream=None):
    stream = stream or RandomWalkStream(learner.feature_dim)
    result = _run(learner, stream)
    save_checkpoint(path, result.learner, stream_state=result.stream_state, step=50)
    return result


def test_round_trip_restores_every_leaf_and_typed_keys(tmp_path):
    learner = LinearLearner(4, Autostep(0.03), normalizer=EMANormalizer(0.9))
    stream = AbruptChangeStream(4)
    result = _save(tmp_path / "a.ckpt", learner, stream)
    # the template's hyperparameters differ: only its structure is used
    like = LinearLearner(4, Autostep(0.5, 0.1, 10.0), normalizer=EMANormalizer(0.5))
    loaded = load_checkpoint(
        tmp_path / "a.ckpt", like, like_stream_state=stream.init(jax.random.key(99))
    )
    assert isinstance(loaded, Checkpoint) and loaded.step == 50
    for a, b in zip(jax.tree.leaves(loaded.learner), jax.tree.leaves(result.learner), strict=True):
        assert np.array_equal(a, b)
    assert jax.dtypes.issubdtype(loaded.stream_state.key.dtype, jax.dtypes.prng_key)
    assert np.array_equal(
        jax.random.key_data(loaded.stream_state.key), jax.random.key_data(result.stream_state.key)
    )
    header = read_checkpoint_header(tmp_path / "a.ckpt")
    assert header["format_version"] == checkpoint.FORMAT_VERSION
    assert header["library_version"] == alberta_eqx.__version__
    assert header["learner"]["nodes"][".optimizer"]["type"] == "alberta_eqx.optimizers.Autostep"
    assert header["learner"]["leaves"][".optimizer.tau"]["value"] == 1e4
    assert header["stream_state"]["leaves"][".key"]["key_impl"] == "threefry2x32"


def test_learner_alone(tmp_path):
    learner = _run(LinearLearner(3, LMS(0.1))).learner
    save_checkpoint(tmp_path / "l.ckpt", learner)
    loaded = load_checkpoint(tmp_path / "l.ckpt", LinearLearner(3, LMS()))
    assert loaded.stream_state is None and loaded.step is None
    assert np.array_equal(loaded.learner.weights, learner.weights)
    with pytest.raises(CheckpointError, match="holds no stream state"):
        load_checkpoint(
            tmp_path / "l.ckpt",
            LinearLearner(3, LMS()),
            like_stream_state=RandomWalkStream(3).init(jax.random.key(0)),
        )


@pytest.mark.parametrize(
    ("like_learner", "like_state", "match"),
    [
        (LinearLearner(4, Autostep()), None, r"learner\.optimizer type: .*IDBD vs .*Autostep"),
        (LinearLearner(4, LMS()), None, r"learner\.optimizer type: .*IDBD vs .*LMS"),
        (
            LinearLearner(6, IDBD()),
            None,
            r"learner static feature_dim: 4 vs 6.*learner\.weights shape: \(4,\) vs \(6,\)",
        ),
        (LinearLearner(4, IDBD(), use_bias=False), None, r"learner\.bias is only in the file"),
        (
            LinearLearner(4, IDBD(), normalizer=EMANormalizer()),
            None,
            r"learner\.normalizer type: builtins\.NoneType vs .*EMANormalizer",
        ),
        (
            None,
            AbruptChangeStream(4).init(jax.random.key(0)),
            r"stream_state type: .*WalkState vs .*KeyState",
        ),
        (
            None,
            RandomWalkStream(4).init(jax.random.PRNGKey(0)),
            r"stream_state\.key dtype: key vs uint32",
        ),
    ],
)
def test_mismatched_structure_is_refused(tmp_path, like_learner, like_state, match):
    _save(tmp_path / "c.ckpt", LinearLearner(4, IDBD()))
    like_learner = like_learner or LinearLearner(4, IDBD())
    like_state = like_state or RandomWalkStream(4).init(jax.random.key(0))
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(tmp_path / "c.ckpt", like_learner, like_stream_state=like_state)


def test_missing_stream_state_template_is_refused(tmp_path):
    _save(tmp_path / "c.ckpt", LinearLearner(4, IDBD()))
    with pytest.raises(CheckpointError, match="holds a stream state: pass like_stream_state"):
        load_checkpoint(tmp_path / "c.ckpt", LinearLearner(4, IDBD()))


def _load(path):
    return load_checkpoint(
        path,
        LinearLearner(4, IDBD()),
        like_stream_state=RandomWalkStream(4).init(jax.random.key(0)),
    )


def _parts(path):
    """The file as (magic, header dict, payload)."""
    data = path.read_bytes()
    start = len(checkpoint._MAGIC) + 8
    (length,) = struct.unpack_from("<Q", data, len(checkpoint._MAGIC))
    return json.loads(data[start : start + length]), data[start + length :]


def _write(path, header, payload):
    encoded = json.dumps(header).encode()
    path.write_bytes(checkpoint._MAGIC + struct.pack("<Q", len(encoded)) + encoded + payload)


@pytest.mark.parametrize("keep", [0.3, 0.99])
def test_truncated_file_is_refused(tmp_path, keep):
    path = tmp_path / "c.ckpt"
    _save(path, LinearLearner(4, IDBD()))
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CheckpointError, match="truncated"):
        _load(path)


def test_newer_format_version_is_refused(tmp_path):
    path = tmp_path / "c.ckpt"
    _save(path, LinearLearner(4, IDBD()))
    header, payload = _parts(path)
    header["format_version"] = checkpoint.FORMAT_VERSION + 1
    _write(path, header, payload)
    with pytest.raises(CheckpointError, match=r"format version 2.*reads format versions up to 1"):
        _load(path)


def test_corrupted_header_and_payload_are_refused(tmp_path):
    path = tmp_path / "c.ckpt"
    _save(path, LinearLearner(4, IDBD()))
    header, payload = _parts(path)
    encoded = json.dumps(header).encode()
    broken = bytearray(encoded)
    broken[len(broken) // 2] = ord("}")
    path.write_bytes(checkpoint._MAGIC + struct.pack("<Q", len(broken)) + bytes(broken) + payload)
    with pytest.raises(CheckpointError, match="corrupted header"):
        _load(path)
    _write(path, {k: v for k, v in header.items() if k != "learner"}, payload)
    with pytest.raises(CheckpointError, match=r"corrupted header .*missing \['learner'\]"):
        _load(path)
    flipped = bytearray(payload)
    flipped[-1] ^= 0xFF
    _write(path, header, bytes(flipped))
    with pytest.raises(CheckpointError, match="fails its SHA-256 check"):
        _load(path)
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not an alberta_eqx checkpoint"):
        _load(path)


def _file_names(directory):
    return sorted(p.name for p in directory.iterdir())


def test_failing_serialiser_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "c.ckpt"
    _save(path, LinearLearner(4, IDBD()))
    before = path.read_bytes()

    def half_then_fail(f, tree):
        f.write(b"partial leaves")
        raise RuntimeError("disk full")

    monkeypatch.setattr(eqx, "tree_serialise_leaves", half_then_fail)
    with pytest.raises(RuntimeError, match="disk full"):
        _save(path, LinearLearner(4, IDBD(0.5, 0.5)))
    assert path.read_bytes() == before
    assert _file_names(tmp_path) == ["c.ckpt"]


def test_crash_while_writing_the_file_leaves_the_old_file(tmp_path, monkeypatch):
    """A failure after the new bytes are in the temporary file but before the rename."""
    path = tmp_path / "c.ckpt"
    _save(path, LinearLearner(4, IDBD()))
    before = path.read_bytes()

    def crash(fd):
        raise OSError("power cut")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="power cut"):
        _save(path, LinearLearner(4, IDBD(0.5, 0.5)))
    assert path.read_bytes() == before
    assert _file_names(tmp_path) == ["c.ckpt"]
    _load(path)


def test_save_argument_errors(tmp_path):
    learner = LinearLearner(3)
    state = RandomWalkStream(3).init(jax.random.key(0))
    with pytest.raises(ValueError, match="step must be given with stream_state"):
        save_checkpoint(tmp_path / "c.ckpt", learner, stream_state=state)
    with pytest.raises(ValueError, match="step must be >= 0, got -1"):
        save_checkpoint(tmp_path / "c.ckpt", learner, stream_state=state, step=-1)
    assert not (tmp_path / "c.ckpt").exists()


def test_mlp_learner_round_trip(tmp_path):
    """A learner with non-array leaves (the MLP's activation) and optax state."""

    def build(width, seed):
        return MLPLearner(3, (width, width), ae_optax.autostep(), key=jax.random.key(seed))

    learner, _ = build(4, 0).update(jnp.ones(3), 1.0)
    save_checkpoint(tmp_path / "mlp.ckpt", learner)
    loaded = load_checkpoint(tmp_path / "mlp.ckpt", build(4, 1)).learner
    for a, b in zip(jax.tree.leaves(loaded), jax.tree.leaves(learner), strict=True):
        assert not isinstance(a, jax.Array) or np.array_equal(a, b)
    assert loaded.predict(jnp.ones(3)) == learner.predict(jnp.ones(3))
    with pytest.raises(
        CheckpointError, match=r"learner\.model static hidden_sizes: \(4, 4\) vs \(5, 5\)"
    ):
        load_checkpoint(tmp_path / "mlp.ckpt", build(5, 1))
    flat = MLPLearner(3, (4, 4), ae_optax.autostep(), key=jax.random.key(1), flatten=True)
    with pytest.raises(CheckpointError, match="learner static flatten: False vs True"):
        load_checkpoint(tmp_path / "mlp.ckpt", flat)
