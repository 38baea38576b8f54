"""`DurableLearner`: an `OnlineLearner` whose every acknowledged event survives a crash.

The directory holds `learner.ckpt` (a checkpoint whose `step` is the number of events
it has learned), `journal` (the events learned since, one record each, see
`_journal`) and `lock`. An event is learned, then appended to the journal, and only
then acknowledged (`update` returns). Every `checkpoint_every` events the learner is
checkpointed (atomically, flushed) and only then the journal replaced by an empty one:
a crash between the two leaves a journal whose events the checkpoint already holds,
which their sequence numbers let the replay skip. Opening the directory again loads
the checkpoint and replays the journal through the same compiled update, which gives
the learner bit for bit.
"""

import os
import threading
import types
from collections.abc import Sequence

import numpy as np
from jaxtyping import Array, ArrayLike, Float, Real

from alberta_eqx._checks import positive_int
from alberta_eqx.checkpoint import load_checkpoint, save_checkpoint
from alberta_eqx.learners import AbstractLearner
from alberta_eqx.online import _journal
from alberta_eqx.online._journal import JournalError
from alberta_eqx.online._learner import (
    NonFiniteEventError,
    NonFinitePolicy,
    OnlineLearner,
    OnlineResult,
)

try:
    import fcntl
except ImportError:  # not POSIX: no lock between processes
    fcntl = None  # type: ignore[assignment]  # mypy's idiom for an optional module


class DurableLearner:
    """A learner for a daemon: every event `update` acknowledged survives the process
    being killed, and (by the `fsync` policy) the machine losing power.

    ```python
    with DurableLearner(LinearLearner(12, IDBD(0.01, 0.01)), "state/") as durable:
        for x, y in events:
            durable.update(x, y)      # learned, journaled, then returned
    # later, or after a crash: the same call restores the learner exactly
    durable = DurableLearner(LinearLearner(12, IDBD(0.01, 0.01)), "state/")
    ```

    **Arguments:**

    - `learner`: for a new directory, the learner to start from; for an existing one,
      a template of the saved learner's structure (as `load_checkpoint`'s
      `like_learner`): the learner itself is restored from the directory.
    - `directory`: where the checkpoint and the journal live (created if missing).
      One process at a time may open it (a lock file, on POSIX).
    - `fsync_events`: flush the journal to disk after this many events (1: every
      event). None: never by count.
    - `fsync_seconds`: flush the journal at the first event this many seconds or
      more after the last flush. None: never by time.
    - `checkpoint_every`: checkpoint the learner and empty the journal after this many
      events (which bounds the journal's size and the replay's length on restart).
    - `nonfinite`: as `OnlineLearner`'s. Refused and skipped events are not journaled
      (they leave the learner as it was).

    **What each policy promises.** Every record is handed to the operating system
    (one `write`) before `update` returns, so whatever the policy, a process that is
    killed (`SIGKILL`, a crash, an out-of-memory kill) loses no acknowledged event:
    the kernel holds the written data. A power loss or an operating-system crash
    loses what was not yet flushed: with `fsync_events=1`, nothing acknowledged; with
    `fsync_events=k`, at most the last `k - 1` acknowledged events; with
    `fsync_seconds=t` alone, the events acknowledged since the last flush (a flush
    happens at an event, so a daemon that falls idle should call `sync()`). A
    checkpoint is always flushed before the journal is emptied.
    """

    def __init__(
        self,
        learner: AbstractLearner,
        directory: str | os.PathLike,
        *,
        fsync_events: int | None = 1,
        fsync_seconds: float | None = None,
        checkpoint_every: int = 10_000,
        nonfinite: NonFinitePolicy = "raise",
    ):
        if fsync_events is not None:
            fsync_events = positive_int("fsync_events", fsync_events)
        if fsync_seconds is not None and not fsync_seconds >= 0:
            raise ValueError(f"fsync_seconds must be >= 0 or None, got {fsync_seconds!r}")
        self.checkpoint_every = positive_int("checkpoint_every", checkpoint_every)
        self.directory = os.fspath(directory)
        os.makedirs(self.directory, exist_ok=True)
        self._lock = threading.Lock()
        self._lock_fd = self._lock_directory()
        self._checkpoint_path = os.path.join(self.directory, "learner.ckpt")
        self._journal_path = os.path.join(self.directory, "journal")
        self._allow_nonfinite = nonfinite == "allow"
        if os.path.exists(self._checkpoint_path):
            saved = load_checkpoint(self._checkpoint_path, learner)
            if saved.step is None:
                raise ValueError(
                    f"{self._checkpoint_path!r} holds no step: it was not written by a "
                    "DurableLearner"
                )
            learner, self._checkpointed = saved.learner, saved.step
        else:  # a new directory: its first checkpoint is the starting learner
            self._checkpointed = 0
            save_checkpoint(
                self._checkpoint_path, learner, step=0, allow_nonfinite=self._allow_nonfinite
            )
        self._online = OnlineLearner(learner, nonfinite=nonfinite)
        self._events = self._checkpointed
        self._failure: BaseException | None = None
        dtype = self._online.dtype
        if not os.path.exists(self._journal_path):
            _journal.create(self._journal_path, dtype)
        records, valid_length = _journal.read(self._journal_path, dtype)
        if valid_length == 0:  # killed while creating it
            _journal.create(self._journal_path, dtype)
            records, valid_length = _journal.read(self._journal_path, dtype)
        self._replay(records)
        # None once closed
        self._writer: _journal.Writer | None = _journal.Writer(
            self._journal_path, valid_length, fsync_events, fsync_seconds
        )

    def _lock_directory(self) -> int | None:
        if fcntl is None:
            return None
        fd = os.open(os.path.join(self.directory, "lock"), os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RuntimeError(
                f"{self.directory!r} is in use by another process (its lock file is held)"
            ) from None
        return fd

    def _replay(self, records: list) -> None:
        """Learn the journaled events the checkpoint does not hold, in order."""
        for sequence, x, y in records:
            if sequence < self._events:
                continue  # in the checkpoint already (a crash before the journal was emptied)
            if sequence != self._events:
                raise JournalError(
                    f"{self._journal_path!r} jumps from event {self._events} to {sequence}"
                )
            try:
                self._online.update(x, y)
            except NonFiniteEventError as error:  # it was learned when journaled
                raise JournalError(f"replaying event {sequence} failed: {error}") from error
            self._events += 1

    @property
    def events(self) -> int:
        """How many events the learner has learned, over its whole life in this
        directory (the sequence number of the next one)."""
        return self._events

    @property
    def learner(self) -> AbstractLearner:
        """The learner as it is now."""
        return self._online.learner

    def predict(self, x: Real[ArrayLike, " n"] | Sequence[float | int]) -> Float[Array, "*k"]:
        """The prediction for `x`, without learning from it."""
        return self._online.predict(x)

    def update(
        self,
        x: Real[ArrayLike, " n"] | Sequence[float | int],
        y: ArrayLike | Sequence[float | int],
    ) -> OnlineResult:
        """Learn from one event and journal it; once this returns, the event is
        durable (as the `fsync` policy promises). Returns its `OnlineResult`.

        **Raises:** `NonFiniteEventError` under `nonfinite="raise"` (nothing is
        journaled); `RuntimeError` after a journal write failed (the learner in memory
        is then ahead of the disk: reopen the directory to restore it)."""
        online = self._online
        x, y = online._convert("x", x), online._convert("y", y)
        with self._lock:
            if self._failure is not None:
                raise RuntimeError(
                    f"a write to {self._journal_path!r} failed earlier "
                    f"({self._failure!r}): reopen the directory to restore the learner"
                )
            learned = online.events
            result = online.update(x, y)
            if online.events == learned:  # skipped: the learner did not change
                return result
            try:
                self._writer.append(_journal.encode(self._events, np.asarray(x), np.asarray(y)))
            except BaseException as error:
                self._failure = error
                raise
            self._events += 1
            if self._events - self._checkpointed >= self.checkpoint_every:
                self._checkpoint()
        return result

    def checkpoint(self) -> None:
        """Checkpoint the learner now and empty the journal."""
        with self._lock:
            self._checkpoint()

    def _checkpoint(self) -> None:
        # The checkpoint first, flushed; only then the journal it makes redundant.
        save_checkpoint(
            self._checkpoint_path,
            self._online.learner,
            step=self._events,
            allow_nonfinite=self._allow_nonfinite,
        )
        self._checkpointed = self._events
        self._writer.close()
        _journal.create(self._journal_path, self._online.dtype)
        self._writer = _journal.Writer(
            self._journal_path,
            os.path.getsize(self._journal_path),
            self._writer.fsync_events,
            self._writer.fsync_seconds,
        )

    def sync(self) -> None:
        """Flush the journal to disk now (for a daemon falling idle under a time or
        count policy)."""
        with self._lock:
            self._writer.sync()

    def close(self, *, checkpoint: bool = True) -> None:
        """Flush the journal, checkpoint (unless `checkpoint=False`) and release the
        directory. Closing twice does nothing."""
        with self._lock:
            if self._writer is None:
                return
            if checkpoint and self._failure is None and self._events > self._checkpointed:
                self._checkpoint()
            self._writer.close()
            self._writer = None
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # releases the flock

    def __enter__(self) -> "DurableLearner":
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: types.TracebackType | None,
    ) -> None:
        self.close()
