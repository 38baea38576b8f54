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

Under I/O errors the rule is exactly once: an event `update` acknowledged is in the
journal or the checkpoint, and an event whose `update` raised is in neither (its
partial record is cut off and the learner in memory restored from the directory),
unless the error says that this could not be established (`learned=None`). A failed
checkpoint is not an event's failure: the event stays acknowledged, the journal keeps
it, and the failure is reported on its own (a warning and `last_checkpoint_error`).
No file is opened through a symbolic link planted in the directory.
"""

import contextlib
import os
import threading
import types
import warnings
from collections.abc import Sequence

import numpy as np
from jaxtyping import Array, ArrayLike, Float, Real

from alberta_eqx._checks import positive_int
from alberta_eqx.checkpoint import load_checkpoint, save_checkpoint
from alberta_eqx.checkpoint.files import close_quietly, fsync_directory, open_no_link
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


class DurableWriteError(RuntimeError):
    """`DurableLearner.update` could not journal its event (a full disk, an I/O
    error); the `OSError` is its `__cause__`.

    **Attributes:**

    - `learned`: what became of the event.
        - `False`: it was not learned. The journal was cut back and the learner in
          memory restored: both are as they were before the call, which may be
          retried (unless the message says the learner could not be restored; it
          then refuses further calls until the directory is reopened).
        - `None`: unknown, because undoing the partial write failed too. The
          learner refuses further calls; reopen the directory, whose `events` then
          says whether the event was learned.
    """

    def __init__(self, message: str, learned: bool | None):
        super().__init__(message)
        self.learned = learned


class DurableLearner:
    """A learner for a daemon: every event `update` acknowledged survives the process
    being killed, and (by the `fsync` policy) the machine losing power.

    ```python
    from alberta_eqx import IDBD, DurableLearner, LinearLearner

    events = [([1.0, 0.5, -1.0], 2.0), ([0.0, 1.0, 1.0], -1.0)]  # as they arrive
    with DurableLearner(LinearLearner(3, IDBD(0.05, meta_step_size=0.01)), "state/") as durable:
        for x, y in events:
            durable.update(x, y)      # learned, journaled, then returned
    # later, or after a crash: the same call restores the learner exactly
    with DurableLearner(LinearLearner(3, IDBD(0.05, meta_step_size=0.01)), "state/") as durable:
        durable.learner               # the learner after both events
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

    **I/O errors: exactly once.** `update` returning means the event is learned and
    journaled; `update` raising `DurableWriteError` means it was not (`learned=False`:
    retry it), or, only if undoing the partial write failed too, that this is unknown
    (`learned=None`). A checkpoint that fails inside `update` (or `close`) does not
    fail the event: a `RuntimeWarning` is issued, `last_checkpoint_error` holds the
    error, the journal keeps every event, and the next checkpoint (after another
    `checkpoint_every` events, or `checkpoint()`) tries again.

    **Raises:** `RuntimeError` when the directory is in use by another process;
    `CheckpointError` or `JournalError` when its files cannot be restored (nothing in
    the directory is changed then); `OSError` when they cannot be read or written.
    A failed constructor releases the directory.
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
        self.last_checkpoint_error: Exception | None = None
        """The error of the last checkpoint if it failed (None once one succeeds)."""
        os.makedirs(self.directory, exist_ok=True)
        self._checkpoint_path = os.path.join(self.directory, "learner.ckpt")
        self._journal_path = os.path.join(self.directory, "journal")
        self._template, self._nonfinite = learner, nonfinite
        self._policy = (fsync_events, fsync_seconds)
        self._lock = threading.Lock()
        self._failure: BaseException | None = None  # an undone write that could not be
        self._writer: _journal.Writer | None = None  # None: not open, or closed
        self._lock_fd = self._lock_directory()
        try:
            self._open()
        except BaseException:
            if self._writer is not None:
                close_quietly(self._writer.fd)
                self._writer = None
            self._release()
            raise

    def _lock_directory(self) -> int | None:
        if fcntl is None:
            return None
        fd = open_no_link(os.path.join(self.directory, "lock"), os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            close_quietly(fd)
            raise RuntimeError(
                f"{self.directory!r} is in use by another process (its lock file is held)"
            ) from None
        return fd

    def _release(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            close_quietly(fd)  # releases the flock (POSIX frees the fd even on an error)

    def _open(self) -> None:
        if not os.path.exists(self._checkpoint_path):  # a new directory
            self._save(self._template, 0)
        self._online, self._checkpointed, self._events, valid_length = self._restore()
        self._checkpoint_tried = self._events
        if valid_length == 0:  # no journal yet, or killed while creating it
            self._writer = _journal.create(self._journal_path, self._online.dtype, *self._policy)
            fsync_directory(self.directory)
        else:
            self._writer = _journal.open_writer(self._journal_path, valid_length, *self._policy)

    def _restore(self) -> tuple[OnlineLearner, int, int, int]:
        """The learner of the directory's checkpoint and journal (as an
        `OnlineLearner`), the checkpoint's step, the number of events, and the
        journal's valid length (0 when there is none)."""
        saved = load_checkpoint(self._checkpoint_path, self._template)
        if saved.step is None:
            raise ValueError(
                f"{self._checkpoint_path!r} holds no step: it was not written by a DurableLearner"
            )
        online = OnlineLearner(saved.learner, nonfinite=self._nonfinite)
        if os.path.lexists(self._journal_path):
            records, valid_length = _journal.read(self._journal_path, online.dtype)
        else:
            records, valid_length = [], 0
        events = saved.step
        for sequence, x, y in records:  # the journaled events the checkpoint lacks
            if sequence < events:
                continue  # in the checkpoint already (a crash before the journal was emptied)
            if sequence != events:
                raise JournalError(
                    f"{self._journal_path!r} jumps from event {events} to {sequence}"
                )
            try:
                online.update(x, y)
            except NonFiniteEventError as error:  # it was learned when journaled
                raise JournalError(f"replaying event {sequence} failed: {error}") from error
            events += 1
        return online, saved.step, events, valid_length

    def _save(self, learner: AbstractLearner, step: int) -> None:
        save_checkpoint(
            self._checkpoint_path,
            learner,
            step=step,
            allow_nonfinite=self._nonfinite == "allow",
            follow_symlinks=False,
        )

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

    def _check_usable(self, what: str) -> _journal.Writer:
        if self._writer is None:
            raise RuntimeError(
                f"{what} refused: this DurableLearner of {self.directory!r} is closed "
                f"(open the directory again)"
            )
        if self._failure is not None:
            raise RuntimeError(
                f"{what} refused: a write to {self._journal_path!r} failed and could not "
                f"be undone ({self._failure!r}): reopen the directory to restore the learner"
            )
        return self._writer

    def update(
        self,
        x: Real[ArrayLike, " n"] | Sequence[float | int],
        y: ArrayLike | Sequence[float | int],
    ) -> OnlineResult:
        """Learn from one event and journal it; once this returns, the event is
        durable (as the `fsync` policy promises). Returns its `OnlineResult`.

        **Raises:** `NonFiniteEventError` under `nonfinite="raise"` (nothing is
        journaled); `DurableWriteError` when the journal write failed (its `learned`
        says whether the event was learned: see the class); `RuntimeError` after
        `close()`, or after a failed write that could not be undone."""
        online = self._online
        x, y = online._convert("x", x), online._convert("y", y)
        with self._lock:
            writer = self._check_usable("update")
            online = self._online
            learned = online.events
            result = online.update(x, y)
            if online.events == learned:  # skipped: the learner did not change
                return result
            try:
                writer.append(_journal.encode(self._events, np.asarray(x), np.asarray(y)))
            except OSError as error:
                raise self._undo(error) from error
            except BaseException as error:  # an interrupt: memory may be ahead of the disk
                self._failure = error
                raise
            self._events += 1
            if self._events - self._checkpoint_tried >= self.checkpoint_every:
                self._rotate()
        return result

    def _undo(self, error: OSError) -> DurableWriteError:
        """After a failed journal write (which the writer has cut back): the learner
        in memory restored from the directory, and the error for the caller."""
        event = f"event {self._events} was not learned: journaling it failed ({error})"
        if self._writer is not None and self._writer.broken:
            self._failure = error
            return DurableWriteError(
                f"journaling event {self._events} failed ({error}), and cutting its "
                f"partial record off failed too: whether it was learned is unknown. "
                f"This DurableLearner refuses further calls: reopen the directory "
                f"(its `events` then says whether event {self._events} was learned)",
                learned=None,
            )
        try:
            online, _, events, valid_length = self._restore()
            if (events, valid_length) != (self._events, self._writer.length):
                raise JournalError(
                    f"the directory holds {events} events, {self._events} were expected"
                )
        except Exception as restore_error:
            self._failure = restore_error
            return DurableWriteError(
                f"{event}, but restoring the learner in memory from the directory failed "
                f"({restore_error}): this DurableLearner refuses further calls; reopen "
                f"the directory",
                learned=False,
            )
        self._online = online
        return DurableWriteError(
            f"{event}; the journal and the learner are as before the call, which may be retried",
            learned=False,
        )

    def checkpoint(self) -> None:
        """Checkpoint the learner now and empty the journal.

        **Raises:** `OSError` when the checkpoint or the new journal cannot be
        written (every acknowledged event is kept all the same, in the journal or the
        checkpoint; the error is also in `last_checkpoint_error`); `RuntimeError` after
        `close()`, or after a failed write that could not be undone."""
        with self._lock:
            self._check_usable("checkpoint")
            self._checkpoint_tried = self._events
            try:
                self._checkpoint()
            except Exception as error:
                self.last_checkpoint_error = error
                raise
            self.last_checkpoint_error = None

    def _rotate(self) -> None:
        """A checkpoint whose failure does not fail the event that triggered it."""
        self._checkpoint_tried = self._events
        try:
            self._checkpoint()
        except Exception as error:
            self.last_checkpoint_error = error
            warnings.warn(
                f"checkpointing {self.directory!r} at event {self._events} failed "
                f"({error!r}); every acknowledged event is kept (journal or checkpoint), "
                f"and the next checkpoint tries again",
                RuntimeWarning,
                stacklevel=3,
            )
        else:
            self.last_checkpoint_error = None

    def _checkpoint(self) -> None:
        # The checkpoint first, flushed; only then the journal it makes redundant. At
        # every step some writer is open on the file named `journal`: a failure before
        # the rename keeps appending to the old journal (whose records the replay
        # skips), one after it to the new one.
        self._save(self._online.learner, self._events)
        self._checkpointed = self._events
        new = _journal.create(self._journal_path, self._online.dtype, *self._policy)
        old, self._writer = self._writer, new
        if old is not None:
            with contextlib.suppress(OSError):  # its records are all in the checkpoint now
                old.close(sync=False)
        fsync_directory(self.directory)  # the rename, durably

    def sync(self) -> None:
        """Flush the journal to disk now (for a daemon falling idle under a time or
        count policy).

        **Raises:** `OSError` when the flush fails (the events stay acknowledged: a
        killed process still loses none of them)."""
        with self._lock:
            self._check_usable("sync").sync()

    def close(self, *, checkpoint: bool = True) -> None:
        """Flush the journal, checkpoint (unless `checkpoint=False`) and release the
        directory. Closing twice does nothing.

        A failed checkpoint is reported as in `update` (a warning); the directory is
        released whatever fails, and a failed final flush of the journal is raised."""
        with self._lock:
            if self._writer is None:
                return
            try:
                if checkpoint and self._failure is None and self._events > self._checkpointed:
                    self._rotate()
            finally:
                writer, self._writer = self._writer, None
                try:
                    writer.close(sync=self._failure is None)
                finally:
                    self._release()

    def __enter__(self) -> "DurableLearner":
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: types.TracebackType | None,
    ) -> None:
        self.close()
