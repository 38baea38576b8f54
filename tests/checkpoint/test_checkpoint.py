"""Checkpoints: exact resume across processes, refusal of mismatched, truncated,
corrupted or newer files with a message naming the problem, and atomic saves."""

import hashlib
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

import alberta_eqx
import alberta_eqx.checkpoint as checkpoint
import alberta_eqx.optax as ae_optax
from alberta_eqx import (
    IDBD,
    LMS,
    AbruptChangeStream,
    Autostep,
    DriftingTargetStream,
    EMANormalizer,
    LinearLearner,
    MLPLearner,
    run_learning_loop,
)
from alberta_eqx.checkpoint import (
    Checkpoint,
    CheckpointError,
    load_checkpoint,
    read_checkpoint_header,
    save_checkpoint,
)
from alberta_eqx.nn import MLP
from tests._workers import resume_run

SCRIPT = Path(__file__).parents[1] / "_workers" / "resume_run.py"


@pytest.fixture(scope="module")
def resumed(tmp_path_factory) -> Path:
    """Every case of `resume_run` stopped at its split step in one process, which
    is then killed, and resumed from the checkpoint in another."""
    directory = tmp_path_factory.mktemp("resume")
    for part, status in (("first", -signal.SIGKILL), ("second", 0)):
        done = subprocess.run(
            [sys.executable, str(SCRIPT), part, str(directory)],
            cwd=Path(__file__).parents[2],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == status, done.stderr
    return directory


@pytest.mark.slow
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
    stream = stream or DriftingTargetStream(learner.feature_dim)
    return run_learning_loop(learner, stream, steps, jax.random.key(0))


def _save(path, learner, stream=None):
    stream = stream or DriftingTargetStream(learner.feature_dim)
    result = _run(learner, stream)
    save_checkpoint(path, result.learner, stream_state=result.stream_state, step=50)
    return result


def test_round_trip_restores_every_leaf_and_typed_keys(tmp_path):
    learner = LinearLearner(4, Autostep(0.03), normalizer=EMANormalizer(0.9))
    stream = AbruptChangeStream(4)
    result = _save(tmp_path / "a.ckpt", learner, stream)
    # the template's hyperparameters differ: only its structure is used
    like = LinearLearner(
        4, Autostep(0.5, meta_step_size=0.1, tau=10.0), normalizer=EMANormalizer(0.5)
    )
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
            like_stream_state=DriftingTargetStream(3).init(jax.random.key(0)),
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
            r"stream_state type: .*DriftingTargetState vs .*KeyState",
        ),
        (
            None,
            DriftingTargetStream(4).init(jax.random.PRNGKey(0)),
            r"stream_state\.key dtype: key vs uint32",
        ),
    ],
)
def test_mismatched_structure_is_refused(tmp_path, like_learner, like_state, match):
    _save(tmp_path / "c.ckpt", LinearLearner(4, IDBD()))
    like_learner = like_learner or LinearLearner(4, IDBD())
    like_state = like_state or DriftingTargetStream(4).init(jax.random.key(0))
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
        like_stream_state=DriftingTargetStream(4).init(jax.random.key(0)),
    )


MAGIC = b"alberta_eqx checkpoint 2\n"


def _parts(path):
    """The file as (header dict, payload)."""
    data = path.read_bytes()
    assert data.startswith(MAGIC)
    start = len(MAGIC) + 8 + 32
    (length,) = struct.unpack_from("<Q", data, len(MAGIC))
    return json.loads(data[start : start + length]), data[start + length :]


def _write(path, header, payload, magic=MAGIC, encoded=None):
    """A checkpoint file with this header (its checksum right: the header is what a
    bad writer would write)."""
    encoded = json.dumps(header).encode() if encoded is None else encoded
    digest = hashlib.sha256(encoded).digest()
    path.write_bytes(magic + struct.pack("<Q", len(encoded)) + digest + encoded + payload)


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
    _write(path, header, payload, magic=b"alberta_eqx checkpoint 3\n")
    with pytest.raises(CheckpointError, match=r"format version 3.*reads format versions up to 2"):
        _load(path)


def test_corrupted_header_and_payload_are_refused(tmp_path):
    path = tmp_path / "c.ckpt"
    _save(path, LinearLearner(4, IDBD()))
    header, payload = _parts(path)
    encoded = json.dumps(header).encode()
    broken = bytearray(encoded)
    broken[0] = ord("}")  # no longer JSON
    _write(path, header, payload, encoded=bytes(broken))
    with pytest.raises(CheckpointError, match="corrupted header"):
        _load(path)
    _write(path, {k: v for k, v in header.items() if k != "learner"}, payload)
    with pytest.raises(CheckpointError, match=r"corrupted header: missing \['learner'\]"):
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
        _save(path, LinearLearner(4, IDBD(0.02, meta_step_size=0.02)))
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
        _save(path, LinearLearner(4, IDBD(0.02, meta_step_size=0.02)))
    assert path.read_bytes() == before
    assert _file_names(tmp_path) == ["c.ckpt"]
    _load(path)


def test_save_argument_errors(tmp_path):
    learner = LinearLearner(3)
    state = DriftingTargetStream(3).init(jax.random.key(0))
    with pytest.raises(ValueError, match="step must be given with stream_state"):
        save_checkpoint(tmp_path / "c.ckpt", learner, stream_state=state)
    with pytest.raises(ValueError, match="step must be >= 0, got -1"):
        save_checkpoint(tmp_path / "c.ckpt", learner, stream_state=state, step=-1)
    assert not (tmp_path / "c.ckpt").exists()


@pytest.mark.slow
def test_mlp_learner_round_trip(tmp_path):
    """A learner with non-array leaves (the MLP's activation) and optax state."""

    def build(width, seed):
        return MLPLearner(
            MLP(
                3,
                "scalar",
                (width, width),
                key=jax.random.key(seed),
                activation=jax.nn.relu,
                layer_norm=False,
            ),
            ae_optax.autostep(),
        )

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
    flat = MLPLearner(
        MLP(3, "scalar", (4, 4), key=jax.random.key(1), activation=jax.nn.relu, layer_norm=False),
        ae_optax.autostep(),
        flatten=True,
    )
    with pytest.raises(CheckpointError, match="learner static flatten: False vs True"):
        load_checkpoint(tmp_path / "mlp.ckpt", flat)


def test_a_non_finite_learner_is_refused_unless_allowed(tmp_path):
    path = tmp_path / "c.ckpt"
    good = LinearLearner(3, Autostep())
    save_checkpoint(path, good)
    before = path.read_bytes()
    bad = eqx.tree_at(lambda m: m.weights, good, jnp.array([0.0, jnp.nan, 1.0]))
    with pytest.raises(ValueError, match=r"learner\.weights holds 1 non-finite value.*nan"):
        save_checkpoint(path, bad)
    assert path.read_bytes() == before
    # Allowed: saved, and the header stays strict JSON (no bare NaN).
    bad = eqx.tree_at(lambda m: m.optimizer.tau, bad, jnp.asarray(jnp.inf))
    save_checkpoint(path, bad, allow_nonfinite=True)
    header = read_checkpoint_header(path)
    assert header["learner"]["leaves"][".optimizer.tau"]["value"] == "inf"
    loaded = load_checkpoint(path, LinearLearner(3, Autostep())).learner
    assert np.array_equal(loaded.weights, bad.weights, equal_nan=True)
    assert loaded.optimizer.tau == jnp.inf


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_a_new_file_respects_the_umask_and_a_replaced_file_keeps_its_mode(tmp_path, umask):
    old = os.umask(umask)
    try:
        save_checkpoint(tmp_path / "new.ckpt", LinearLearner(2))
    finally:
        os.umask(old)
    assert (tmp_path / "new.ckpt").stat().st_mode & 0o777 == 0o666 & ~umask
    (tmp_path / "new.ckpt").chmod(0o640)
    save_checkpoint(tmp_path / "new.ckpt", LinearLearner(2))
    assert (tmp_path / "new.ckpt").stat().st_mode & 0o777 == 0o640


def test_a_symlink_is_followed_and_kept(tmp_path):
    save_checkpoint(tmp_path / "run-1.ckpt", LinearLearner(2, LMS(0.1)))
    (tmp_path / "latest.ckpt").symlink_to("run-1.ckpt")
    save_checkpoint(tmp_path / "latest.ckpt", LinearLearner(2, LMS(0.5)))
    assert (tmp_path / "latest.ckpt").is_symlink()
    assert os.readlink(tmp_path / "latest.ckpt") == "run-1.ckpt"
    loaded = load_checkpoint(tmp_path / "run-1.ckpt", LinearLearner(2, LMS())).learner
    assert loaded.optimizer.step_size == np.float32(0.5)
    assert _file_names(tmp_path) == ["latest.ckpt", "run-1.ckpt"]


def test_a_read_only_file_is_refused(tmp_path):
    path = tmp_path / "c.ckpt"
    save_checkpoint(path, LinearLearner(2))
    path.chmod(0o444)
    before = path.read_bytes()
    with pytest.raises(PermissionError, match=r"c\.ckpt' is read-only: refusing to replace it"):
        save_checkpoint(path, LinearLearner(2, LMS(0.5)))
    assert path.read_bytes() == before
    assert _file_names(tmp_path) == ["c.ckpt"]


def test_temporary_files_of_killed_saves_are_removed_by_the_next_save(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # its pid is free again (and almost surely not reused by now)
    alive = os.getppid()
    stale = [f".c.ckpt.{dead.pid}.{token}.ckpt-tmp" for token in ("0a1b2c3d", "deadbeef")]
    kept = [f".c.ckpt.{alive}.00000000.ckpt-tmp", f".other.ckpt.{dead.pid}.deadbeef.ckpt-tmp"]
    for name in stale + kept + ["notes.txt"]:
        (tmp_path / name).write_bytes(b"partial")
    save_checkpoint(tmp_path / "c.ckpt", LinearLearner(2))
    assert _file_names(tmp_path) == sorted(["c.ckpt", "notes.txt", *kept])


def test_a_format_1_file_still_loads(tmp_path):
    """Format 1 (no header checksum): the header's fields are still validated."""
    path = tmp_path / "c.ckpt"
    _save(path, LinearLearner(4, IDBD()))
    header, payload = _parts(path)
    header["format_version"] = 1
    encoded = json.dumps(header).encode()
    v1 = b"alberta_eqx checkpoint\n" + struct.pack("<Q", len(encoded)) + encoded + payload
    path.write_bytes(v1)
    assert _load(path).step == 50
    header["step"] = "50"
    encoded = json.dumps(header).encode()
    path.write_bytes(v1[:23] + struct.pack("<Q", len(encoded)) + encoded + payload)
    with pytest.raises(CheckpointError, match=r"step is invalid \('50'\)"):
        _load(path)


def test_user_metadata_is_saved_checksummed_and_validated(tmp_path):
    """Issue 12, item 7: a daemon keeps what it runs beside the learner."""
    from alberta_eqx.config import to_config

    learner = LinearLearner(3, IDBD(0.05, meta_step_size=0.01))
    path = tmp_path / "a.ckpt"
    metadata = {"config": to_config(learner), "source": "sensor-7", "version": [1, 2]}
    save_checkpoint(path, learner, metadata=metadata)
    assert load_checkpoint(path, learner).metadata == metadata
    assert read_checkpoint_header(path)["metadata"] == metadata
    save_checkpoint(tmp_path / "b.ckpt", learner)
    assert load_checkpoint(tmp_path / "b.ckpt", learner).metadata == {}
    # what JSON cannot keep is refused before anything is written
    for bad in ({"x": float("nan")}, {"x": object()}, {1: "a"}, {"t": (1, 2)}, ["a"]):
        with pytest.raises(TypeError, match="metadata"):
            save_checkpoint(tmp_path / "c.ckpt", learner, metadata=bad)
    assert not (tmp_path / "c.ckpt").exists()
    # the metadata is under the header's checksum: a changed byte is refused
    data = bytearray(path.read_bytes())
    at = data.index(b"sensor-7")
    data[at] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_checkpoint(path, learner)
