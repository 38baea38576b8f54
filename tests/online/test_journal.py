"""`DurableLearner`: the journal and the checkpoints give back, bit for bit, the
learner fed exactly the acknowledged events, after a clean close, a torn last record,
a crash between a checkpoint and the journal's rotation, or a SIGKILL at any moment."""

import multiprocessing
import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import alberta_eqx as ae

# Private on purpose: a record's bytes (`encode`) and a crash inside `create` have no
# public API; everything else goes through `DurableLearner`.
from alberta_eqx.online import _journal
from tests._workers import durable_daemon
from tests._workers.durable_daemon import digest, events, learner

XS, YS = events()


class Reference:
    """An uninterrupted `OnlineLearner` fed the events in order; its digest after `n`."""

    def __init__(self):
        self.online, self.n = ae.OnlineLearner(learner()), 0

    def digest(self, n: int) -> str:
        assert n >= self.n
        for i in range(self.n, n):
            self.online.update(XS[i], YS[i])
        self.n = n
        return digest(self.online.learner)


def _feed(durable, start, stop):
    for i in range(start, stop):
        durable.update(XS[i], YS[i])


def test_close_and_reopen_is_bit_identical(tmp_path):
    with ae.DurableLearner(learner(), tmp_path, checkpoint_every=7) as durable:
        _feed(durable, 0, 30)
    reopened = ae.DurableLearner(learner(), tmp_path, checkpoint_every=7)
    assert reopened.events == 30 and digest(reopened.learner) == Reference().digest(30)
    _feed(reopened, 30, 40)  # and it goes on
    reopened.close(checkpoint=False)  # the last 5 events only in the journal
    again = ae.DurableLearner(learner(), tmp_path)
    assert again.events == 40 and digest(again.learner) == Reference().digest(40)
    again.close()


def test_a_torn_last_record_is_dropped(tmp_path):
    durable = ae.DurableLearner(learner(), tmp_path, checkpoint_every=1000)
    _feed(durable, 0, 12)
    durable.close(checkpoint=False)
    journal = tmp_path / "journal"
    record = _journal.encode(12, XS[12], np.asarray(YS[12]))
    for torn in (record[:5], record[:20], record[:-1], b"\0" * 300):
        with open(journal, "ab") as f:
            f.write(torn)  # a killed or power-cut write of event 12
        reopened = ae.DurableLearner(learner(), tmp_path, checkpoint_every=1000)
        assert reopened.events == 12 and digest(reopened.learner) == Reference().digest(12)
        reopened.close(checkpoint=False)
    # A full-length last record that fails its checksum is damage, not a torn write.
    whole = journal.read_bytes()
    with open(journal, "ab") as f:
        f.write(record[:-3] + b"\0\0\0")
    damaged = journal.read_bytes()
    with pytest.raises(ae.JournalError, match=r"damaged at byte \d+ \(a record that fails"):
        ae.DurableLearner(learner(), tmp_path, checkpoint_every=1000)
    assert journal.read_bytes() == damaged  # nothing changed on disk
    journal.write_bytes(whole)
    reopened = ae.DurableLearner(learner(), tmp_path, checkpoint_every=1000)
    _feed(reopened, 12, 15)  # appended after the dropped tail, which is gone
    reopened.close(checkpoint=False)
    assert ae.DurableLearner(learner(), tmp_path).events == 15


def test_damage_before_the_last_record_is_refused(tmp_path):
    durable = ae.DurableLearner(learner(), tmp_path, checkpoint_every=1000)
    _feed(durable, 0, 5)
    durable.close(checkpoint=False)
    journal = tmp_path / "journal"
    data = bytearray(journal.read_bytes())
    data[40] ^= 0x01  # inside the first record
    journal.write_bytes(bytes(data))
    with pytest.raises(ae.JournalError, match=r"damaged at byte 30 \(a record that fails"):
        ae.DurableLearner(learner(), tmp_path)


def test_a_crash_between_checkpoint_and_rotation_replays_nothing_twice(tmp_path, monkeypatch):
    durable = ae.DurableLearner(learner(), tmp_path, checkpoint_every=10)
    _feed(durable, 0, 9)

    def crash(*arguments):
        raise KeyboardInterrupt  # the process dies right after the checkpoint

    monkeypatch.setattr(_journal, "create", crash)
    with pytest.raises(KeyboardInterrupt):
        durable.update(XS[9], YS[9])
    monkeypatch.undo()
    os.close(durable._lock_fd)
    # the checkpoint holds 10 events; the journal still holds events 0..9
    assert ae.read_checkpoint_header(tmp_path / "learner.ckpt")["step"] == 10
    reopened = ae.DurableLearner(learner(), tmp_path, checkpoint_every=10)
    assert reopened.events == 10 and digest(reopened.learner) == Reference().digest(10)
    reopened.close()


def test_refused_events_are_not_journaled_and_one_process_holds_the_directory(tmp_path):
    durable = ae.DurableLearner(learner(), tmp_path)
    _feed(durable, 0, 3)
    with pytest.raises(ae.NonFiniteEventError, match="x holds nan"):
        durable.update([np.nan, 0, 0, 0], 1.0)
    with pytest.raises(RuntimeError, match="in use by another process"):
        ae.DurableLearner(learner(), tmp_path)
    durable.close(checkpoint=False)
    reopened = ae.DurableLearner(learner(), tmp_path)
    assert reopened.events == 3 and digest(reopened.learner) == Reference().digest(3)
    reopened.close()


@pytest.mark.parametrize(
    ("policy", "syncs", "pending"),
    [
        ({"fsync_events": 1}, 20, False),
        ({"fsync_events": 6}, 3, True),
        ({"fsync_events": None, "fsync_seconds": 0.0}, 20, False),
        ({"fsync_events": None, "fsync_seconds": 3600.0}, 0, True),
    ],
)
def test_fsync_policies(tmp_path, monkeypatch, policy, syncs, pending):
    durable = ae.DurableLearner(learner(), tmp_path, checkpoint_every=1000, **policy)
    calls = []
    sync = getattr(os, "fdatasync", os.fsync)
    monkeypatch.setattr(os, sync.__name__, lambda fd: calls.append(fd) or sync(fd))
    _feed(durable, 0, 20)
    assert len(calls) == syncs
    durable.sync()  # what an idle daemon calls: flushes what is pending, if anything
    assert len(calls) == syncs + pending
    durable.close(checkpoint=False)


def _line(output) -> str:
    """The daemon's next line (`output` unbuffered), or a failure after 120 s instead
    of a hang: a forked process whose parent had started JAX's backend hangs."""
    assert select.select([output], [], [], 120.0)[0], "the daemon printed nothing in 120 s"
    return output.readline().decode()


@pytest.mark.slow  # a subprocess importing JAX
def test_importing_the_daemon_leaves_the_backend_unstarted():
    """The SIGKILL test forks its daemons from a process that imported them, and
    XLA's threads do not survive a fork: the import must not start JAX's backend."""
    code = (
        "import tests._workers.durable_daemon; from jax._src import xla_bridge; "
        "print('started' if xla_bridge._backends else 'not started')"
    )
    root = Path(__file__).parents[2]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert result.stdout.strip() == "not started", result.stderr[-2000:]


@pytest.mark.slow  # 20 daemon processes: about 20 s on 2 busy cores
def test_sigkill_at_random_moments_loses_no_acknowledged_event(tmp_path):
    """A daemon killed 20 times; every restart holds exactly the acknowledged events
    (and at most the one whose acknowledgement it was printing), bit for bit. Each
    daemon is a process of its own, forked from one that imported JAX and the daemon
    once (multiprocessing's fork server): 20 imports cost 35 s of CPU."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tests._workers.durable_daemon"])
    moments = random.Random(15)
    reference, acknowledged, checked = Reference(), 0, 0
    policies = ["event", "batch", "time"]
    for kill in range(20):
        reader, writer = context.Pipe(duplex=False)
        daemon = context.Process(
            target=durable_daemon.run, args=(str(tmp_path), policies[kill % 3], writer)
        )
        daemon.start()
        writer.close()  # the daemon holds the only writing end: its death ends the output
        output = os.fdopen(os.dup(reader.fileno()), "rb", buffering=0)
        reader.close()
        if kill % 5 == 4:  # now and then while it starts: restoring, replaying
            time.sleep(moments.uniform(0.0, 1.5))
            start = first = None
        else:  # while it learns: after its first acknowledgement (it compiles first)
            start = _line(output).split()
            first = _line(output)
            time.sleep(moments.uniform(0.0, 0.3))
        daemon.kill()
        daemon.join()
        with output:
            lines = output.read().decode().split("\n")
        if first is not None:
            lines.insert(0, first.strip())
        if start is None:
            start = lines.pop(0).split() if lines[0].startswith("start") else None
        if start is not None:
            restored = int(start[1])
            assert acknowledged <= restored <= acknowledged + 1, (kill, restored)
            assert start[2] == reference.digest(restored), f"restart {kill}: not bit-identical"
            printed = [int(line) for line in lines if line.strip().isdigit()]
            assert printed == list(range(restored, restored + len(printed)))
            acknowledged = restored + len(printed)
            checked += 1
        assert daemon.exitcode == -signal.SIGKILL
    assert checked >= 16 and acknowledged > 300  # the checks above did run
    final = ae.DurableLearner(learner(), tmp_path)
    assert acknowledged <= final.events <= acknowledged + 1
    assert digest(final.learner) == reference.digest(final.events)
    final.close()
