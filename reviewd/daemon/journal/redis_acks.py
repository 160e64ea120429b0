"""Acknowledging finished deliveries to Redis: at once, by the worker that finished
them, pipelined with whatever else is ready (no timer, no batch to fill).

Why at once, from the worker: a delivery whose handler finished but whose
acknowledgement has not reached Redis is run again by the replica that claims it if
this one dies (at-least-once).  So the worker that finished it writes its
acknowledgement as soon as the handler returns (:meth:`AckBatcher.write_through`), and
does not start another handler before it is written (the journal's ``begin_attempt``
waits for it, :meth:`AckBatcher.wait_written`).  At a kill -9 a lane then has at most
one such delivery per worker: the one running or being acknowledged.

Why still batched: a write takes every completion waiting at that moment (one ``ACK``
script call per plugin, pipelined: :data:`~reviewd.daemon.journal.redis_scripts.ACK`).
Workers write side by side on connections of their own, so none waits for another's
round trip.

Why retried for ever: a completion that cannot be written (Redis restarting) must not
be forgotten, or the entry would be handled again once another replica claims it.  It
stays here and the background thread writes it when Redis answers again; until then
its entries are kept touched (:meth:`unacked_ids`, used by the journal's ``touch``) and
are never taken back by this replica's own claims (:meth:`is_unacked`).
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
    """Completions waiting to be written, written by the workers that finished them
    (and, after a failed write, by a background thread until Redis answers)."""

    def __init__(self, journal: Any) -> None:
        self.journal = journal
        self._cond = threading.Condition()
        #: (ticket, plugin, event id) not taken by a writer yet, oldest first.
        self._waiting: list[tuple[int, str, str]] = []
        #: Tickets not written yet (waiting, or on the wire with some writer).
        self._unwritten: set[int] = set()
        self._unacked: dict[str, set[str]] = defaultdict(set)  # waiting or being written
        self._issued = 0
        self._in_flight = 0  # writes under way
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Completions written, and batches written (their ratio is the batch size).
        self.acked = 0
        self.batches = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="reviewd-redis-acks", daemon=True)
        self._thread.start()

    def done(self, plugin: str, event_id: str) -> int:
        """Queue the acknowledgement of a finished delivery; its ticket (see
        :meth:`wait_written`)."""
        with self._cond:
            self._issued += 1
            ticket = self._issued
            self._waiting.append((ticket, plugin, event_id))
            self._unwritten.add(ticket)
            self._unacked[plugin].add(event_id)
        if self._thread is None:  # no background thread (tools, tests): write now
            self.flush()
        return ticket

    def written(self, ticket: int) -> bool:
        with self._cond:
            return ticket not in self._unwritten

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
    def write_through(self, ticket: int) -> bool:
        """Write *ticket* now, from the caller's thread, with everything else waiting
        (or, when another writer already took it, wait for that write).  Workers write
        side by side, each on its own connection: none waits for another's round trip.
        False when Redis could not be reached (the background thread retries)."""
        while True:
            with self._cond:
                if ticket not in self._unwritten:
                    return True
                if any(t == ticket for t, _p, _e in self._waiting):
                    batch = self._take_locked()
                else:  # on the wire with another writer
                    self._cond.wait(0.5)
                    continue
            if not self._write_batch(batch):
                return False

    def wait_written(self, ticket: int, give_up: Any = None) -> bool:
        """Block until *ticket* is written (Redis away: until it returns and the
        background thread wrote it), or *give_up()* says stop; True once written."""
        with self._cond:
            while ticket in self._unwritten:
                if give_up is not None and give_up():
                    return False
                self._cond.wait(0.2)
            return True

    def _take_locked(self) -> list[tuple[int, str, str]]:
        batch, self._waiting = self._waiting, []
        if batch:
            self._in_flight += 1
        return batch

    def _settle(self, batch: list[tuple[int, str, str]], written: bool) -> None:
        with self._cond:
            if written:
                for ticket, plugin, event_id in batch:
                    self._unwritten.discard(ticket)
                    self._unacked[plugin].discard(event_id)
            else:
                self._waiting[:0] = batch  # back in front, in order
            self._in_flight -= 1
            self._cond.notify_all()

    def _write(self, batch: list[tuple[int, str, str]]) -> None:
        """One round trip for the entry ids this replica does not know already, one
        pipelined ``ACK`` script call per plugin (not per delivery) for the rest."""
        journal = self.journal
        client = journal.client
        by_plugin: dict[str, dict[str, str | None]] = defaultdict(dict)
        for _ticket, plugin, event_id in batch:
            by_plugin[plugin][event_id] = journal.held_entry(plugin, event_id)
        missing = [(p, i) for p, ids in by_plugin.items() for i, e in ids.items() if e is None]
        if missing:
            lookup = client.pipeline(transaction=False)
            for plugin, event_id in missing:
                lookup.hget(journal.key("entry", plugin), event_id)
            for (plugin, event_id), entry in zip(missing, lookup.execute(), strict=True):
                by_plugin[plugin][event_id] = entry
        calls = [
            (p, {i: e for i, e in ids.items() if e is not None}) for p, ids in by_plugin.items()
        ]
        commands = [journal.ack_command(p, found) for p, found in calls if found]
        if commands:
            self.journal.raw.send(commands)
        for _ticket, plugin, event_id in batch:
            journal.release_entry(plugin, event_id)
        self.acked += len(batch)
        self.batches += 1

    def _write_batch(self, batch: list[tuple[int, str, str]]) -> bool:
        """Write *batch* (taken by the caller); False when Redis could not be reached
        (kept for later)."""
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

    def _write_once(self) -> bool:
        """Write what is waiting; False when Redis could not be reached (kept for later)."""
        with self._cond:
            batch = self._take_locked()
        return self._write_batch(batch)

    def _run(self) -> None:
        """Write what no worker wrote: completions left after a failed write (Redis
        away), tried every RETRY_EVERY until they are written."""
        while not self._stop.wait(RETRY_EVERY):
            with self._cond:
                idle = not self._waiting
            if not idle:
                self._write_once()

    def flush(self, timeout: float = 5.0) -> bool:
        """Write everything waiting now (from the caller's thread) and wait for the
        writes under way; True when nothing is left unwritten."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._cond:
                while self._in_flight and not self._waiting and time.monotonic() < deadline:
                    self._cond.wait(0.05)
                if not self._unwritten:
                    return True
                if not self._waiting:
                    continue
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
