"""The bounded intake spool: received events wait here until the journal holds them.

Why it exists: the hub's reader must never wait on the disk, and a journal that cannot
be written (disk full, file deleted) must not turn into lost events.  The hub's dispatch
hook only appends to this spool; the intake's writer thread takes batches from its
head, journals each batch in one transaction (group commit) and only then removes them
and hands them to the lanes.  While writes fail the events stay here and the daemon is
not ready; once a write succeeds the spool drains.

It is bounded in *bytes* (the encoded size of each event), not in count: sixty 20 MB
events are as dangerous as a million small ones.  What does not fit is refused,
counted and logged by the caller - the only place the daemon ever turns an event away.

Pacing: while the journal is being written the spool is only a hand-off between two
threads, and a burst that the journal cannot keep up with would pile up here as decoded
events (several times their encoded size; a million-event burst, hundreds of MB).  Past
a soft bound (a few batches) a *paced* put waits for the writer to take the head, so
the burst waits in the hub's small backlog, the socket and the server instead.  It
waits only while the writer makes progress: a writer stuck (a locked file, a long
transaction) for PACE_STALL seconds stops the pacing, so the hub keeps reading (missed
heartbeats would cost the connection); and while journal writes fail nobody paces.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
#: Past this many items or bytes a paced put waits for the consumer (see above).
SOFT_ITEMS = 2048
SOFT_BYTES = 8 * 1024 * 1024
#: Pacing stops when the consumer took nothing for this long.
PACE_STALL = 0.5


class Spool(Generic[T]):
    """A FIFO of items with sizes, bounded by their total size; one consumer."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._items: deque[tuple[T, int]] = deque()
        self._bytes = 0
        self._cond = threading.Condition(threading.Lock())
        #: Items turned away because they did not fit, since start.
        self.refused = 0
        #: The most bytes ever held at once (a figure for operators and tests).
        self.peak_bytes = 0
        #: Puts that waited for the consumer (pacing), since start.
        self.paced = 0
        self._last_drop = time.monotonic()

    def _over_soft(self) -> bool:
        return len(self._items) >= SOFT_ITEMS or self._bytes >= SOFT_BYTES

    def put(self, item: T, size: int, pace: bool = False) -> bool:
        """Append *item* of *size* bytes; False (and counted) if it does not fit.  With
        *pace*, first wait while the spool is past its soft bound and the consumer is
        taking items (see above)."""
        with self._cond:
            if pace and self._over_soft():
                self.paced += 1
                while self._over_soft():
                    waited = time.monotonic() - self._last_drop
                    if waited >= PACE_STALL:
                        break  # the consumer is stuck: keep the producer going
                    self._cond.wait(PACE_STALL - waited)
            if self._bytes + size > self.max_bytes and self._items:
                self.refused += 1
                return False
            self._items.append((item, size))
            self._bytes += size
            if self._bytes > self.peak_bytes:
                self.peak_bytes = self._bytes
            self._cond.notify()
            return True

    def peek(self, max_items: int, timeout: float | None = None) -> list[T]:
        """Up to *max_items* from the head, without removing them (waits up to *timeout*
        for the first one).  The consumer calls :meth:`drop` once they are safe."""
        with self._cond:
            if not self._items and timeout:
                self._cond.wait(timeout)
            count = min(max_items, len(self._items))
            return [self._items[i][0] for i in range(count)]

    def drop(self, count: int) -> None:
        """Remove the *count* head items (the ones the journal now holds)."""
        with self._cond:
            for _ in range(min(count, len(self._items))):
                _, size = self._items.popleft()
                self._bytes -= size
            self._last_drop = time.monotonic()
            self._cond.notify_all()  # a paced producer may wait for room

    def wake(self) -> None:
        """Wake a consumer waiting in :meth:`peek` (stopping)."""
        with self._cond:
            self._cond.notify_all()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def bytes(self) -> int:
        return self._bytes
