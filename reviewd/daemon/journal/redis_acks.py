"""Acknowledging finished deliveries to Redis in pipelined batches (group commit).

Why batches: one round trip per finished delivery caps a replica at a few thousand
deliveries per second and puts Redis latency on every worker.  Workers only append to
a list here and go on; one thread writes whatever has gathered in one ``MULTI``
(acknowledge, delete the entry, drop its bookkeeping, count it done), so under load a
batch holds many completions and when idle a completion is written at once.

Why retried for ever: a completion that cannot be written (Redis restarting) must not
be forgotten, or the entry would be handled again once another replica claims it.  The
batch stays here, is written when Redis answers again, and until then its entries are
kept touched (:meth:`unacked_ids`, used by the journal's ``touch``) and are never taken
back by this replica's own claims (:meth:`is_unacked`).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any

import structlog

from reviewd.api.exception import redact

log = structlog.get_logger("reviewd.journal.redis")

RETRY_EVERY = 0.2


class AckBatcher:
    """Completions waiting to be written, and the thread that writes them."""

    def __init__(self, journal: Any) -> None:
        self.journal = journal
        self._cond = threading.Condition()
        self._waiting: list[tuple[str, str]] = []  # (plugin, event id), oldest first
        self._unacked: dict[str, set[str]] = defaultdict(set)  # waiting or being written
        self._writing = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Completions written, and batches written (their ratio is the batch size).
        self.acked = 0
        self.batches = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="reviewd-redis-acks", daemon=True)
        self._thread.start()

    def done(self, plugin: str, event_id: str) -> None:
        with self._cond:
            self._waiting.append((plugin, event_id))
            self._unacked[plugin].add(event_id)
            self._cond.notify_all()
        if self._thread is None:  # no background thread (tools, tests): write now
            self.flush()

    def unacked_ids(self, plugin: str) -> list[str]:
        with self._cond:
            return list(self._unacked.get(plugin, ()))

    def is_unacked(self, plugin: str, event_id: str) -> bool:
        with self._cond:
            return event_id in self._unacked.get(plugin, ())

    def backlog(self) -> int:
        with self._cond:
            return sum(len(ids) for ids in self._unacked.values())

    # ------------------------------------------------------------------ writing
    def _take(self) -> list[tuple[str, str]]:
        with self._cond:
            batch, self._waiting = self._waiting, []
            self._writing = bool(batch)
            return batch

    def _settle(self, batch: list[tuple[str, str]], written: bool) -> None:
        with self._cond:
            if written:
                for plugin, event_id in batch:
                    self._unacked[plugin].discard(event_id)
            else:
                self._waiting[:0] = batch  # back in front, in order
            self._writing = False
            self._cond.notify_all()

    def _write(self, batch: list[tuple[str, str]]) -> None:
        """One round trip for the entry ids this replica does not know already, one
        ``MULTI`` with five commands per plugin (not per delivery) for the rest."""
        journal = self.journal
        client = journal.client
        by_plugin: dict[str, dict[str, str | None]] = defaultdict(dict)
        for plugin, event_id in batch:
            by_plugin[plugin][event_id] = journal.held_entry(plugin, event_id)
        missing = [(p, i) for p, ids in by_plugin.items() for i, e in ids.items() if e is None]
        if missing:
            lookup = client.pipeline(transaction=False)
            for plugin, event_id in missing:
                lookup.hget(journal.key("entry", plugin), event_id)
            for (plugin, event_id), entry in zip(missing, lookup.execute(), strict=True):
                by_plugin[plugin][event_id] = entry
        pipe = client.pipeline(transaction=True)
        for plugin, ids in by_plugin.items():
            found = {i: e for i, e in ids.items() if e is not None}
            if found:
                journal.forget_many(pipe, plugin, found)
                pipe.incrby(journal.key("done", plugin), len(found))
        pipe.execute()
        for plugin, event_id in batch:
            journal.release_entry(plugin, event_id)
        self.acked += len(batch)
        self.batches += 1

    def _write_once(self) -> bool:
        """Write what is waiting; False when Redis could not be reached (kept for later)."""
        batch = self._take()
        if not batch:
            return True
        try:
            self._write(batch)
        except self.journal.connection_errors as exc:
            self._settle(batch, False)
            self.journal.link.lost(exc)
            return False
        except self.journal.redis_error as exc:
            self._settle(batch, False)
            log.error(
                "acknowledging finished deliveries failed; retrying",
                count=len(batch),
                error=redact(str(exc)),
            )
            return False
        self._settle(batch, True)
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                if not self._waiting:
                    self._cond.wait(0.5)
                    continue
            if not self._write_once():
                self._stop.wait(RETRY_EVERY)

    def flush(self, timeout: float = 5.0) -> bool:
        """Write everything waiting now (from the caller's thread); True when nothing is
        left unwritten."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._cond:
                while self._writing and time.monotonic() < deadline:
                    self._cond.wait(0.05)
                if not self._waiting:
                    return not self._writing
            if not self._write_once():
                time.sleep(RETRY_EVERY)
        return False

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        if not self.flush(timeout):
            log.warning(
                "some finished deliveries could not be acknowledged; another "
                "replica (or this one's next start) will handle them again",
                count=self.backlog(),
            )
