"""Event intake: from the hub's dispatch hook to the journal to the plugins' lanes.

Why this order: an event is journaled (once per plugin, deduplicated by event id)
*before* any plugin sees it, so a crash at any point leaves it pending in the journal
and it replays on the next start — never lost.  The hook runs on the hub's dispatch
thread and never waits on a plugin nor on the disk: it encodes the event and appends
it to the bounded :class:`~reviewd.daemon.spool.Spool`.  The intake's writer thread
journals the spool's head in batches (one transaction each: group commit), and only
then hands the new deliveries to the lanes.  When the journal cannot be written (disk
full, file deleted) the events stay in the spool, ``/readyz`` says why, and the writer
retries until the spool drains; only an event that no longer fits in the spool is
refused, counted and logged.

Three jobs live here:

- :meth:`EventIntake.on_events` — the dispatch hook (and the writer thread behind it).  Subscribers that belong to no
  plugin (the hub's own reply subscriber) and ``ftrack.meta.*`` events are delivered
  inline, as the hub would have; everything else becomes journal entries and
  :class:`~reviewd.daemon.router.Job` s.
- :meth:`EventIntake.deliver` — runs one handler on a lane's worker thread and, when
  it fails, discards the changes it left unsaved on that thread.
- :meth:`EventIntake.resolve` — turns a journaled delivery (replay, refill, retry)
  back into a job for the plugin's *current* subscribers.
- :meth:`EventIntake.report_failure` — tells the web UI that an action failed (a reply
  with ``success: false``), since a failed action is not retried.

The intake reads the daemon's parts (:class:`Parts`) at call time rather than keeping
its own references: the plugin host is replaced when a reload changes the plugin
settings, and an event arriving meanwhile must see the host that is there.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol

import structlog

from reviewd.api.exception import redact
from reviewd.daemon import process_tuning
from reviewd.daemon.journal.sqlite import (
    Entry,
    describe_write_error,
    encode_event,
    storable_text,
)
from reviewd.daemon.metrics import Metrics
from reviewd.daemon.router import ACTION_LAUNCH, Job, Router, clone_event
from reviewd.daemon.spool import DEFAULT_MAX_BYTES, Spool

# These lines have always been the supervisor's; operators filter on the logger name.
log = structlog.get_logger("reviewd.supervisor")

#: Most events journaled in one transaction.
BATCH = 512
#: Received events the hub holds for the dispatch hook (see :meth:`EventIntake.attach`).
HUB_BACKLOG = 2048
#: How often the writer looks at the journal file (deleted, replaced, emptied).
CHECK_FILE_EVERY = 1.0
#: How often finished events are compacted, and free pages handed back.
COMPACT_EVERY = 2.0
RECLAIM_EVERY = 5.0
#: Compaction steps (events per transaction) while events arrive and once it is quiet
#: (no batch for QUIET_AFTER seconds): see ``SqliteJournal.compact``.
COMPACT_BUSY, COMPACT_QUIET, QUIET_AFTER = 1000, 4000, 1.0
#: Waits between failed journal writes (growing to the cap).
RETRY_FIRST, RETRY_MAX = 0.2, 5.0


class Parts(Protocol):
    """The daemon's parts the intake uses (the :class:`~reviewd.daemon.supervisor.Daemon`)."""

    metrics: Metrics
    journal: Any
    router: Router | None
    session: Any
    hub: Any

    @property
    def host(self) -> Any: ...


class Received:
    """One event waiting in the spool: the event, its encoding, its plugins' subscribers."""

    __slots__ = ("event", "event_id", "topic", "payload", "by_plugin")

    def __init__(
        self, event: Any, event_id: str, topic: str, payload: str, by_plugin: dict[str, list]
    ) -> None:
        self.event = event
        self.event_id = event_id
        self.topic = topic
        self.payload = payload
        self.by_plugin = by_plugin


class MetricChildren:
    """A labelled metric's children, looked up once per label values: ``labels()`` costs
    more than the increment itself, and the hot path increments per event.  Bounded, so
    that a stream of new topics cannot grow it for ever (past the bound: plain lookups)."""

    __slots__ = ("_metric", "_children")
    LIMIT = 1000

    def __init__(self, metric: Any) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], Any] = {}

    def get(self, *values: str) -> Any:
        child = self._children.get(values)
        if child is None:
            child = self._metric.labels(*values)
            if len(self._children) < self.LIMIT:
                self._children[values] = child
        return child


class EventIntake:
    """The dispatch hook, the journal writer, the lanes' delivery function and their
    journal resolver."""

    def __init__(self, parts: Parts, spool_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.parts = parts
        #: Why journal writes fail now (``/readyz`` says it), None while they work.
        self.journal_error: str | None = None
        #: False once stopping: journaled events then stay pending for the next start.
        self.accepting = True
        #: True once the journal is closed: events are no longer even journaled.
        self.journal_closed = False
        #: False for a shared (Redis) journal: the lanes pull events instead.
        self.dispatch_local = True
        self.spool: Spool[Received] = Spool(spool_bytes)
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._since_trim = 0  # events journaled since memory was last given back
        self._last_batch = 0.0  # when the writer last journaled a batch (monotonic)
        self._counters: dict[str, MetricChildren] = {}
        self._counters_of: Any = None

    def _counter(self, name: str) -> MetricChildren:
        """The cached children of ``metrics.<name>`` (the daemon's current metrics)."""
        metrics = self.parts.metrics
        if self._counters_of is not metrics:
            self._counters, self._counters_of = {}, metrics
        children = self._counters.get(name)
        if children is None:
            children = self._counters[name] = MetricChildren(getattr(metrics, name))
        return children

    # ------------------------------------------------------------------ the hub's side
    def attach(self, hub: Any) -> None:
        """Receive *hub*'s events (its dispatch hook), and keep its own backlog of
        decoded events small: a burst then waits in the socket, not in memory (the
        spool paces the hub while the journal is being written)."""
        hub.set_dispatch_hook(self.on_events)
        bound = getattr(hub, "set_incoming_queue_size", None)
        if bound is not None:
            bound(HUB_BACKLOG)

    def on_events(self, event: Any, subscribers: list) -> None:
        """The hub's dispatch hook: spool for the writer (never blocks on plugins or disk)."""
        parts = self.parts
        topic = storable_text(str(event.get("topic", "")))
        by_plugin: dict[str, list] = {}
        inline = []
        host = parts.host
        for subscriber in subscribers:
            owner = host.owner_of(subscriber.id) if host is not None else None
            if owner is None or topic.startswith("ftrack.meta."):
                inline.append(subscriber)
            else:
                by_plugin.setdefault(owner.plugin, []).append(subscriber)
        for subscriber in inline:
            try:
                parts.hub.deliver(event, subscriber)
            except Exception as exc:  # noqa: BLE001
                log.error(
                    "inline handler failed",
                    event_id=event.get("id"),
                    topic=topic,
                    subscriber=subscriber.id,
                    error=redact(str(exc)),
                )
        if not by_plugin or self.journal_closed:
            return
        self._counter("received").get(topic).inc()
        # The text the server sent (no second encoding); an event built locally, or sent
        # in a form not kept, is encoded here.
        payload = getattr(event, "wire_text", None) or encode_event(event)
        item = Received(event, storable_text(str(event["id"])), topic, payload, by_plugin)
        self._ensure_writer()
        # Paced while the journal is written (a burst waits in the socket, not in
        # memory); never while writes fail (the spool keeps the hub reading then).
        if not self.spool.put(item, len(payload), pace=self.journal_error is None):
            log.error(
                "event refused: the journal cannot be written and the intake spool is full",
                event_id=item.event_id,
                topic=topic,
                spool_bytes=self.spool.bytes,
                refused=self.spool.refused,
                reason=self.journal_error,
            )

    # ------------------------------------------------------------------ the writer
    def _ensure_writer(self) -> None:
        if self._writer is not None:
            return
        with self._writer_lock:
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._write_loop, daemon=True, name="reviewd-intake-writer"
                )
                self._writer.start()

    def start(self) -> None:
        """Start the writer now (it also starts with the first event)."""
        self._ensure_writer()

    def drain(self, timeout: float) -> bool:
        """Wait up to *timeout* seconds for the spool to be journaled; True if it was."""
        deadline = time.monotonic() + timeout
        while len(self.spool) and time.monotonic() < deadline:
            self._idle.wait(0.05)
        return not len(self.spool)

    def close(self, timeout: float = 5.0) -> None:
        """Journal what the spool holds (up to *timeout*), then stop the writer."""
        if self._writer is None:
            return
        drained = self.drain(timeout)
        self._stop.set()
        self.spool.wake()
        self._writer.join(timeout)
        if not drained:
            log.error(
                "events still in the intake spool at stop were not journaled",
                count=len(self.spool),
                reason=self.journal_error,
            )

    def _write_loop(self) -> None:
        delay = RETRY_FIRST
        next_check = next_compact = time.monotonic()
        next_reclaim = time.monotonic() + RECLAIM_EVERY
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_check:
                self._check_file()
                next_check = now + CHECK_FILE_EVERY
            more = bool(getattr(self.parts.journal, "compact_more", False)) or now >= next_reclaim
            items = self.spool.peek(BATCH, timeout=0 if more else 0.2)
            if not items:
                self._idle.set()
                if not more and process_tuning.give_back_memory(self._since_trim):
                    self._since_trim = 0
                if now >= next_compact or more:
                    # Small steps while events arrive (they wait for the step's
                    # transaction); large ones, cheaper per event, once it is quiet.
                    quiet = now - self._last_batch >= QUIET_AFTER
                    self._housekeep("compact", limit=COMPACT_QUIET if quiet else COMPACT_BUSY)
                    next_compact = now + COMPACT_EVERY
                if now >= next_reclaim:
                    # Again at once while free pages remain (after a big compaction).
                    more_free = self._housekeep("reclaim")
                    next_reclaim = now + (0 if more_free else RECLAIM_EVERY)
                continue
            self._idle.clear()
            self._last_batch = now
            self._since_trim += len(items)
            if self._journal_batch(items):
                delay = RETRY_FIRST
            else:
                self._stop.wait(delay)
                delay = min(RETRY_MAX, delay * 2)

    def _check_file(self) -> None:
        check = getattr(self.parts.journal, "check_file", None)
        if check is None:
            return
        try:
            reason = check()
        except Exception:  # noqa: BLE001 - a stat that fails says nothing
            return
        if reason and reason != self.journal_error:
            self.journal_error = reason
            log.error("journal file lost", reason=reason)

    def _housekeep(self, name: str, **options: Any) -> Any:
        """Run a journal upkeep task; its result (None when absent or failed)."""
        task = getattr(self.parts.journal, name, None)
        if task is None or self.journal_closed:
            return None
        try:
            return task(**options)
        except Exception as exc:  # noqa: BLE001 - tried again later
            log.warning(f"journal {name} failed", error=redact(str(exc)))
            return None

    def _journal_batch(self, items: list[Received]) -> bool:
        """Journal *items* in one transaction and hand the new deliveries to the lanes;
        False (items kept in the spool) when the journal cannot be written."""
        parts = self.parts
        router = parts.router
        local = self.dispatch_local and self.accepting and router is not None
        # Each lane claims its events before the write (one lock per lane and batch), so
        # a refill reading the journal meanwhile skips them: no window for a second call.
        claims: dict[str, tuple[Any, set[str]]] = {}
        if local and router is not None:
            wanted: dict[str, list[str]] = {}
            for item in items:
                for plugin in item.by_plugin:
                    wanted.setdefault(plugin, []).append(item.event_id)
            for plugin, ids in wanted.items():
                lane = router.lanes.get(plugin)
                if lane is not None and not lane.stopping.is_set():
                    claims[plugin] = (lane, lane.claim_many(ids))
        try:
            results = self._record(items)
        except Exception as exc:  # noqa: BLE001 - disk full, deleted, locked, corrupt
            for lane, claimed in claims.values():
                lane.release_many(claimed)
            self._write_failed(exc, len(items))
            return False
        self.spool.drop(len(items))
        if self.journal_error is not None and not getattr(parts.journal, "broken", None):
            log.info(
                "journal writable again; spooled events journaled",
                was=self.journal_error,
                spooled=len(self.spool),
            )
            self.journal_error = None
        self._hand_over(items, results, claims)
        return True

    def _record(self, items: list[Received]) -> list[list[str]]:
        journal = self.parts.journal
        batch = getattr(journal, "record_batch", None)
        if batch is not None:
            return batch([Entry(i.event_id, i.topic, i.payload, list(i.by_plugin)) for i in items])
        return [journal.record(i.event, list(i.by_plugin)) for i in items]  # Redis

    def _write_failed(self, exc: BaseException, count: int) -> None:
        path = getattr(self.parts.journal, "path", "") or "the journal"
        reason = redact(describe_write_error(exc, path))
        if reason != self.journal_error:
            log.error(
                "journal write failed; events kept in memory until it works again",
                reason=reason,
                spooled=len(self.spool),
                spool_bytes=self.spool.bytes,
            )
        self.journal_error = reason

    def _hand_over(
        self,
        items: list[Received],
        results: list[list[str]],
        claims: dict[str, tuple[Any, set[str]]],
    ) -> None:
        """Queue each new delivery on its plugin's lane (one hand-off per lane and
        batch); count journaled and duplicate deliveries once per batch."""
        journaled: dict[tuple[str, str], int] = {}
        duplicates: dict[tuple[str, str], int] = {}
        jobs: dict[str, list[Job]] = {}
        released: dict[str, list[str]] = {}
        waiting: set[str] = set()  # lanes with new deliveries left in the journal
        for item, new in zip(items, results, strict=True):
            first = True
            for plugin, subs in item.by_plugin.items():
                key = (plugin, item.topic)
                claim = claims.get(plugin)
                claimed = False
                if claim is not None and item.event_id in claim[1]:
                    # One claim per id: a second copy of the event in this batch finds
                    # it taken (and must neither queue nor release it).
                    claim[1].discard(item.event_id)
                    claimed = True
                if plugin not in new:
                    duplicates[key] = duplicates.get(key, 0) + 1
                    # On a shared (Redis) journal every replica receives every event and
                    # all but one find it journaled already: the normal case, not news.
                    (log.info if self.dispatch_local else log.debug)(
                        "duplicate event ignored", event_id=item.event_id, plugin=plugin
                    )
                    if claimed:
                        released.setdefault(plugin, []).append(item.event_id)
                    continue
                journaled[key] = journaled.get(key, 0) + 1
                if not claimed:
                    # Stopping, a lane being reloaded or overflowing, another copy of the
                    # event in this batch, or a shared (Redis) journal: it stays pending;
                    # a refill (or whichever host pulls it first) takes it.
                    waiting.add(plugin)
                    continue
                event = item.event if first else clone_event(item.event)
                first = False
                job = Job(event, item.event_id, item.topic, plugin, subs, size=len(item.payload))
                jobs.setdefault(plugin, []).append(job)
        for plugin, ids in released.items():
            claims[plugin][0].release_many(ids)
        for plugin in waiting:
            claim = claims.get(plugin)
            if claim is not None:
                claim[0].note_waiting()
        for plugin, lane_jobs in jobs.items():
            taken = claims[plugin][0].put_claimed_many(lane_jobs)
            if taken < len(lane_jobs):
                self._counter("overflow").get(plugin).inc()
        for (plugin, topic), count in journaled.items():
            self._counter("journaled").get(plugin, topic).inc(count)
        for (plugin, topic), count in duplicates.items():
            self._counter("deduplicated").get(plugin, topic).inc(count)

    # ------------------------------------------------------------------ the lanes' side
    def deliver(self, event: Any, subscriber: Any) -> Any:
        """Run one handler on this lane's worker thread.

        The Session's unit of work is per thread, so a handler that fails half-way leaves
        its recorded operations and local values on this worker's thread; the next
        handler's ``commit()`` would send them, and until then every other plugin reads
        the half-made values.  Rolling this thread back keeps a failure to its plugin.
        """
        try:
            return self.parts.hub.deliver(event, subscriber)
        except BaseException:
            self._discard_unsaved_work()
            raise

    def report_failure(self, job: Job, message: str) -> None:
        """A dead-lettered action: answer the web UI, which waits for a reply."""
        if job.topic != ACTION_LAUNCH:
            return
        hub = self.parts.hub
        if hub is None:
            return
        hub.publish_reply(
            job.event, {"success": False, "message": f"{job.plugin} failed: {message}"[:500]}
        )

    def _discard_unsaved_work(self) -> None:
        session = self.parts.session
        if session is None or session.closed or not session.recorded_operations:
            return
        try:
            session.rollback()
        except Exception as exc:  # noqa: BLE001 - the handler's own error is what matters
            log.warning("rolling back a failed handler's changes failed", error=redact(str(exc)))

    def resolve(self, plugin: str, delivery: Any) -> Job | None:
        """A journaled delivery back into a job: the plugin's current matching subscribers."""
        return self.resolve_many(plugin, [delivery])[0]

    def resolve_many(self, plugin: str, deliveries: list[Any]) -> list[Job | None]:
        """:meth:`resolve` for a page of deliveries of one plugin (a lane catching up
        from the journal): the plugin's subscribers are looked up once, not per event."""
        from reviewd.api.event import expression
        from reviewd.api.event.base import Event

        by_id = {s.id: s for s in self.parts.hub.subscribers}
        candidates = [
            by_id[subscription.subscriber_id]
            for subscription in self.parts.host.subscriptions
            if subscription.plugin == plugin and subscription.subscriber_id in by_id
        ]
        candidates.sort(key=lambda s: s.sort_key())
        jobs: list[Job | None] = []
        for delivery in deliveries:
            try:
                event = Event.from_wire(delivery.payload)
            except ValueError:
                jobs.append(None)
                continue
            target = event.get("target") or ""
            target_match = expression.parse(target).match if target else None
            subscribers = [
                subscriber
                for subscriber in candidates
                if subscriber.interested_in(event)
                and (target_match is None or target_match(subscriber.metadata))
            ]
            if not subscribers:
                jobs.append(None)
                continue
            jobs.append(
                Job(
                    event,
                    delivery.event_id,
                    delivery.topic,
                    plugin,
                    subscribers,
                    attempts=delivery.attempts,
                    size=getattr(delivery, "size", 0),
                    last_error=delivery.last_error,
                )
            )
        return jobs
