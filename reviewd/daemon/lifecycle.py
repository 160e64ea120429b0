"""Session lifecycle events for the plugins the daemon loads after its Session exists.

Why this exists: a ``reviewd.Session`` (like ``ftrack_api.Session``) publishes
``ftrack.api.session.configure-location`` and then ``ftrack.api.session.ready``
synchronously while it is being constructed, to the plugins its own discovery just
registered.  The daemon builds its Session first (with ``plugin_paths=[]``) and only
then loads plugins through the plugin host, so a classic plugin that waits for
``ready`` (to register a location, warm a cache, look something up once) would never
hear it.  :func:`publish_session_events` replays the two events the way the Session
does — locally, synchronously, in that order, in the hub's priority order, honouring
``event.stop()``, publishing no replies — to the plugins just loaded: all of them at
start, only the reloaded one after a reload.

``ftrack.api.session.construct-entity-type`` is *not* replayed: the entity types are
built once, inside the Session's constructor, and cannot be reshaped afterwards (see
docs/operations.md, "Session lifecycle events").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import structlog

from reviewd.api.event.base import Event
from reviewd.api.exception import redact

log = structlog.get_logger("reviewd.lifecycle")

#: The events a Session publishes at construction, in the order it publishes them.
SESSION_EVENTS = ("ftrack.api.session.configure-location", "ftrack.api.session.ready")


def publish_session_events(session: Any, host: Any, plugins: Iterable[str] | None = None) -> int:
    """Deliver :data:`SESSION_EVENTS` to the subscribers of *plugins* (default: all).

    Only subscribers the plugin host attributes to one of the wanted plugins are
    called, so the hub's own subscribers and other plugins are left alone.  A handler
    that raises is logged (as the Session does) and the others still run.  Returns the
    number of handler calls made.
    """
    hub = getattr(session, "event_hub", None)
    if hub is None or host is None:
        return 0
    wanted = None if plugins is None else set(plugins)
    calls = 0
    for topic in SESSION_EVENTS:
        event = Event(topic=topic, data={"session": session})
        targets = []
        for subscriber in sorted(hub.subscribers, key=lambda s: s.sort_key()):
            owner = host.owner_of(subscriber.id)
            if owner is None or (wanted is not None and owner.plugin not in wanted):
                continue
            if subscriber.interested_in(event):
                targets.append((owner.plugin, subscriber))
        view_of = getattr(host, "session_view", None)
        for plugin, subscriber in targets:
            calls += 1
            # The session the plugin registered with (its own view of the shared one).
            event["data"]["session"] = view_of(plugin) if view_of is not None else session
            with structlog.contextvars.bound_contextvars(plugin=plugin, event_id=event["id"]):
                try:
                    subscriber.callback(event)
                except Exception as exc:  # noqa: BLE001 - one plugin hurts only itself
                    log.error(
                        "session event handler failed",
                        topic=topic,
                        subscriber=subscriber.id,
                        error=redact(f"{type(exc).__name__}: {exc}"),
                    )
            if event.is_stopped():
                break
    return calls
