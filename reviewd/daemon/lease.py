"""A lease in Redis: at most one replica at a time may run a pinned plugin.

Why a lease and not a lock: a replica that is killed never says goodbye, so whatever
it holds must run out by itself.  The holder sets ``KEY = TOKEN`` with ``SET NX PX ttl``
and extends it every ``ttl / 3`` with a compare-and-extend script (only while the value
is still its own token); when it dies, the key expires after at most ``ttl`` and the
next replica that tries (every ``ttl / 3``) takes it: the takeover is bounded by
``ttl + ttl / 3``.

Why the holder doubts itself: it counts its lease as valid only until ``ttl`` after it
*sent* the last successful renewal (minus a margin), measured on its own monotonic
clock.  A holder cut off from Redis therefore stops taking work before the key can
expire and another replica can take over.  (A handler already running when that
happens runs to its end: Python threads cannot be stopped.)
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import structlog

from reviewd.api.exception import redact

log = structlog.get_logger("reviewd.lease")

_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

SAFETY = 0.8  # count on the lease for this share of its ttl after the renewal was sent


class Lease:
    """Acquire, renew and release one Redis lease in a background thread."""

    def __init__(
        self,
        client: Any,
        key: str,
        owner: str,
        ttl: float,
        *,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.client = client
        self.key = key
        self.owner = owner
        #: What the key holds while this replica holds the lease: readable in ``/status``.
        self.token = f"{owner}/{os.getpid()}/{uuid.uuid4().hex[:6]}"
        self.ttl = max(0.3, float(ttl))
        self.interval = self.ttl / 3
        self.on_change = on_change
        self.changed = threading.Event()
        self._held = False
        self._valid_until = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._extend = client.register_script(_EXTEND)
        self._release = client.register_script(_RELEASE)
        #: Times this replica acquired the lease (UNIX seconds), for status and tests.
        self.acquired_at: float | None = None
        self.acquisitions = 0
        #: Acquire-or-renew rounds made (tests wait on it instead of on the clock).
        self.rounds = 0

    @property
    def held(self) -> bool:
        return self._held and time.monotonic() < self._valid_until

    def holder(self) -> str | None:
        """The token of whichever replica holds the lease now (None: nobody)."""
        return self.client.get(self.key)

    def start(self) -> Lease:
        self._thread = threading.Thread(
            target=self._run, name=f"reviewd-lease-{self.key}", daemon=True
        )
        self._thread.start()
        return self

    def step(self) -> bool:
        """One acquire-or-renew round; returns whether the lease is held afterwards."""
        sent = time.monotonic()
        self.rounds += 1
        ttl_ms = int(self.ttl * 1000)
        try:
            if self._held:
                ok = bool(self._extend(keys=[self.key], args=[self.token, ttl_ms]))
            else:
                ok = bool(self.client.set(self.key, self.token, nx=True, px=ttl_ms))
        except Exception as exc:  # noqa: BLE001 - Redis away: the lease runs out on its own
            if self._held and time.monotonic() >= self._valid_until:
                self._set(False, f"cannot renew: {redact(str(exc))}")
            return self.held
        if ok:
            self._valid_until = sent + self.ttl * SAFETY
            if not self._held:
                self.acquired_at = time.time()
                self.acquisitions += 1
                self._set(True, "acquired")
        elif self._held:
            self._set(False, "taken by another replica")
        return self.held

    def _set(self, held: bool, why: str) -> None:
        self._held = held
        log.info(
            "lease acquired" if held else "lease lost", key=self.key, token=self.token, reason=why
        )
        self.changed.set()
        if self.on_change is not None:
            self.on_change(held)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.step()
            wait = self.interval
            if self._held:  # renew well before the local validity ends
                wait = max(0.01, min(wait, self._valid_until - time.monotonic() - 0.05))
            self._stop.wait(wait)

    def stop(self) -> None:
        """Stop renewing and give the lease up at once (a clean stop hands over fast)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._held:
            try:
                self._release(keys=[self.key], args=[self.token])
            except Exception as exc:  # noqa: BLE001 - it expires by itself
                log.warning(
                    "releasing the lease failed; it expires by itself",
                    key=self.key,
                    error=redact(str(exc)),
                )
            self._set(False, "released")
