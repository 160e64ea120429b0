"""Frames waiting to be sent, and the connection they may be sent on.

A publisher only appends to this bounded queue and returns: it never waits for the
network, even while the hub is reconnecting.  When the queue is full the oldest event
is dropped and counted (``dropped``, logged at 1, 10, 100 and every 1000th).  Control
frames ((un)subscriptions) have a queue of their own that goes first; it is refilled in
full on every connection, so it is emptied, not kept, when a connection ends.

Each queued item is ``(text, ack_id, info)``: the encoded frame, the acknowledgement
it asks for, and what to do about that acknowledgement (see :mod:`reviewd.api.event.acks`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from reviewd.api.event.connection import Connection

__all__ = ["Outbox", "WRITE_BATCH"]

# The hub's logger: operators configure and filter "reviewd.api.event.hub", whichever
# module of the hub a line comes from.
log = logging.getLogger("reviewd.api.event.hub")

#: Frames the writer takes from the queue per lock acquisition.
WRITE_BATCH = 256
#: Longest a publisher sending in its own thread waits for the writer to finish a batch
#: before queueing behind it instead.
WRITER_GRACE = 1.0

Item = tuple[str, "int | None", Any]


class Outbox:
    """The outgoing queues; ``live`` is the connection the writer may use (or None)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, int(capacity))
        self._cond = threading.Condition(threading.Lock())
        self._control: deque[Item] = deque()
        self._outgoing: deque[Item] = deque()
        self.live: Connection | None = None
        #: Whether the writer holds a batch it has not finished sending.
        self.writing = False
        self.published = 0
        self.dropped = 0

    def __len__(self) -> int:
        with self._cond:
            return len(self._outgoing) + len(self._control)

    @property
    def waiting_events(self) -> int:
        """Published events queued and not yet taken by the writer."""
        with self._cond:
            return len(self._outgoing)

    # ------------------------------------------------------------------ publishers
    def publish(self, item: Item) -> None:
        """Queue a published event, dropping the oldest one if the queue is full."""
        with self._cond:
            if len(self._outgoing) >= self.capacity:
                dropped = self._outgoing.popleft()
                self.dropped += 1
                if self.dropped in (1, 10, 100) or self.dropped % 1000 == 0:
                    log.warning(
                        "outgoing event queue full (%d); dropped the oldest event (%d dropped so far)",
                        self.capacity,
                        self.dropped,
                        extra={"dropped_frame_ack": dropped[1]},
                    )
            self._outgoing.append(item)
            self.published += 1
            self._cond.notify()

    def send_now(self, item: Item, send: Callable[[Item], None]) -> bool:
        """Send *item* in the calling thread if nothing is queued or being written.

        ftrack_api sends a published event in the publisher's thread; the hub does the
        same in its default mode.  Only when the queues are empty and the writer is idle
        (holding the lock meanwhile) can the event go first without overtaking
        anything published before it; otherwise this returns False and the caller
        queues it.  *send* raises what sending raises.
        """
        with self._cond:
            # The writer may be just finishing a batch (the acknowledgement of its last
            # frame can even have arrived already): wait a moment for it.
            deadline = time.monotonic() + WRITER_GRACE
            while self.writing and self.live is not None and not self._queued():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            if self.live is None or self.writing or self._queued():
                return False
            send(item)
            self.published += 1
            return True

    def _queued(self) -> bool:
        return bool(self._control or self._outgoing)

    def send_control(self, item: Item) -> None:
        """Queue a (un)subscribe frame if connected; on reconnect all are re-sent anyway."""
        with self._cond:
            if self.live is not None:
                self._control.append(item)
                self._cond.notify()

    def queue_control(self, items: Iterable[Item]) -> None:
        """Queue control frames whether or not a connection is live (at disconnect)."""
        with self._cond:
            self._control.extend(items)
            self._cond.notify_all()

    # ------------------------------------------------------------------ connections
    def go_live(self, connection: Connection, control: Iterable[Item]) -> None:
        """Let the writer use *connection*, sending *control* before anything else."""
        with self._cond:
            self._control.clear()
            self._control.extend(control)
            self.live = connection
            self._cond.notify_all()

    def go_offline(self, connection: Connection) -> None:
        """*connection* ended: stop writing to it; its control frames are void."""
        with self._cond:
            if self.live is connection:
                self.live = None
            self._control.clear()

    def requeue(self, connection: Connection, unsent: list[Item]) -> None:
        """Sending on *connection* failed: put *unsent* events back in front, in order
        (dropping the oldest if that overfills the queue), until a reconnect."""
        with self._cond:
            if self.live is connection:
                self.live = None
            self._outgoing.extendleft(reversed(unsent))
            while len(self._outgoing) > self.capacity:
                self._outgoing.popleft()
                self.dropped += 1

    # ------------------------------------------------------------------ the writer
    def take(self, stop: threading.Event) -> tuple[Connection, list[tuple[bool, Item]]] | None:
        """Wait for frames and a live connection; return them (None once *stop* is set).

        Each frame comes as ``(is_control, item)``; control frames come first.
        """
        cond = self._cond
        with cond:
            while not stop.is_set() and (
                self.live is None or not (self._control or self._outgoing)
            ):
                cond.wait()
            if stop.is_set():
                return None
            connection = self.live
            assert connection is not None, "the wait above ends only with a live connection"
            batch: list[tuple[bool, Item]] = []
            while self._control and len(batch) < WRITE_BATCH:
                batch.append((True, self._control.popleft()))
            while self._outgoing and len(batch) < WRITE_BATCH:
                batch.append((False, self._outgoing.popleft()))
            self.writing = True
        return connection, batch

    def written(self) -> None:
        """The writer finished its batch; wake a draining disconnect."""
        with self._cond:
            self.writing = False
            self._cond.notify_all()

    def wake(self) -> None:
        """Wake everyone waiting on the queue (the writer at stop, a draining disconnect)."""
        with self._cond:
            self._cond.notify_all()

    def drain(self, deadline: float) -> None:
        """Wait until everything queued is sent, the connection is gone, or *deadline*."""
        while time.monotonic() < deadline:
            with self._cond:
                if not (self._queued() or self.writing) or self.live is None:
                    return
                self._cond.wait(0.05)
