"""Keeping one plugin's lane supplied from its Redis stream.

Why a thread per lane instead of workers polling: a worker that finds its queue empty
used to ask Redis for two entries and sleep 0.2 s when there were none, which capped a
cluster at some 60 deliveries a second.  The feed instead waits *in Redis*
(``XREADGROUP ... BLOCK``) for up to ``batch`` entries at a time, so a new entry
reaches an idle replica at once and a busy one takes work in large batches.

What the feed does, in order, while its lane runs:

1. once, this replica's own unfinished entries (a restart under the same consumer
   name finds them again);
2. every ``claim_idle / 3``: touches the entries it holds (queued, running or waiting
   for their acknowledgement), so no other replica takes them while this one lives;
3. every ``claim_idle / 2``: claims entries other replicas stopped touching (they died);
4. otherwise: a blocking read of new entries, no more than the lane has room for and
   no more than it finishes in about ``HOLD_SECONDS`` (measured), so that a replica
   does not sit on a backlog of slow deliveries while the other replicas are idle.

A pinned plugin (``journal.pinned``) runs only on the replica holding its lease
(:mod:`reviewd.daemon.lease`): without the lease the feed takes nothing and takes
back what it queued but had not started.  While Redis is unreachable the feed waits
for it to return.
"""

from __future__ import annotations

import collections
import queue
import threading
import time
from typing import Any

import structlog

from reviewd.api.exception import redact
from reviewd.daemon.lease import Lease

log = structlog.get_logger("reviewd.journal.redis")

#: A replica holds about this much work (at its measured pace) per lane.
HOLD_SECONDS = 0.2
#: How often the pace is measured.
PACE_WINDOW = 0.1


class LaneFeed:
    """One lane's supply thread."""

    def __init__(self, journal: Any, lane: Any, resolve: Any) -> None:
        self.journal = journal
        self.lane = lane
        self.plugin = lane.plugin
        self.resolve = resolve
        self.limit = max(1, min(journal.batch, lane.queue.maxsize))
        self.min_hold = min(self.limit, 4 * len(lane.threads))
        self._finished = 0
        self._low_water = self.min_hold // 2  # see _room()
        self._window_start = time.monotonic()
        self._pace: float | None = None  # deliveries finished per second (smoothed)
        self._waiting: collections.deque = collections.deque()  # taken, not yet queued
        self.room = threading.Event()
        self.lease: Lease | None = None
        if self.plugin in journal.pinned:
            self.lease = Lease(
                journal.client,
                journal.key("lease", self.plugin),
                journal.consumer,
                journal.lease_ttl,
                on_change=lambda held: self.room.set(),
            )
        self.touch_every = max(0.05, journal.claim_idle / 3)
        self.claim_every = max(0.1, journal.claim_idle / 2)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"reviewd-feed-{self.plugin}", daemon=True
        )
        #: Entries taken from the stream, and from other replicas.
        self.fetched = 0
        self.claimed = 0
        self.lost = 0

    def start(self) -> None:
        if self.lease is not None:
            self.lease.start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.room.set()
        self._thread.join(5)
        if self.lease is not None:
            self.lease.stop()

    def wake(self) -> None:
        """A delivery finished: wake the feed once the lane is down to its low-water
        mark (the feed takes nothing above it anyway; waking it for every delivery
        would cost a thread switch each)."""
        self._finished += 1
        if len(self.lane.known) <= self._low_water + 1:  # + 1: the finished one, still known
            self.room.set()

    def hold_limit(self) -> int:
        """How many deliveries this lane should hold now: what it finishes in about
        HOLD_SECONDS at its measured pace, at least ``min_hold``, at most ``limit``."""
        now = time.monotonic()
        elapsed = now - self._window_start
        if elapsed >= PACE_WINDOW:
            pace = self._finished / elapsed
            self._pace = pace if self._pace is None else 0.5 * self._pace + 0.5 * pace
            self._finished, self._window_start = 0, now
        wanted = int((self._pace or 0.0) * HOLD_SECONDS)
        return max(self.min_hold, min(self.limit, wanted))

    @property
    def stopping(self) -> bool:
        return self._stop.is_set() or self.lane.stopping.is_set()

    def snapshot(self) -> dict[str, Any]:
        out: dict[str, Any] = {"fetched": self.fetched, "claimed": self.claimed}
        if self.lease is not None:
            out["lease_held"] = self.lease.held
        return out

    # ------------------------------------------------------------------ the loop
    def _run(self) -> None:
        own_done = False
        now = time.monotonic()
        next_touch, next_claim = now + self.touch_every, now
        while not self.stopping:
            link = self.journal.link
            if not link.up:
                # Redis away: take nothing; when it returns give the other replicas one
                # claim period to touch what they hold before claiming anything.
                if link.wait_up(1.0):
                    next_claim = time.monotonic() + self.claim_every
                    next_touch = time.monotonic()
                continue
            if self.lease is not None and not self.lease.held:
                self._give_back_queued()
                self.lease.changed.wait(0.5)
                self.lease.changed.clear()
                continue
            try:
                if not own_done:
                    self._take(self.journal.fetch(self.plugin, 10_000, own=True))
                    own_done = True
                now = time.monotonic()
                if now >= next_touch:
                    self._touch()
                    next_touch = now + self.touch_every
                if now >= next_claim:
                    room = self._room()
                    if room:
                        self.claimed += self._take(self.journal.claim(self.plugin, room))
                    next_claim = now + self.claim_every
                room = self._room()
                wait = max(0.01, min(next_touch, next_claim) - time.monotonic())
                if self._waiting:  # taken earlier, did not fit the lane then
                    self._take([])
                    room = 0 if self._waiting else room
                if room <= 0:
                    self.room.wait(min(wait, PACE_WINDOW))
                    self.room.clear()
                    continue
                block = int(min(self.journal.block_ms, wait * 1000))
                self.fetched += self._take(
                    self.journal.fetch(self.plugin, room, block_ms=max(1, block))
                )
            except self.journal.connection_errors as exc:
                link.lost(exc)
            except Exception as exc:  # noqa: BLE001 - keep feeding; say why it failed
                if "NOGROUP" in str(exc):  # Redis came back empty: create the group again
                    self.journal.forget_groups()
                log.error(
                    "reading the Redis stream failed", plugin=self.plugin, error=redact(str(exc))
                )
                self._stop.wait(1.0)
        if self.lease is not None:  # the lane stopped (reload, shutdown): hand over now
            self.lease.stop()

    def _room(self) -> int:
        """How many entries to take now: none while the lane holds more than half of
        what it should (so that reads come in batches, not one per finished delivery),
        else enough to fill it up."""
        lane = self.lane
        with lane.lock:
            held = len(lane.known) + len(self._waiting)
        hold = self.hold_limit()
        self._low_water = hold // 2
        if held > hold // 2:
            return 0
        return max(0, min(hold - held, lane.queue.maxsize - lane.queue.qsize()))

    def _take(self, deliveries: list) -> int:
        """Queue *deliveries* on the lane; entries whose completion is still being
        acknowledged (a claim right after an outage) are not run again.  What does not
        fit the lane (its byte bound) waits here, in order, held by this replica."""
        taken = 0
        dropped: list[str] = []
        self._waiting.extend(deliveries)
        while self._waiting:
            delivery = self._waiting[0]
            if self.journal.acks.is_unacked(self.plugin, delivery.event_id):
                self._waiting.popleft()
                dropped.append(delivery.event_id)
                continue
            job = self.resolve(self.plugin, delivery)
            if job is None:
                self._waiting.popleft()
                dropped.append(delivery.event_id)
                log.debug(
                    "no current subscriber for a journaled delivery; left pending",
                    plugin=self.plugin,
                    event_id=delivery.event_id,
                )
                continue
            if not self.lane.submit(job):
                break  # the lane is full (bytes): try again when a delivery finished
            self._waiting.popleft()
            taken += 1
        if dropped:  # taken but not run here: the attempt counted on taking them is undone
            self._unbegin(dropped)
        return taken

    def _unbegin(self, event_ids: list[str]) -> None:
        """Undo the attempt counted when *event_ids* were taken (they will not run
        here).  Best effort: when Redis does not answer the count stays one too high,
        which only brings a dead letter sooner, never a lost or repeated delivery."""
        try:
            self.journal.unbegin(self.plugin, event_ids)
        except self.journal.redis_error as exc:
            log.debug("undoing counted attempts failed", plugin=self.plugin, error=redact(str(exc)))

    def _touch(self) -> None:
        with self.lane.lock:
            known = list(self.lane.known)
        known.extend(d.event_id for d in list(self._waiting))
        lost = self.journal.touch(self.plugin, known)
        if lost:
            self.lost += len(lost)
            lost_ids = set(lost)
            self._waiting = collections.deque(
                d for d in self._waiting if d.event_id not in lost_ids
            )
            dropped = len(self._unqueue(lost_ids))
            log.warning(
                "another replica claimed deliveries this one still held (it was "
                "silent longer than journal.claim_idle); the ones not started here "
                "are left to it",
                plugin=self.plugin,
                count=len(lost),
                not_started=dropped,
            )

    def _give_back_queued(self) -> None:
        """Lease lost: queued jobs that have not started stay pending in Redis, without
        the attempt counted when they were taken."""
        removed = self._unqueue(None)
        removed += [d.event_id for d in self._waiting]
        self._waiting.clear()
        if removed:
            self._unbegin(removed)

    def _unqueue(self, event_ids: set[str] | None) -> list[str]:
        """Take jobs that have not started out of the lane's queue (all of them, or
        those of *event_ids*), keeping the others in order; the event ids taken out."""
        lane = self.lane
        removed: list[str] = []
        with lane.lock:
            kept = []
            while True:
                try:
                    job = lane.queue.get_nowait()
                except queue.Empty:
                    break
                if event_ids is None or job.event_id in event_ids:
                    lane.known.discard(job.event_id)
                    if hasattr(lane, "queued_bytes"):
                        lane.queued_bytes -= getattr(job, "size", 0)
                    removed.append(job.event_id)
                else:
                    kept.append(job)
            for job in kept:
                lane.queue.put_nowait(job)
        return removed
