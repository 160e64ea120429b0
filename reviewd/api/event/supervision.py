"""Keeping a connection to the event server, for ever: connect, read, reconnect.

The supervisor runs on the hub's connection thread.  Each round opens a fresh
:class:`~reviewd.api.event.connection.Connection`; when that fails, or an open connection
ends (closed, reset, or silent past the heartbeat timeout), it waits a capped,
exponentially growing, fully jittered delay and tries again — it never gives up.  A
connection that lived ``HEALTHY_AFTER`` seconds starts the backoff over.  Every
attempt is recorded as an :class:`Attempt` for diagnosis and tests.

What a connection means for the rest of the hub (re-subscribing, letting the writer
go, telling listeners) is the hub's business: the supervisor calls *on_open*,
*read* and *on_close* around each connection.  The only failure it does not retry is
one the caller must hear about: on the very first attempt, credentials refused or a
server without the websocket transport, kept in ``fatal`` for ``connect(wait=True)``
to raise.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple

from reviewd.api.event.backoff import Backoff
from reviewd.api.event.connection import (
    Connection,
    ConnectionLost,
    HandshakeRefused,
    ServerUnreachable,
)
from reviewd.api.event.dispatch import call_safely
from reviewd.api.exception import EventHubConnectionError, redact

__all__ = ["Attempt", "ConnectionListeners", "Supervisor", "HEALTHY_AFTER"]

# The hub's logger: operators configure and filter "reviewd.api.event.hub", whichever
# module of the hub a line comes from.
log = logging.getLogger("reviewd.api.event.hub")

#: A connection that lived this long counts as healthy: the backoff starts over.
HEALTHY_AFTER = 2.0
#: Longest wait between probes of an address where nothing listens (refused, no
#: route), and before the first attempt after a connection is lost.  Such a probe costs
#: the server nothing, and a server restarted after a short outage must be noticed
#: within a second or so, not after a long backoff.
PROBE_CAP = 1.0
#: Longest wait before retrying after losing a connection that had been healthy (a
#: cut, a proxy restart): every second of waiting is a second of events missed.
#: Still jittered, so that a fleet cut off together does not return in lock-step.
FIRST_RETRY_CAP = 0.25


class Attempt(NamedTuple):
    """One connection attempt: when, how it went, and the wait scheduled after it."""

    time: float
    outcome: str
    delay: float | None = None
    ceiling: float | None = None


class ConnectionListeners:
    """``(on_connected, on_disconnected)`` pairs, called on the connection thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[tuple[Callable[..., Any] | None, Callable[..., Any] | None]] = []

    def add(
        self,
        on_connected: Callable[[], Any] | None,
        on_disconnected: Callable[[str], Any] | None,
    ) -> Callable[[], None]:
        """Register a pair; return a function that removes it."""
        entry = (on_connected, on_disconnected)
        with self._lock:
            self._entries.append(entry)

        def remove() -> None:
            with self._lock:
                if entry in self._entries:
                    self._entries.remove(entry)

        return remove

    def connected(self) -> None:
        with self._lock:
            entries = list(self._entries)
        for on_connected, _ in entries:
            if on_connected is not None:
                call_safely(on_connected)

    def disconnected(self, reason: str) -> None:
        with self._lock:
            entries = list(self._entries)
        for _, on_disconnected in entries:
            if on_disconnected is not None:
                call_safely(on_disconnected, reason)


class Supervisor:
    """The reconnect-forever loop; :meth:`run` is the connection thread's body.

    *new_connection* builds an unopened connection; *on_open(connection)* runs once it
    is open, *read(connection)* until it ends (raising :class:`ConnectionLost`), and
    *on_close(connection, reason)* after.  ``reconnects`` counts connections lost.
    """

    def __init__(
        self,
        new_connection: Callable[[], Connection],
        on_open: Callable[[Connection], None],
        read: Callable[[Connection], None],
        on_close: Callable[[Connection, str], None],
        stop: threading.Event,
        reconnect_base: float,
        reconnect_cap: float,
    ) -> None:
        self._new_connection = new_connection
        self._on_open = on_open
        self._read = read
        self._on_close = on_close
        self._stop = stop
        self._reconnect_base = reconnect_base
        self._reconnect_cap = reconnect_cap
        #: The connection being opened or used (closed by the hub at disconnect).
        self.connection: Connection | None = None
        #: The first attempt's final refusal (credentials, transport), for ``connect()``.
        self.fatal: BaseException | None = None
        #: The latest connection attempts (:class:`Attempt`), for diagnosis and tests.
        self.attempts: deque[Attempt] = deque(maxlen=200)
        self.reconnects = 0
        #: Connection attempts that failed to open (``connect()`` may give up on one).
        self.failed_attempts = 0
        #: Wall-clock time of the last frame heard on any connection (None: never).
        self.last_heard: float | None = None

    def run(self) -> None:
        backoff = Backoff(self._reconnect_base, self._reconnect_cap)
        first = True
        stop = self._stop
        while not stop.is_set():
            connection = self._new_connection()
            self.connection = connection
            try:
                connection.open()
            except EventHubConnectionError as error:
                final = first and isinstance(error, HandshakeRefused) and error.final
                ceiling = backoff.ceiling()
                delay = backoff.next_delay()
                if isinstance(error, ServerUnreachable):
                    ceiling = min(ceiling, PROBE_CAP)
                    delay = min(delay, PROBE_CAP)
                self.attempts.append(
                    Attempt(time.monotonic(), f"failed: {redact(str(error))}", delay, ceiling)
                )
                log.warning(
                    "event server connection failed (%s); retrying in %.2fs",
                    redact(str(error)),
                    delay,
                )
                if final:  # after the log line: connect() raises as soon as this is set
                    self.fatal = error
                self.failed_attempts += 1
                stop.wait(delay)
                continue
            except Exception as error:  # a bug or an exotic failure: log, keep going
                ceiling = backoff.ceiling()
                delay = backoff.next_delay()
                self.attempts.append(
                    Attempt(time.monotonic(), f"failed: {redact(repr(error))}", delay, ceiling)
                )
                log.exception("unexpected error while connecting to the event server")
                self.failed_attempts += 1
                stop.wait(delay)
                continue
            if stop.is_set():
                connection.close()
                break
            first = False
            self.attempts.append(Attempt(time.monotonic(), "connected"))
            opened = time.monotonic()
            reason = "closed"
            self._on_open(connection)
            try:
                self._read(connection)
            except ConnectionLost as error:
                reason = str(error)
            except Exception as error:  # never let the reader die silently
                reason = f"reader failed: {error!r}"
                log.exception("event hub reader failed; reconnecting")
            finally:
                connection.close()
                self.last_heard = connection.last_heard or self.last_heard
                self._on_close(connection, reason)
            healthy = time.monotonic() - opened >= HEALTHY_AFTER
            if healthy:
                backoff.reset()
            if stop.is_set():
                break
            self.reconnects += 1
            # The server was there a moment ago: look again within PROBE_CAP rather than
            # after a backoff grown by earlier rounds (a server restarted twice in quick
            # succession was otherwise rejoined 6 s late).  If it is gone, the next
            # attempts are cheap refusals; if it answers with errors, they back off.
            cap = FIRST_RETRY_CAP if healthy else PROBE_CAP
            ceiling = min(backoff.ceiling(), cap)
            delay = min(backoff.next_delay(), cap)
            self.attempts.append(
                Attempt(time.monotonic(), f"lost: {redact(reason)}", delay, ceiling)
            )
            log.warning(
                "event server connection lost (%s); reconnecting in %.2fs", redact(reason), delay
            )
            stop.wait(delay)
