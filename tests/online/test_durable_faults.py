"""`DurableLearner` under I/O faults, planted links and misuse: every acknowledged
event exactly once, no other; damage refused; clear errors that change nothing.

The fault harness makes each I/O call of the durable path fail in turn (SQLite's
I/O-error tests): a short daemon workload runs with the k-th call failing (ENOSPC, then
EIO), for every k; the process is then dropped as a kill would drop it and the
directory reopened."""

import bisect
import errno
import itertools
import os
import shutil
import warnings
from collections import Counter

import numpy as np
import pytest

import alberta_eqx as ae

# Private modules on purpose: the fault harness replaces `os` in every module of the
# durable path (`_inject`), and the bit-flip tests write and parse the journal's bytes
# (`_journal.encode`, `header`, `parse`), a format internal to `DurableLearner` that has
# no public API. The rest goes through the public one.
from alberta_eqx.checkpoint import _checkpoint, _format, files
from alberta_eqx.online import _durable, _journal
from tests._workers.durable_daemon import digest, events, learner

XS, YS = events(40)
PRIOR, N = 2, 9  # events before the workload (a restart), and after it
CALLS = (
    "open",
    "write",
    "fsync",
    "fdatasync",
    "replace",
    "rename",
    "ftruncate",
    "close",
    "unlink",
)


@pytest.fixture(scope="module")
def reference():
    """The digest of a learner fed the first n events, for every n (one compilation,
    shared with every `DurableLearner` below through `OnlineLearner`'s cache)."""
    online = ae.OnlineLearner(learner())
    digests = [digest(online.learner)]
    for x, y in zip(XS, YS, strict=True):
        online.update(x, y)
        digests.append(digest(online.learner))
    return digests


class FaultyOS:
    """The `os` module as the durable path sees it: the I/O calls in `CALLS` are
    counted, and the `fail_at`-th of them fails with `error` (a failed `close` still
    releases the descriptor, as POSIX does); `fail_always` names calls that always fail.
    A flush that succeeds does nothing (what a kill leaves is in the page cache
    whether flushed or not), which keeps the harness fast."""

    def __init__(self, fail_at=0, error=errno.EIO, fail_always=(), when=lambda *args: True):
        self.count, self.fail_at, self.error, self.fail_always = 0, fail_at, error, fail_always
        self.when = when  # of the call's arguments: whether an always-failing call fails
        self.failed = None  # the call that failed

    def __getattr__(self, name):
        real = getattr(os, name)
        if name not in CALLS:
            return real

        def call(*args, **kwargs):
            self.count += 1
            if self.count == self.fail_at or (name in self.fail_always and self.when(*args)):
                self.failed = self.failed or name
                if name == "close":
                    real(*args, **kwargs)
                raise OSError(self.error, f"injected: {os.strerror(self.error)} in os.{name}")
            return None if name in ("fsync", "fdatasync") else real(*args, **kwargs)

        return call


def _inject(monkeypatch, faulty):
    for module in (files, _journal, _durable, _checkpoint, _format):
        monkeypatch.setattr(module, "os", faulty)


def _kill(directory):
    """What a kill does to the process's files: every descriptor open on the
    directory is closed (the flock released), nothing written."""
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(directory) + "/"):
            os.close(int(fd))
            yield target


@pytest.fixture(scope="module")
def prior(tmp_path_factory):
    """A directory holding PRIOR events in its journal (the workload restarts there)."""
    directory = tmp_path_factory.mktemp("prior")
    durable = ae.DurableLearner(learner(), directory)
    for i in range(PRIOR):
        durable.update(XS[i], YS[i])
    durable.close(checkpoint=False)
    return directory


def _workload(directory, reference):
    """A restarted daemon: open, learn up to N events (a checkpoint every 3),
    checkpoint, then be dropped. Returns the number of acknowledged events and what
    the caller saw."""
    seen = []
    try:
        durable = ae.DurableLearner(learner(), directory, checkpoint_every=3)
    except OSError:
        return PRIOR, ["constructor raised"]
    for i in range(PRIOR, N):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                durable.update(XS[i], YS[i])
            except ae.DurableWriteError as error:
                assert error.learned is False, error  # one fault: the undo succeeds
                assert durable.events == i and digest(durable.learner) == reference[i]
                seen.append("update raised, not learned")
                durable.update(XS[i], YS[i])  # the daemon retries it
        if caught:
            assert durable.last_checkpoint_error is not None
            assert "every acknowledged event is kept" in str(caught[0].message)
            seen.append("rotation warned")
    try:
        durable.checkpoint()
    except OSError:
        seen.append("checkpoint() raised")
    assert durable.events == N and digest(durable.learner) == reference[N]
    return N, seen


@pytest.fixture(scope="module")
def fault_points(tmp_path_factory, reference, prior):
    """How many I/O calls the workload makes, by name (a run without faults)."""
    faulty = FaultyOS()
    counts = Counter()

    class Counting(FaultyOS):
        def __getattr__(self, name):
            if name in CALLS:
                counts[name] += 1
            return super().__getattr__(name)

    faulty = Counting()
    with pytest.MonkeyPatch.context() as monkeypatch:
        _inject(monkeypatch, faulty)
        directory = tmp_path_factory.mktemp("count") / "state"
        shutil.copytree(prior, directory)
        assert _workload(directory, reference) == (N, [])
    list(_kill(directory))
    return faulty.count, counts


@pytest.mark.parametrize(
    "error",
    # The two differ only in the errno the caller sees: EIO runs in the full suite.
    [errno.ENOSPC, pytest.param(errno.EIO, marks=pytest.mark.slow)],
    ids=["ENOSPC", "EIO"],
)
def test_every_io_call_failing_in_turn_loses_and_duplicates_nothing(
    tmp_path, monkeypatch, reference, prior, fault_points, error
):
    total, counts = fault_points
    assert total > 50 and set(counts) >= {"open", "write", "fsync", "fdatasync", "replace"}
    assert {"close", "unlink", "ftruncate"} <= set(counts)
    outcomes = Counter()
    for k in range(1, total + 1):
        directory = tmp_path / str(k)
        shutil.copytree(prior, directory)
        faulty = FaultyOS(fail_at=k, error=error)
        with monkeypatch.context() as patched:
            _inject(patched, faulty)
            acknowledged, seen = _workload(directory, reference)
        assert faulty.failed is not None, k
        list(_kill(directory))  # dropped without close
        reopened = ae.DurableLearner(learner(), directory)
        assert reopened.events == acknowledged, (k, faulty.failed, seen)
        assert digest(reopened.learner) == reference[acknowledged], (k, faulty.failed)
        reopened.close(checkpoint=False)
        assert not list(_kill(directory)), "a descriptor outlived close()"
        outcomes[faulty.failed, ", ".join(seen) or "no error (a cleanup call)"] += 1
    print(f"\n{os.strerror(error)}: {total} fault points")
    for (call, seen), count in sorted(outcomes.items()):
        print(f"  {call:10s} {count:3d}  {seen}")
    assert sum(outcomes.values()) == total


# --- 4, 5: a failed checkpoint or journal re-creation in a rotation ---------------------


def _reopened(directory, reference, expected):
    list(_kill(directory))
    reopened = ae.DurableLearner(learner(), directory)
    assert reopened.events == expected
    assert digest(reopened.learner) == reference[expected]
    reopened.close(checkpoint=False)


def test_a_full_disk_at_rotation_acknowledges_the_event_and_reports_apart(
    tmp_path, monkeypatch, reference
):
    durable = ae.DurableLearner(learner(), tmp_path, checkpoint_every=10)

    def checkpoint_file(fd, data):
        return os.readlink(f"/proc/self/fd/{fd}").endswith(".ckpt-tmp")

    full = FaultyOS(error=errno.ENOSPC, fail_always=("write",), when=checkpoint_file)
    monkeypatch.setattr(files, "os", full)  # every checkpoint write fails
    for i in range(30):
        if (i + 1) % 10 == 0:
            with pytest.warns(RuntimeWarning, match=f"at event {i + 1} failed"):
                durable.update(XS[i], YS[i])  # returns: the event is acknowledged
            assert durable.last_checkpoint_error.errno == errno.ENOSPC
        else:
            durable.update(XS[i], YS[i])
    assert durable.events == 30 and digest(durable.learner) == reference[30]
    assert ae.read_checkpoint_header(tmp_path / "learner.ckpt")["step"] == 0
    assert not [p for p in os.listdir(tmp_path) if p.endswith("ckpt-tmp")]  # cleaned up
    monkeypatch.undo()  # space again: the next rotation succeeds
    for i in range(30, 40):
        durable.update(XS[i], YS[i])
    assert durable.last_checkpoint_error is None
    assert ae.read_checkpoint_header(tmp_path / "learner.ckpt")["step"] == 40
    _reopened(tmp_path, reference, 40)  # each of the 40 exactly once, after a kill


@pytest.mark.parametrize("where", ["create", "after the rename"])
def test_a_failed_journal_re_creation_keeps_a_valid_open_journal(
    tmp_path, monkeypatch, reference, where
):
    directory = tmp_path / "state"
    durable = ae.DurableLearner(learner(), directory, checkpoint_every=3)
    if where == "create":  # the new journal cannot be created: the old one goes on
        faulty = FaultyOS(
            error=errno.ENOSPC,
            fail_always=("open",),
            when=lambda path, *flags: path.endswith("journal.tmp"),
        )
        monkeypatch.setattr(files, "os", faulty)
    else:  # renamed into place, but the directory flush fails: the new one is used

        def fail(directory):
            raise OSError(errno.EIO, "injected")

        monkeypatch.setattr(_durable, "fsync_directory", fail)
    with pytest.warns(RuntimeWarning, match="checkpointing"):
        for i in range(3):
            durable.update(XS[i], YS[i])
    monkeypatch.undo()
    log = tmp_path / "daemon.log"  # the next file the process opens
    log_fd = os.open(log, os.O_WRONLY | os.O_CREAT)
    for i in range(3, 8):  # (event 6 rotates again)
        durable.update(XS[i], YS[i])
    assert log.read_bytes() == b""  # no journal record went into someone else's file
    _reopened(directory, reference, 8)
    os.fstat(log_fd)  # still open: nothing closed the daemon's own file
    os.close(log_fd)


# --- 3: no planted link is followed ----------------------------------------------------


@pytest.fixture
def victim(tmp_path):
    path = tmp_path / "victim"
    path.write_bytes(b"precious")
    return path


def test_a_link_planted_at_journal_tmp_is_removed_not_followed(tmp_path, victim, reference):
    directory = tmp_path / "state"
    durable = ae.DurableLearner(learner(), directory, checkpoint_every=3)
    (directory / "journal.tmp").symlink_to(victim)
    for i in range(3):  # the third rotates the journal through journal.tmp
        durable.update(XS[i], YS[i])
    assert durable.last_checkpoint_error is None
    assert victim.read_bytes() == b"precious"
    assert not (directory / "journal").is_symlink()
    assert not (directory / "journal.tmp").exists()
    durable.close()
    _reopened(directory, reference, 3)


@pytest.mark.parametrize("name", ["journal", "lock"])
def test_a_link_planted_at_the_journal_or_the_lock_is_refused(tmp_path, victim, name):
    directory = tmp_path / "state"
    ae.DurableLearner(learner(), directory).close()
    (directory / name).unlink()
    (directory / name).symlink_to(victim)
    with pytest.raises(OSError, match=f"{name}' is a symbolic link: refusing to follow it"):
        ae.DurableLearner(learner(), directory)
    assert victim.read_bytes() == b"precious"
    assert (directory / name).is_symlink()


def test_a_link_planted_at_the_checkpoint_is_replaced_not_followed(tmp_path, reference):
    directory = tmp_path / "state"
    with ae.DurableLearner(learner(), directory) as durable:
        durable.update(XS[0], YS[0])
    elsewhere = tmp_path / "elsewhere.ckpt"
    os.replace(directory / "learner.ckpt", elsewhere)
    (directory / "learner.ckpt").symlink_to(elsewhere)
    kept = elsewhere.read_bytes()
    with ae.DurableLearner(learner(), directory) as durable:  # reading it is harmless
        durable.update(XS[1], YS[1])
    assert elsewhere.read_bytes() == kept  # the save replaced the link, not its target
    assert not (directory / "learner.ckpt").is_symlink()
    _reopened(directory, reference, 2)


def test_a_link_planted_at_a_checkpoint_temporary_is_refused(tmp_path, victim, monkeypatch):
    monkeypatch.setattr(files.secrets, "token_hex", lambda n: "0badc0de")
    path = tmp_path / "run.ckpt"
    (tmp_path / f".run.ckpt.{os.getpid()}.0badc0de.ckpt-tmp").symlink_to(victim)
    with pytest.raises(FileExistsError):
        ae.save_checkpoint(path, learner())
    assert victim.read_bytes() == b"precious" and not path.exists()


# --- 7: damage is not a torn tail ------------------------------------------------------


def _records(n):
    return [_journal.encode(i, XS[i % len(XS)], np.asarray(YS[i % len(YS)])) for i in range(n)]


def _journal_bytes(n):
    dtype = np.dtype(np.float32)
    return _journal.header(dtype) + b"".join(_records(n)), dtype


@pytest.mark.slow
def test_every_single_bit_flip_of_a_journal_is_refused_or_harmless():
    """Every single-bit flip of a 100-record journal raises `JournalError` or reads
    all 100 events unchanged. (A flip in record i is parsed from record i - 1 on: the
    reader goes left to right, and the records before i - 1 do not change what it
    does from there, which keeps this test to seconds.)"""
    data, dtype = _journal_bytes(100)
    whole, length = _journal.parse(data, dtype, "journal")
    assert len(whole) == 100 and length == len(data)
    head = _journal.header(dtype)
    starts = list(itertools.accumulate((len(r) for r in _records(100)), initial=len(head)))
    outcomes = Counter()
    for bit in range(8 * len(data)):
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        first = max(bisect.bisect_right(starts, bit // 8) - 2, 0)  # the record before
        suffix = bytes(flipped[: len(head)] + flipped[starts[first] :])
        try:
            events, length = _journal.parse(suffix, dtype, "journal")
        except ae.JournalError:
            outcomes["raised JournalError"] += 1
            continue
        assert length == len(suffix) and len(events) == 100 - first, bit  # nothing dropped
        assert all(
            (a[0], a[1].tobytes(), a[2].tobytes()) == (b[0], b[1].tobytes(), b[2].tobytes())
            for a, b in zip(events, whole[first:], strict=True)
        ), bit
        outcomes["read all 100 events"] += 1
    print(f"\n{8 * len(data)} single-bit flips of a {len(data)}-byte journal: {dict(outcomes)}")
    assert sum(outcomes.values()) == 8 * len(data)


def test_a_short_last_record_is_the_only_torn_tail():
    data, dtype = _journal_bytes(5)
    record = _journal.encode(5, XS[5], np.asarray(YS[5]))
    for cut in (1, 7, 8, 12, 20, len(record) - 1):  # a write cut off: dropped
        events, length = _journal.parse(data + record[:cut], dtype, "journal")
        assert len(events) == 5 and length == len(data)
    assert _journal.parse(data + bytes(100), dtype, "journal")[1] == len(data)  # zeros
    damaged = {
        "a full-length last record that fails its checksum": record[:-1] + b"\\xff",
        "a last record whose sequence number is wrong": _journal.encode(
            9, XS[5], np.asarray(YS[5])
        )[:20],
        "a length that its shapes contradict": (bytes([record[0] + 4]) + record[1:])[:-2],
    }
    for what, tail in damaged.items():
        with pytest.raises(ae.JournalError, match="damaged at byte"):
            _journal.parse(data + tail, dtype, "journal")
        print(what, "refused")


def test_a_damaged_length_in_the_middle_is_refused_and_nothing_changes(tmp_path):
    with ae.DurableLearner(learner(), tmp_path, checkpoint_every=1000) as durable:
        for i in range(10):
            durable.update(XS[i], YS[i])
        durable.close(checkpoint=False)
    journal = tmp_path / "journal"
    data = bytearray(journal.read_bytes())
    head = len(_journal.header(np.dtype(np.float32)))
    record = len(_journal.encode(0, XS[0], np.asarray(YS[0])))
    data[head + 4 * record + 2] ^= 0x10  # event 4's length: far past the end of the file
    journal.write_bytes(bytes(data))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(ae.JournalError, match=f"damaged at byte {head + 4 * record}"):
        ae.DurableLearner(learner(), tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


# --- 8: lifecycle ----------------------------------------------------------------------


def test_a_failed_constructor_releases_the_directory(tmp_path, reference):
    with ae.DurableLearner(learner(), tmp_path) as durable:
        durable.update(XS[0], YS[0])
    wrong = ae.LinearLearner(5, ae.IDBD(0.02, meta_step_size=0.01))
    with pytest.raises(ae.CheckpointError, match="does not match"):
        ae.DurableLearner(wrong, tmp_path)
    assert not list(_kill(tmp_path))  # no descriptor left behind
    _reopened(tmp_path, reference, 1)  # the same process opens it again


def test_after_close_every_change_is_refused(tmp_path, reference):
    durable = ae.DurableLearner(learner(), tmp_path)
    durable.update(XS[0], YS[0])
    durable.close()
    saved = (tmp_path / "learner.ckpt").read_bytes()
    for call in (lambda: durable.update(XS[1], YS[1]), durable.checkpoint, durable.sync):
        with pytest.raises(RuntimeError, match=r"refused: this DurableLearner .* is closed"):
            call()
    assert durable.events == 1 and digest(durable.learner) == reference[1]
    assert (tmp_path / "learner.ckpt").read_bytes() == saved
    durable.close()  # twice: nothing
    _reopened(tmp_path, reference, 1)


def test_a_write_that_cannot_be_undone_refuses_everything_after(tmp_path, monkeypatch, reference):
    durable = ae.DurableLearner(learner(), tmp_path, checkpoint_every=1000)
    durable.update(XS[0], YS[0])
    saved = (tmp_path / "learner.ckpt").read_bytes()
    monkeypatch.setattr(_journal, "os", FaultyOS(fail_always=("fdatasync", "ftruncate")))
    with pytest.raises(ae.DurableWriteError, match="unknown") as raised:
        durable.update(XS[1], YS[1])
    assert raised.value.learned is None
    monkeypatch.undo()
    for call in (lambda: durable.update(XS[2], YS[2]), durable.checkpoint):
        with pytest.raises(RuntimeError, match=r"refused: a write .* could not be undone"):
            call()
    durable.close()  # releases the directory, checkpoints nothing
    assert (tmp_path / "learner.ckpt").read_bytes() == saved
    reopened = ae.DurableLearner(learner(), tmp_path)  # says what became of event 1
    assert reopened.events in (1, 2) and digest(reopened.learner) == reference[reopened.events]
    reopened.close()


def test_a_write_that_was_undone_leaves_a_consistent_learner(tmp_path, monkeypatch, reference):
    durable = ae.DurableLearner(learner(), tmp_path, checkpoint_every=1000)
    durable.update(XS[0], YS[0])
    monkeypatch.setattr(_journal, "os", FaultyOS(fail_at=1, error=errno.ENOSPC))
    with pytest.raises(ae.DurableWriteError, match="event 1 was not learned") as raised:
        durable.update(XS[1], YS[1])  # the flush fails; the record is cut off
    assert raised.value.learned is False
    monkeypatch.undo()
    assert durable.events == 1 and digest(durable.learner) == reference[1]
    durable.checkpoint()  # saves the learner without the unjournaled event
    assert ae.read_checkpoint_header(tmp_path / "learner.ckpt")["step"] == 1
    durable.update(XS[1], YS[1])  # the retry
    _reopened(tmp_path, reference, 2)
