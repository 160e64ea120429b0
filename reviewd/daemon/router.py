"""Routing journaled deliveries to plugins: one lane (bounded queue + workers) per plugin.

Why lanes: one bad plugin hurts only itself.  A plugin that raises, is slow or hangs
fills and blocks its own lane; the hub's thread only journals and enqueues, and every
other plugin keeps its own workers.

Guarantees, given the journal (:mod:`reviewd.daemon.journal`):

* A job is only submitted after its delivery was committed to the journal, so a crash
  at any point leaves it ``pending`` and it is replayed on the next start.
* A lane *claims* an event id before the intake journals it and forgets it only after
  the outcome is committed, so a refill from the journal can never hand the same
  (event, plugin) to a worker twice: between journal and lane there is no window.
* An attempt is committed as *running* before the handler is called, so a process that
  dies inside a handler counts that attempt as failed at the next start and the budget
  ends in a dead letter ("the process died while handling it"), not a crash loop.
* Any exception a handler raises, ``SystemExit`` and ``KeyboardInterrupt`` included, is
  a failed attempt; the worker lives on.
* A failed ``ftrack.action.launch`` is not retried (the user clicked once and waits for
  an answer) unless the plugin's ``retry_actions`` is set; the failure is dead-lettered
  and told to the web UI as a reply with ``success: false``.
* A delivery is marked ``done`` only after every handler of the plugin that matched the
  event returned; it is never delivered again afterwards (at-least-once, and at most
  once after completion).
* A failing delivery is retried with growing delays (the subscription's retry policy,
  else the configured one) and dead-lettered after the budget; it is never dropped.
* With concurrency 1 (the default) a plugin sees its events in arrival order: retries
  happen in place, blocking the lane, rather than reordering.
* A full queue (count *or* bytes) does not block the hub: the delivery stays
  ``pending`` in the journal, not in memory, and the lane pulls it back when it has
  room (``refill``).

Timeouts cannot kill a Python thread, so they are observations: past the *soft* timeout
a warning and a metric; past the *hard* timeout the plugin is *stuck* (``/readyz`` says
which handler and for how long) until the handler returns.
"""

from __future__ import annotations

import copy
import dataclasses
import queue
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import structlog

from reviewd.api.exception import redact
from reviewd.daemon.logging import log_handler_exception

log = structlog.get_logger("reviewd.router")


@dataclasses.dataclass(frozen=True)
class LaneSettings:
    """How one plugin's deliveries are run (from config, overlaid by its subscriptions)."""

    queue_size: int = 10000  # the byte bound (queue_bytes) is what protects memory
    queue_bytes: int = 64 * 1024 * 1024  # encoded event bytes queued in memory, at most
    concurrency: int = 1
    soft_timeout: float = 30.0
    hard_timeout: float = 300.0
    max_attempts: int = 5
    retry_backoff: float = 1.0
    retry_backoff_max: float = 60.0
    retry_multiplier: float = 2.0
    retry_actions: bool = False  # retry a failed ftrack.action.launch like any event

    def retry_delay(self, failures: int) -> float:
        """Delay before the next attempt after *failures* failed ones (1 = first retry)."""
        return min(
            self.retry_backoff_max,
            self.retry_backoff * self.retry_multiplier ** max(0, failures - 1),
        )


@dataclasses.dataclass(slots=True)
class Job:
    """One event for one plugin: the subscribers of that plugin it matched, in order."""

    event: Any
    event_id: str
    topic: str
    plugin: str
    subscribers: Sequence[Any]
    attempts: int = 0  # attempts already made (from the journal on replay)
    settings: LaneSettings | None = None  # per-delivery override (subscription options)
    finished: set = dataclasses.field(default_factory=set)  # subscribers done this run
    size: int = 0  # bytes of the encoded event (the lane's memory bound counts them)
    last_error: str | None = None  # the journal's last error (a replayed delivery)


class InFlight:
    """The attempt a worker thread is running (the watcher applies timeouts to it)."""

    __slots__ = ("job", "started", "slow_reported", "stuck_reported")

    def __init__(self, job: Job, started: float) -> None:
        self.job = job
        self.started = started
        self.slow_reported = False
        self.stuck_reported = False


class JobQueue(queue.Queue):
    """A lane's queue: :class:`queue.Queue` (the Redis feed uses its interface) plus the
    two operations of the hot path - queue many jobs with one wake-up, and take one
    without the bookkeeping of ``get`` that nobody here uses (``task_done``, waking
    producers: nothing ever blocks putting into a lane)."""

    def put_many(self, jobs: list[Job]) -> None:
        """Append *jobs* (the caller checked the room) and wake one worker."""
        with self.mutex:
            self.queue.extend(jobs)
            self.not_empty.notify()

    def take(self, timeout: float) -> Job | None:
        """The next job, waiting up to *timeout* seconds; None if none came."""
        with self.not_empty:
            items = self.queue
            if not items:
                self.not_empty.wait(timeout)
                if not items:
                    return None
            job: Job = items.popleft()
            if items:
                # Another worker of this lane may be waiting: jobs remain for it.
                self.not_empty.notify()
            return job


ACTION_LAUNCH = "ftrack.action.launch"
#: Seconds without a new job after which a lane commits its finished outcomes.
IDLE_FLUSH = 0.05

Deliver = Callable[[Any, Any], Any]
Resolver = Callable[[str, Any], "Job | None"]
FailureReporter = Callable[[Job, str], None]


class Lane:
    """A plugin's bounded queue and its worker threads."""

    def __init__(self, router: Router, plugin: str, settings: LaneSettings) -> None:
        self.router = router
        self.plugin = plugin
        self.settings = settings
        self.queue = JobQueue(maxsize=settings.queue_size)
        self.lock = threading.Lock()
        # Event ids claimed by this lane: being journaled by the intake, queued, running,
        # or finished with the outcome not yet committed.  Refill skips them.
        self.known: set[str] = set()
        # The subset the intake claimed and has not queued yet (it may still refuse them).
        self.claiming: set[str] = set()
        self.queued_bytes = 0
        self._flush_error: str | None = None
        self._metric_children: dict[str, tuple] = {}
        # Highest journal sequence this lane read while catching up after an overflow:
        # the next catch-up read starts after it (a full refill starts from the top).
        self._cursor = 0
        self.in_flight: dict[int, InFlight] = {}  # worker thread ident -> attempt
        self.overflowed = False
        self.stopping = threading.Event()
        self.stats = {
            "handled": 0,
            "succeeded": 0,
            "failed": 0,
            "retried": 0,
            "dead_lettered": 0,
            "slow": 0,
        }
        self.last_error: str | None = None
        self.stuck_reason: str | None = None
        self.threads: list[threading.Thread] = []
        for index in range(settings.concurrency):
            thread = threading.Thread(
                target=self._work, name=f"reviewd-{plugin}-{index}", daemon=True
            )
            self.threads.append(thread)
            thread.start()

    # ------------------------------------------------------------------ feeding
    def claim_many(self, event_ids: list[str]) -> set[str]:
        """Reserve a batch of event ids before the intake journals them (one lock): the
        ids this lane reserved; none already held here (queued, running, finishing),
        and none while it overflows (they join the journal's waiting ones, in order)."""
        known = self.known
        claimed: set[str] = set()
        with self.lock:
            if self.overflowed:
                # Events wait in the journal already: these join them, in order (the
                # lane catches up from the journal).
                return claimed
            for event_id in event_ids:
                if event_id not in known:
                    known.add(event_id)
                    claimed.add(event_id)
            self.claiming.update(claimed)
        return claimed

    def release_many(self, event_ids: Iterable[str]) -> None:
        """Give up claims (the journal write failed, or the events were duplicates)."""
        event_ids = list(event_ids)
        with self.lock:
            self.known.difference_update(event_ids)
            self.claiming.difference_update(event_ids)

    def put_claimed_many(self, jobs: list[Job]) -> int:
        """Queue jobs whose ids this lane claimed, in arrival order, with one wake-up;
        how many were queued.  What does not fit (count or bytes, one job always fits an
        empty queue), or comes while older events of this lane wait in the journal
        (order), waits in the journal for a refill, its claim released."""
        with self.lock:
            self.claiming.difference_update(job.event_id for job in jobs)
            taken = 0
            if not self.overflowed:
                maxsize = self.queue.maxsize
                size = self.queue.qsize()
                queued_bytes = self.queued_bytes
                limit = self.settings.queue_bytes
                for job in jobs:
                    if size >= maxsize or (size and queued_bytes + job.size > limit):
                        break
                    size += 1
                    queued_bytes += job.size
                    taken += 1
                self.queued_bytes = queued_bytes
                if taken:
                    self.queue.put_many(jobs[:taken] if taken < len(jobs) else jobs)
            if taken < len(jobs):
                self.overflowed = True
                self.known.difference_update(job.event_id for job in jobs[taken:])
            return taken

    def note_waiting(self) -> None:
        """Deliveries of this lane were journaled unclaimed (it was overflowing when the
        intake claimed the batch): they wait in the journal, so keep catching up from it.
        A refill that ran while the batch was being written could not see them yet and
        may have cleared ``overflowed``; without this the next batch would be queued
        ahead of them, and they would wait for the next start."""
        with self.lock:
            self.overflowed = True

    def submit(self, job: Job) -> bool:
        """Queue *job* unless already known here; False when the queue is full."""
        with self.lock:
            if job.event_id in self.known:
                return True
            if self.overflowed or not self._fits(job.size):
                self.overflowed = True
                return False
            self.queue.put_nowait(job)
            self.queued_bytes += job.size
            self.known.add(job.event_id)
            return True

    def _fits(self, size: int) -> bool:
        """Room for one more job of *size* bytes (one job always fits an empty queue)."""
        if self.queue.qsize() >= self.queue.maxsize:
            return False
        return self.queue.qsize() == 0 or self.queued_bytes + size <= self.settings.queue_bytes

    def refill(self, resolve: Resolver, catch_up: bool = False) -> int:
        """Queue pending deliveries of this plugin from the journal; return how many.

        The journal is read and the claims checked under the lane lock; outcomes drop
        their claim only after their commit, so a delivery read as pending here is
        either claimed (skipped) or really unclaimed.  Reads use the journal's reader
        connection and never wait for a commit."""
        added = 0
        if getattr(self.router.journal, "feeds_lanes", False):
            # The journal feeds this lane itself (Redis: LaneFeed), keeping in order what
            # did not fit; once there is room again the feed may submit.
            with self.lock:
                self.overflowed = False
            return 0
        with self.lock:
            room = self.queue.maxsize - self.queue.qsize()
            if room <= 0 or (self.queue.qsize() and self.queued_bytes >= self.settings.queue_bytes):
                return 0
            if self.router.pull:
                # Shared work: take a small batch so that other hosts get their share.
                room = min(room, 2 * len(self.threads))
            journal = self.router.journal
            # Only a journal with sequence numbers (SQLite) skips held ids and is read
            # with a cursor.
            advance = getattr(journal, "pending_skips", False)
            first_skipped = None
            if advance:
                # At most *room* deliveries are read and decoded; this lane's own ids are
                # passed over.  Catching up reads only what came after the last row this
                # lane went past.
                skipped: list[tuple[int, str]] = []
                pending = journal.pending(
                    self.plugin,
                    limit=room,
                    skip=self.known,
                    after=self._cursor if catch_up else 0,
                    skipped=skipped,
                )
                # A full page means more may wait in the journal: look again later.
                self.overflowed = len(pending) >= room
                # Queued or running ids are this lane's: stepping past them is safe.  One
                # the intake is journaling right now may yet be refused (overflow): read
                # it again next time rather than step past it.
                claiming = self.claiming
                first_skipped = min(
                    (seq for seq, event_id in skipped if event_id in claiming), default=None
                )
            else:
                limit = room + len(self.known)
                pending = journal.pending(self.plugin, limit=limit)
                self.overflowed = len(pending) >= limit
            many = self.router.resolve_many if resolve is self.router.resolver else None
            jobs = many(self.plugin, pending) if many is not None else None
            for index, delivery in enumerate(pending):
                if delivery.event_id in self.known:
                    advance = False
                    continue
                job = jobs[index] if jobs is not None else resolve(self.plugin, delivery)
                if job is not None:
                    if not job.size:
                        job.size = getattr(delivery, "size", 0)
                    if not self._fits(job.size):
                        self.overflowed = True
                        break
                    self.queue.put_nowait(job)
                    self.queued_bytes += job.size
                    self.known.add(job.event_id)
                    added += 1
                # Read and handled (queued, or no longer subscribed): catch-up reads
                # start after it.
                if advance and (first_skipped is None or delivery.seq < first_skipped):
                    self._cursor = max(self._cursor, delivery.seq)
        if added and not self.router.pull:
            self.router.metrics.replayed.labels(plugin=self.plugin).inc(added)
        return added

    # ------------------------------------------------------------------ working
    def _work(self) -> None:
        try:
            self._work_loop()
        finally:
            self._flush_outcomes()  # the last outcomes are durable before the lane ends

    def _work_loop(self) -> None:
        take = self.queue.take
        stopping = self.stopping
        while not stopping.is_set():
            if self.overflowed and self.queue.qsize() <= self.queue.maxsize // 2:
                # Events wait in the journal: pull them in, in order, before the queue
                # runs dry (the intake does not queue past them meanwhile).
                self._refill_safely(catch_up=True)
            # Outcomes ride along with other commits (the intake's batches) while
            # events keep coming; after a quiet moment the lane commits its own.
            job = take(IDLE_FLUSH)
            if job is None:
                self._flush_outcomes()
                if self.router.pull:
                    self._refill_safely()
                job = take(0.2)
                if job is None:
                    continue
            with self.lock:
                self.queued_bytes -= job.size
            if self.stopping.is_set():
                # Not started: it stays pending in the journal and replays on next start.
                self._forget(job)
                return
            try:
                self._run(job)
            except BaseException as exc:  # noqa: BLE001 - journal write failed: keep the worker
                log.error(
                    "recording a delivery's outcome failed; it stays pending",
                    event_id=job.event_id,
                    plugin=self.plugin,
                    error=redact(str(exc)),
                )
                self.in_flight.pop(threading.get_ident(), None)
                self._forget(job)
                self.stopping.wait(1.0)

    def _forget(self, job: Job) -> None:
        with self.lock:
            self.known.discard(job.event_id)

    def _refill_safely(self, catch_up: bool = False) -> None:
        if self.router.resolver is None or self.stopping.is_set():
            return
        try:
            self.refill(self.router.resolver, catch_up)
        except Exception as exc:  # noqa: BLE001 - journal unreachable: wait
            log.error("reading the journal failed", plugin=self.plugin, error=redact(str(exc)))
            self.stopping.wait(1.0)

    def _flush_outcomes(self) -> None:
        """Commit the outcomes this lane queued without waiting (idle: nothing to batch
        them with)."""
        flush = getattr(self.router.journal, "flush", None)
        if flush is None:
            return
        try:
            flush()
            self._flush_error = None
        except Exception as exc:  # noqa: BLE001 - retried with the next write
            text = redact(str(exc))
            if text != self._flush_error:  # once per kind of failure, not every 0.2 s
                log.error(
                    "committing delivery outcomes failed; will retry",
                    plugin=self.plugin,
                    error=text,
                )
            self._flush_error = text

    def _run(self, job: Job) -> None:
        settings = job.settings or self.settings
        labels = {"plugin": self.plugin, "topic": job.topic}
        metrics = self.router.metrics
        ident = threading.get_ident()
        journal = self.router.journal
        begin = getattr(journal, "begin_attempt", None)
        if job.attempts >= settings.max_attempts:
            # The budget was spent by attempts whose process died inside the handler.
            self._dead(job, job.last_error or "retry budget spent", labels, count_attempt=False)
            return
        children = self._children(job.topic)
        while True:
            if begin is not None:
                begin(job.event_id, self.plugin, job.attempts + 1)  # before the handler runs
            started = time.perf_counter()
            self.in_flight[ident] = InFlight(job, time.monotonic())
            children[0].inc()
            error = self._attempt(job)
            children[1].observe(time.perf_counter() - started)
            self._clear_in_flight(ident)
            job.attempts += 1
            if error is None:
                self._finish(job, "done")
                self.stats["succeeded"] += 1
                children[2].inc()
                return
            self.stats["failed"] += 1
            self.last_error = error.splitlines()[-1] if error else "error"
            metrics.failed.labels(**labels).inc()
            no_retry = job.topic == ACTION_LAUNCH and not settings.retry_actions
            if no_retry or job.attempts >= settings.max_attempts:
                self._dead(job, error, labels)
                return
            journal.mark_failed(job.event_id, self.plugin, error)
            self.stats["retried"] += 1
            metrics.retried.labels(**labels).inc()
            delay = settings.retry_delay(job.attempts)
            log.warning(
                "handler failed, will retry",
                event_id=job.event_id,
                plugin=self.plugin,
                topic=job.topic,
                attempt=job.attempts,
                max_attempts=settings.max_attempts,
                retry_in=round(delay, 3),
                error=self.last_error,
            )
            if self.stopping.wait(delay):
                self._forget(job)  # stays pending in the journal
                return

    def _children(self, topic: str) -> tuple:
        """The (dispatched, duration, succeeded) metric children of *topic*, looked up
        once per topic (``labels()`` is a measurable cost per event)."""
        children = self._metric_children.get(topic)
        if children is None:
            metrics = self.router.metrics
            labels = {"plugin": self.plugin, "topic": topic}
            children = (
                metrics.dispatched.labels(**labels),
                metrics.handler_duration.labels(**labels),
                metrics.succeeded.labels(**labels),
            )
            if len(self._metric_children) < 1000:
                self._metric_children[topic] = children
        return children

    def _dead(
        self, job: Job, error: str, labels: dict[str, str], count_attempt: bool = True
    ) -> None:
        self._finish(job, "dead", error, count_attempt)
        self.stats["dead_lettered"] += 1
        self.router.metrics.dead_lettered.labels(**labels).inc()
        last = error.strip().splitlines()[-1] if error.strip() else "error"
        self.last_error = last
        log.error(
            "delivery dead-lettered",
            event_id=job.event_id,
            plugin=self.plugin,
            topic=job.topic,
            attempts=job.attempts,
            error=last,
        )
        report = self.router.report_failure
        if report is not None:
            try:
                report(job, last)
            except Exception as exc:  # noqa: BLE001 - the dead letter is what matters
                log.warning(
                    "reporting a failed delivery failed",
                    event_id=job.event_id,
                    plugin=self.plugin,
                    error=redact(str(exc)),
                )

    def _attempt(self, job: Job) -> str | None:
        """Run the plugin's handlers not yet finished for *job*; the error text or None."""
        event = job.event
        deliver = self.router.deliver
        finished = job.finished
        # Log lines of the handlers name the event and the plugin (the plain functions:
        # the context manager costs three times as much, per event).
        tokens = structlog.contextvars.bind_contextvars(event_id=job.event_id, plugin=self.plugin)
        try:
            for subscriber in job.subscribers:
                key = id(subscriber)
                if key in finished:
                    continue
                try:
                    deliver(event, subscriber)
                except BaseException as exc:  # noqa: BLE001 - SystemExit too: a failed attempt
                    # is data here; sys.exit() in a handler must not end the worker thread
                    # (the lane would be stuck for ever).
                    text = redact("".join(traceback.format_exception(exc)).strip())
                    log_handler_exception(log, exc, topic=job.topic, attempt=job.attempts + 1)
                    log.debug("handler raised", traceback=text)
                    return text
                finished.add(key)
                stopped = getattr(event, "is_stopped", None)
                if stopped is not None and stopped():
                    break
        finally:
            structlog.contextvars.reset_contextvars(**tokens)
        return None

    def _finish(
        self, job: Job, state: str, error: str | None = None, count_attempt: bool = True
    ) -> None:
        """Record the outcome; the lane forgets the id only once it is committed (the
        write joins the next shared commit, no lock held meanwhile)."""
        journal = self.router.journal

        def forget(_result: Any = None) -> None:
            self._forget(job)

        if getattr(journal, "deferred_outcomes", False):
            if state == "done":
                journal.mark_done(job.event_id, self.plugin, then=forget)
            else:  # rare: committed before the lane counts it (status == journal)
                journal.mark_dead(
                    job.event_id, self.plugin, error or "", count_attempt=count_attempt
                )
                forget()
        else:  # a journal that commits each outcome at once (the Redis journal)
            if state == "done":
                journal.mark_done(job.event_id, self.plugin)
            else:
                journal.mark_dead(job.event_id, self.plugin, error or "")
            forget()
        self.stats["handled"] += 1

    def _clear_in_flight(self, ident: int) -> None:
        flight = self.in_flight.pop(ident, None)
        if self.stuck_reason is None and (flight is None or not flight.stuck_reported):
            return  # the common case: nothing was reported stuck
        if flight is not None and flight.stuck_reported:
            elapsed = time.monotonic() - flight.started
            log.warning(
                "stuck handler returned",
                event_id=flight.job.event_id,
                plugin=self.plugin,
                seconds=round(elapsed, 3),
            )
        if not any(f.stuck_reported for f in list(self.in_flight.values())):
            self.stuck_reason = None

    # ------------------------------------------------------------------ watching
    def check_timeouts(self, now: float) -> None:
        for flight in list(self.in_flight.values()):
            settings = flight.job.settings or self.settings
            elapsed = now - flight.started
            if (
                settings.soft_timeout
                and elapsed > settings.soft_timeout
                and not flight.slow_reported
            ):
                flight.slow_reported = True
                self.stats["slow"] += 1
                self.router.metrics.slow.labels(plugin=self.plugin).inc()
                log.warning(
                    "handler slow",
                    event_id=flight.job.event_id,
                    plugin=self.plugin,
                    topic=flight.job.topic,
                    seconds=round(elapsed, 3),
                    soft_timeout=settings.soft_timeout,
                )
            if settings.hard_timeout and elapsed > settings.hard_timeout:
                self.stuck_reason = (
                    f"handler for event {flight.job.event_id} ({flight.job.topic}) running "
                    f"{elapsed:.1f}s, past the hard timeout of {settings.hard_timeout:g}s"
                )
                if not flight.stuck_reported:
                    flight.stuck_reported = True
                    self.router.metrics.stuck_total.labels(plugin=self.plugin).inc()
                    log.error(
                        "plugin stuck",
                        event_id=flight.job.event_id,
                        plugin=self.plugin,
                        topic=flight.job.topic,
                        seconds=round(elapsed, 3),
                        hard_timeout=settings.hard_timeout,
                    )

    def snapshot(self) -> dict[str, Any]:
        return {
            "queue_depth": self.queue.qsize(),
            "queued_bytes": self.queued_bytes,
            "in_flight": len(self.in_flight),
            "workers": len(self.threads),
            "stuck": self.stuck_reason,
            "last_error": self.last_error,
            **self.stats,
        }


class Router:
    """All lanes, plus the watcher thread that applies soft and hard timeouts."""

    def __init__(
        self,
        journal: Any,
        deliver: Deliver,
        metrics: Any,
        resolver: Resolver | None = None,
        check_interval: float = 0.1,
        report_failure: FailureReporter | None = None,
    ) -> None:
        self.journal = journal
        #: Told about every dead-lettered delivery (the intake replies to failed actions).
        self.report_failure = report_failure
        self.deliver = deliver
        self.metrics = metrics
        self.resolver = resolver
        #: The resolver's page-at-a-time form, when it has one (``EventIntake``).
        self.resolve_many: Callable[[str, list[Any]], list[Job | None]] | None = getattr(
            getattr(resolver, "__self__", None), "resolve_many", None
        )
        # A shared journal (Redis) hands out work: idle lanes pull instead of waiting.
        self.pull = not getattr(journal, "dispatch_local", True)
        #: The journal supplies each lane from a thread of its own (Redis Streams).
        self.fed = getattr(journal, "feeds_lanes", False)
        if self.fed:
            self.pull = False
        self.lanes: dict[str, Lane] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._watcher = threading.Thread(
            target=self._watch, args=(check_interval,), name="reviewd-router-watch", daemon=True
        )
        self._watcher.start()

    def lane(self, plugin: str, settings: LaneSettings | None = None) -> Lane:
        """The lane of *plugin*, created with *settings* on first use."""
        with self._lock:
            lane = self.lanes.get(plugin)
            if lane is None:
                lane = self.lanes[plugin] = Lane(self, plugin, settings or LaneSettings())
                if self.fed and self.resolver is not None:
                    self.journal.feed(lane, self.resolver)
            return lane

    def submit(self, job: Job) -> bool:
        """Queue *job* on its plugin's lane; False leaves it pending in the journal.

        A plugin without a lane (being reloaded) gets it later through :meth:`refill`.
        """
        lane = self.lanes.get(job.plugin)
        if lane is None or lane.stopping.is_set():
            return False
        accepted = lane.submit(job)
        if not accepted:
            self.metrics.overflow.labels(plugin=job.plugin).inc()
        return accepted

    def refill(self, plugins: Iterable[str] | None = None) -> int:
        """Feed pending journal deliveries to lanes (replay, overflow, operator retry)."""
        if self.resolver is None:
            return 0
        total = 0
        for name in list(plugins if plugins is not None else self.lanes):
            lane = self.lanes.get(name)
            if lane is not None and not lane.stopping.is_set():
                total += lane.refill(self.resolver)
        return total

    def keepalive(self) -> None:
        """Tell a shared journal this host still holds its queued and running deliveries."""
        touch = getattr(self.journal, "touch", None)
        if touch is None:
            return
        for name, lane in list(self.lanes.items()):
            with lane.lock:
                known = list(lane.known)
            if known:
                touch(name, known)

    def stuck(self) -> dict[str, str]:
        return {name: lane.stuck_reason for name, lane in self.lanes.items() if lane.stuck_reason}

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {name: lane.snapshot() for name, lane in list(self.lanes.items())}

    def remove_lane(
        self, plugin: str, grace: float, tick: Callable[[], None] | None = None
    ) -> bool:
        """Stop a plugin's lane (unload/reload); queued jobs stay pending in the journal."""
        with self._lock:
            lane = self.lanes.pop(plugin, None)
        if lane is None:
            return True
        return _stop_lanes([lane], grace, tick)

    def stop(self, grace: float, tick: Callable[[], None] | None = None) -> bool:
        """Take no more jobs; wait up to *grace* seconds for in-flight ones; True if all ended."""
        with self._lock:
            lanes = list(self.lanes.values())
        finished = _stop_lanes(lanes, grace, tick)
        self._closed.set()
        return finished

    def _watch(self, interval: float) -> None:
        while not self._closed.wait(interval):
            now = time.monotonic()
            for lane in list(self.lanes.values()):
                lane.check_timeouts(now)


def _stop_lanes(lanes: list[Lane], grace: float, tick: Callable[[], None] | None = None) -> bool:
    """Stop *lanes* and wait up to *grace* seconds, calling *tick* about once a second
    (the supervisor keeps systemd's watchdog fed while it waits)."""
    for lane in lanes:
        lane.stopping.set()
    deadline = time.monotonic() + grace
    threads = [t for lane in lanes for t in lane.threads]
    while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
        for thread in threads:
            if thread.is_alive():
                thread.join(max(0.0, min(1.0, deadline - time.monotonic())))
                break
        if tick is not None:
            tick()
    return not any(t.is_alive() for t in threads)


def clone_event(event: Any) -> Any:
    """A private copy per plugin, so ``event.stop()`` in one plugin cannot affect another."""
    try:
        return copy.deepcopy(event)
    except Exception:  # noqa: BLE001 - an uncopyable payload: share it rather than lose it
        return event
