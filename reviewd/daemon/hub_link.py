"""The event hub's connection as the daemon sees it: up or down, reconnects, gaps.

Why a module of its own: the hub reports connects and disconnects on its connection
thread, but what follows from them — counting the reconnect, measuring the gap,
telling plugins about it, logging it — belongs on the main loop.  :class:`HubLink`
is the hand-over: the connection listeners only note the times and queue the gap;
the main loop takes each gap with :meth:`HubLink.pending_gaps` and records it with
:meth:`HubLink.record_gap`.  ``/status`` and ``/readyz`` read the counters here.
"""

from __future__ import annotations

import datetime
import queue
import time
from collections.abc import Iterator
from typing import Any

import structlog

from reviewd.daemon.metrics import Metrics

# These lines have always been the supervisor's; operators filter on the logger name.
log = structlog.get_logger("reviewd.supervisor")

Gap = tuple[float, float]


class HubLink:
    """Connection state, reconnect count and gap statistics of the daemon's event hub."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.connected = False
        self.reconnects = 0
        #: When the hub went down (``time.time()``), or None while it is up.
        self.disconnected_at: float | None = None
        self.gap_count = 0
        self.gap_seconds = 0.0
        self.last_gap: dict[str, Any] | None = None
        self._ever_connected = False
        self._gaps: queue.SimpleQueue[Gap] = queue.SimpleQueue()

    def on_connected(self) -> None:
        """Hub thread: connected; a reconnect after a disconnect queues the gap."""
        now = time.time()
        self.connected = True
        if self._ever_connected and self.disconnected_at is not None:
            self.reconnects += 1
            self.metrics.reconnects.inc()
            self._gaps.put((self.disconnected_at, now))
        self._ever_connected = True
        self.disconnected_at = None

    def on_disconnected(self, last_heard: float | None = None) -> None:
        """Hub thread: disconnected.  The gap starts at *last_heard* — the last frame the
        hub heard from the server — not now: a server that froze (SIGSTOP, a dead
        network) is only noticed a heartbeat timeout later, and plugins reconciling
        the gap need the window in which events may really have been missed."""
        self.connected = False
        if self.disconnected_at is None:
            now = time.time()
            self.disconnected_at = min(now, last_heard) if last_heard else now

    def pending_gaps(self) -> Iterator[Gap]:
        """Main loop: the gaps that ended since the last call, oldest first."""
        while not self._gaps.empty():
            yield self._gaps.get()

    def record_gap(self, start: float, end: float) -> tuple[datetime.datetime, datetime.datetime]:
        """Count, measure and log one gap; return its start and end as UTC datetimes."""
        seconds = max(0.0, end - start)
        self.gap_count += 1
        self.gap_seconds += seconds
        self.metrics.gaps.inc()
        self.metrics.gap_seconds.inc(seconds)
        gap_start = datetime.datetime.fromtimestamp(start, datetime.timezone.utc)
        gap_end = datetime.datetime.fromtimestamp(end, datetime.timezone.utc)
        self.last_gap = {
            "start": gap_start.isoformat(),
            "end": gap_end.isoformat(),
            "seconds": round(seconds, 3),
        }
        log.warning(
            "event hub gap",
            gap_start=gap_start.isoformat(),
            gap_end=gap_end.isoformat(),
            seconds=round(seconds, 3),
        )
        return gap_start, gap_end
