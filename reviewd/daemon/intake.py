"""Event intake: from the hub's dispatch hook to the journal to the plugins' lanes.

Why this order: an event is journaled (once per plugin, deduplicated by event id)
*before* any plugin sees it, so a crash at any point leaves it pending in the journal
and it replays on the next start — never lost.  The hook runs on the hub's dispatch
thread and never waits on a plugin: it journals and queues, the lanes' workers run
the handlers.

Three jobs live here:

- :meth:`EventIntake.on_events` — the dispatch hook.  Subscribers that belong to no
  plugin (the hub's own reply subscriber) and ``ftrack.meta.*`` events are delivered
  inline, as the hub would have; everything else becomes journal entries and
  :class:`~reviewd.daemon.router.Job` s.
- :meth:`EventIntake.deliver` — runs one handler on a lane's worker thread and, when
  it fails, discards the changes it left unsaved on that thread.
- :meth:`EventIntake.resolve` — turns a journaled delivery (replay, refill, retry)
  back into a job for the plugin's *current* subscribers.

The intake reads the daemon's parts (:class:`Parts`) at call time rather than keeping
its own references: the plugin host is replaced when a reload changes the plugin
settings, and an event arriving meanwhile must see the host that is there.
"""

from __future__ import annotations

from typing import Any, Protocol

import structlog

from reviewd.api.exception import redact
from reviewd.daemon.metrics import Metrics
from reviewd.daemon.router import Job, Router, clone_event

# These lines have always been the supervisor's; operators filter on the logger name.
log = structlog.get_logger("reviewd.supervisor")


class Parts(Protocol):
    """The daemon's parts the intake uses (the :class:`~reviewd.daemon.supervisor.Daemon`)."""

    metrics: Metrics
    journal: Any
    router: Router | None
    session: Any
    hub: Any

    @property
    def host(self) -> Any: ...


class EventIntake:
    """The dispatch hook, the lanes' delivery function and their journal resolver."""

    def __init__(self, parts: Parts) -> None:
        self.parts = parts
        #: Why the last journal write failed (``/readyz`` says it), None once one works.
        self.journal_error: str | None = None
        #: False once stopping: journaled events then stay pending for the next start.
        self.accepting = True
        #: True once the journal is closed: events are no longer even journaled.
        self.journal_closed = False
        #: False for a shared (Redis) journal: the lanes pull events instead.
        self.dispatch_local = True

    def on_events(self, event: Any, subscribers: list) -> None:
        """The hub's dispatch hook: journal, then queue per plugin (never blocks on plugins)."""
        parts = self.parts
        topic = str(event.get("topic", ""))
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
                log.error("inline handler failed", event_id=event.get("id"), topic=topic,
                          subscriber=subscriber.id, error=redact(str(exc)))
        if not by_plugin or self.journal_closed:
            return
        parts.metrics.received.labels(topic=topic).inc()
        try:
            new = parts.journal.record(event, list(by_plugin))
        except Exception as exc:  # noqa: BLE001 - disk full, locked, corrupt
            self.journal_error = redact(f"journal write failed: {exc}")
            log.error("journal write failed; event not dispatched", event_id=event.get("id"),
                      topic=topic, error=self.journal_error)
            return
        self.journal_error = None
        event_id = str(event["id"])
        for plugin, subs in by_plugin.items():
            labels = {"plugin": plugin, "topic": topic}
            if plugin not in new:
                parts.metrics.deduplicated.labels(**labels).inc()
                log.info("duplicate event ignored", event_id=event_id, plugin=plugin)
                continue
            parts.metrics.journaled.labels(**labels).inc()
            if not self.accepting or not self.dispatch_local:
                # Stopping: it stays pending for the next start.  Shared (Redis) journal:
                # whichever host's lane pulls it first handles it.
                continue
            job = Job(clone_event(event), event_id, topic, plugin, subs)
            assert parts.router is not None, "events are taken in only once the router exists"
            parts.router.submit(job)

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
        from reviewd.api.event import expression
        from reviewd.api.event.base import Event

        try:
            event = Event.from_wire(delivery.payload)
        except ValueError:
            return None
        target = event.get("target") or ""
        target_match = expression.parse(target).match if target else None
        by_id = {s.id: s for s in self.parts.hub.subscribers}
        subscribers = []
        for subscription in self.parts.host.subscriptions:
            if subscription.plugin != plugin:
                continue
            subscriber = by_id.get(subscription.subscriber_id)
            if subscriber is None or not subscriber.interested_in(event):
                continue
            if target_match is not None and not target_match(subscriber.metadata):
                continue
            subscribers.append(subscriber)
        if not subscribers:
            return None
        subscribers.sort(key=lambda s: s.sort_key())
        return Job(event, delivery.event_id, delivery.topic, plugin, subscribers,
                   attempts=delivery.attempts)
