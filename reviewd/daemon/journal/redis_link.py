"""The replica's link to Redis: is it reachable, and the heartbeat that proves it.

Why a thread of its own: an idle replica makes no Redis calls, yet ``/readyz`` must say
within seconds that Redis is gone.  Every ``BEAT_EVERY`` seconds this thread writes
the replica's heartbeat (``PREFIX:replicas``, read by :mod:`reviewd.daemon.cluster`),
which doubles as the connectivity probe, on a client of its own with short timeouts.

While Redis is unreachable the replica is not ready (:attr:`problem` names the URL and
the error), lanes stop taking work and acknowledgements wait; journal writes raise, so
the intake keeps received events in its bounded spool (:mod:`reviewd.daemon.spool`)
until they can be written.  It never falls back to a local journal.
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

log = structlog.get_logger("reviewd.journal.redis")

BEAT_EVERY = 1.0


class RedisLink:
    """Connectivity and heartbeat of one replica."""

    def __init__(self, journal: Any) -> None:
        import redis

        self.journal = journal
        self._probe = redis.Redis(
            connection_pool=redis.ConnectionPool(
                **{
                    **journal.client.connection_pool.connection_kwargs,
                    "socket_timeout": 1.5,
                    "socket_connect_timeout": 1.5,
                }
            )
        )
        self._lock = threading.Lock()
        self._up = threading.Event()
        self._up.set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.problem: str | None = None
        #: Times Redis became unreachable since start.
        self.outages = 0
        self.info = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": round(time.time(), 3),
        }

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="reviewd-redis-link", daemon=True)
        self._thread.start()

    def lost(self, exc: BaseException) -> None:
        """A call failed because Redis could not be reached: not ready until it answers."""
        text = redact(f"journal: Redis unreachable at {self.journal.path}: {exc}")
        with self._lock:
            first = self.problem is None
            self.problem = text
            self._up.clear()
        if first:
            self.outages += 1
            log.error(
                "Redis unreachable: not ready; received events wait in the intake "
                "spool until it returns (no fallback to a local journal)",
                error=text,
            )

    def wait_up(self, timeout: float) -> bool:
        """Wait until Redis answers again (lanes use this instead of spinning)."""
        return self._up.wait(timeout)

    @property
    def up(self) -> bool:
        return self._up.is_set()

    def check(self) -> bool:
        """One heartbeat, which is also the connectivity probe."""
        beat = dict(self.info, time=round(time.time(), 3), consumer=self.journal.consumer)
        try:
            self._probe.hset(
                f"{self.journal.prefix}:replicas", self.journal.consumer, json.dumps(beat)
            )
        except self.journal.redis_error as exc:  # also LOADING while Redis reads its AOF
            self.lost(exc)
            return False
        except OSError as exc:
            self.lost(exc)
            return False
        with self._lock:
            came_back = self.problem is not None
            self.problem = None
            self._up.set()
        if came_back:
            self.journal.forget_groups()  # a Redis that lost its data needs them again
            log.info("Redis reachable again", url=self.journal.path)
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            self.check()
            self._stop.wait(BEAT_EVERY)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self._probe.close()
