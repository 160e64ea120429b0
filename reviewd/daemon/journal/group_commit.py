"""Group commit: many threads' journal writes share one SQLite transaction.

Why: a commit costs far more than the statements inside it, and the journal is written
from several threads at once (the intake journaling received events, every lane's
workers recording attempts and outcomes).  Instead of one transaction per write, a
thread that needs a write appends it to a shared queue; the first waiting thread
becomes the *leader*, takes everything queued so far, runs it in one transaction and
wakes the others.  Uncontended, the leader is the caller itself (no hand-off to another
thread); under load, batches grow by themselves.

Writes that nobody waits for (a delivery finished: the worker moves on) ride along
with the next batch or with :meth:`GroupCommit.flush`; their ``then`` callback runs
once they are durable, so in-memory state that depends on them (a lane forgetting an
event id) only changes after the commit.  A batch that fails (disk full) fails every
write in it: waiters get the error, unattended writes are queued again, in order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

Apply = Callable[[Any], Any]  # runs the statements on a cursor; returns the result

#: Unattended writes queued beyond this are committed by the thread that queues one.
MAX_UNATTENDED = 256


class Write:
    """One queued write: what it does, its outcome, and who is told about it."""

    __slots__ = ("apply", "then", "waited", "done", "result", "error")

    def __init__(
        self, apply: Apply, then: Callable[[Any], None] | None = None, waited: bool = True
    ) -> None:
        self.apply = apply
        self.then = then
        self.waited = waited
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None


class GroupCommit:
    """Runs queued :class:`Write` s in shared transactions via *run_batch*.

    *run_batch(writes)* executes every write's ``apply`` inside one transaction and
    commits, storing results on the writes, or raises (nothing committed).
    """

    def __init__(self, run_batch: Callable[[list[Write]], None]) -> None:
        self._run_batch = run_batch
        self._cond = threading.Condition(threading.Lock())
        self._queue: list[Write] = []
        self._leading = False
        #: Writes committed and batches run, for stats and tests.
        self.writes = 0
        self.batches = 0

    def submit(
        self, apply: Apply, wait: bool = True, then: Callable[[Any], None] | None = None
    ) -> Any:
        """Queue a write; with *wait*, return its result once committed (or raise)."""
        write = Write(apply, then, wait)
        with self._cond:
            self._queue.append(write)
            backlog = len(self._queue)
        if not wait:
            if backlog >= MAX_UNATTENDED:
                self.flush()  # nobody else is committing: do not let them pile up
            return None
        self._drive(write)
        if write.error is not None:
            raise write.error
        return write.result

    def flush(self) -> None:
        """Commit every queued write now (raises if that batch fails)."""
        with self._cond:
            if not self._queue and not self._leading:
                return
        self.submit(lambda cursor: None)

    def pending(self) -> int:
        with self._cond:
            return len(self._queue)

    def _drive(self, write: Write) -> None:
        """Wait for *write* to be committed, leading a batch when nobody else is."""
        while True:
            with self._cond:
                while not write.done and self._leading:
                    self._cond.wait()
                if write.done:
                    return
                self._leading = True
                batch, self._queue = self._queue, []
            try:
                self._commit(batch)
            finally:
                with self._cond:
                    self._leading = False
                    self._cond.notify_all()

    def _commit(self, batch: list[Write]) -> None:
        try:
            self._run_batch(batch)
        except BaseException as exc:  # noqa: BLE001 - every write in the batch failed
            unattended = []
            for write in batch:
                write.result = None
                if not write.waited:
                    unattended.append(write)  # nobody waits: try again with the next batch
                else:
                    write.error = exc
                    write.done = True
            with self._cond:
                self._queue[:0] = unattended
            return
        self.batches += 1
        self.writes += len(batch)
        for write in batch:
            write.done = True
            if write.then is not None:
                write.then(write.result)
