"""The replica's link to Redis: is it reachable, the heartbeat, and the spool for the
events the hub delivers while it is not.

Why a thread of its own: an idle replica makes no Redis calls, yet ``/readyz`` must say
within seconds that Redis is gone.  Every ``BEAT_EVERY`` seconds this thread writes
the replica's heartbeat (``PREFIX:replicas``, read by :mod:`reviewd.daemon.cluster`),
which doubles as the connectivity probe, on a client of its own with short timeouts.

While Redis is unreachable the replica is not ready (:attr:`problem` names the URL and
the error), lanes stop taking work and acknowledgements wait; it never falls back to a
local journal.  Events the hub delivers meanwhile wait in a spool bounded in bytes;
they are written, in order, as soon as Redis answers, and only then does the replica
become ready again.  An event that does not fit is refused: counted
(:attr:`refused`) and logged with its id.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from typing import Any

import structlog

from reviewd.api.exception import redact
from reviewd.daemon.journal.sqlite import JournalError

log = structlog.get_logger("reviewd.journal.redis")

BEAT_EVERY = 1.0
DRAIN_BATCH = 200


class _Spool:
    """A FIFO bounded by the total size of its items."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.items: list[tuple[str, list[str], int]] = []
        self.bytes = 0

    def put(self, payload: str, plugins: list[str]) -> bool:
        size = len(payload)
        if self.bytes + size > self.max_bytes:
            return False
        self.items.append((payload, plugins, size))
        self.bytes += size
        return True

    def head(self, count: int) -> list[tuple[str, list[str], int]]:
        return self.items[:count]

    def drop(self, count: int) -> None:
        for _payload, _plugins, size in self.items[:count]:
            self.bytes -= size
        del self.items[:count]


class RedisLink:
    """Connectivity, heartbeat and spool of one replica."""

    def __init__(self, journal: Any, *, spool_bytes: int = 64 << 20) -> None:
        import redis

        self.journal = journal
        self._probe = redis.Redis(connection_pool=redis.ConnectionPool(
            **{**journal.client.connection_pool.connection_kwargs,
               "socket_timeout": 1.5, "socket_connect_timeout": 1.5}))
        self._lock = threading.Lock()
        self._spool = _Spool(spool_bytes)
        self._up = threading.Event()
        self._up.set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.problem: str | None = None
        self.spooling = False
        #: Events turned away because the spool was full; events spooled and written later.
        self.refused = 0
        self.spooled = 0
        self.outages = 0
        self.info = {"host": socket.gethostname(), "pid": os.getpid(),
                     "started": round(time.time(), 3)}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="reviewd-redis-link", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ state
    def lost(self, exc: BaseException) -> None:
        """A call failed because Redis could not be reached: not ready until it answers."""
        text = redact(f"journal: Redis unreachable at {self.journal.path}: {exc}")
        with self._lock:
            first = self.problem is None
            self.problem = text
            self.spooling = True
            self._up.clear()
        if first:
            self.outages += 1
            log.error("Redis unreachable: not ready; events wait in the local spool until it "
                      "returns (no fallback to a local journal)", error=text)

    def wait_up(self, timeout: float) -> bool:
        """Wait until Redis answers again (lanes use this instead of spinning)."""
        return self._up.wait(timeout)

    @property
    def up(self) -> bool:
        return self._up.is_set()

    def spool_state(self) -> dict[str, int]:
        with self._lock:
            return {"events": len(self._spool.items), "bytes": self._spool.bytes,
                    "max_bytes": self._spool.max_bytes, "refused": self.refused,
                    "spooled": self.spooled}

    # ------------------------------------------------------------------ spool
    def spool(self, payload: str, plugins: list[str]) -> list[str]:
        """Keep an event until Redis returns; refused (raises) when the spool is full."""
        with self._lock:
            kept = self._spool.put(payload, plugins)
            if kept:
                self.spooled += 1
            else:
                self.refused += 1
                limit = self._spool.max_bytes
        if not kept:
            event_id = _event_id(payload)
            log.error("event refused: Redis unreachable and the spool is full",
                      event_id=event_id, spool_max_bytes=limit, refused_total=self.refused)
            raise JournalError(f"Redis unreachable and the spool is full ({limit} bytes): "
                               f"event {event_id} refused")
        return plugins

    def _drain(self) -> bool:
        """Write the spool to Redis in order; True once it is empty."""
        while True:
            with self._lock:
                batch = self._spool.head(DRAIN_BATCH)
                if not batch:
                    self.spooling = False
                    return True
            written = 0
            try:
                for payload, plugins, _size in batch:
                    self.journal.write(payload, plugins)
                    written += 1
            finally:
                with self._lock:
                    self._spool.drop(written)
            log.info("spooled events written to Redis", count=written)

    # ------------------------------------------------------------------ thread
    def _beat(self) -> None:
        beat = dict(self.info, time=round(time.time(), 3), consumer=self.journal.consumer)
        self._probe.hset(f"{self.journal.prefix}:replicas", self.journal.consumer,
                         json.dumps(beat))

    def check(self) -> bool:
        """One heartbeat (the connectivity probe); after an outage, drain the spool first."""
        try:
            self._beat()
            if self.spooling or self.problem is not None:
                self.journal.forget_groups()
                self._drain()
        except self.journal.connection_errors as exc:
            self.lost(exc)
            return False
        except self.journal.redis_error as exc:  # e.g. LOADING while Redis reads its AOF
            self.lost(exc)
            return False
        with self._lock:
            came_back = self.problem is not None
            self.problem = None
            self._up.set()
        if came_back:
            log.info("Redis reachable again; spool drained", url=self.journal.path)
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            self.check()
            self._stop.wait(BEAT_EVERY)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self.spooling:
            try:
                self._drain()
            except (self.journal.redis_error, *self.journal.connection_errors):
                pass
            state = self.spool_state()
            if state["events"]:
                log.error("stopping with events still in the spool (Redis unreachable); "
                          "they are lost unless another replica received them",
                          events=state["events"])
        self._probe.close()


def _event_id(payload: str) -> str:
    try:
        return str(json.loads(payload).get("id"))
    except ValueError:
        return "?"
