"""The hooks a reviewd plugin may implement.

A plugin is any module or object with functions marked ``@reviewd.hookimpl`` whose
names match the specifications below.  Implement only what you need; every
argument is optional to accept (pluggy passes just the ones your function names).

The set is deliberately small: register what you handle, hear about start and
stop, say whether you are healthy, expose metrics, and catch up after the event
hub was away.  Event handling itself is not a hook — handlers are the callbacks
you declare in :func:`reviewd_register`, so the daemon can queue, time out and
retry each one separately.

Each hook is called once per plugin by reviewd's plugin host, which catches and
reports an exception from one plugin without affecting the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # annotations only: plugins import this module at load time
    import datetime

    from prometheus_client.registry import Collector

    from reviewd.api.session import Session
    from reviewd.plugin.registry import PluginHealth, SubscriptionRegistry

hookspec = pluggy.HookspecMarker("reviewd")


@hookspec
def reviewd_register(
    session: Session, registry: SubscriptionRegistry, arguments: Mapping[str, Any], name: str
) -> None:
    """Declare the subscriptions this plugin handles.

    Called once when the plugin is loaded (and again after a reload), before
    the daemon starts delivering events.

    :param session: the daemon's ``reviewd.Session`` (query, commit, publish).
    :param registry: a :class:`reviewd.plugin.registry.SubscriptionRegistry`; call
        ``registry.subscribe(expression, handler, priority=, concurrency=,
        timeout=, retry=)`` for every subscription.  The handler receives the
        event; a non-None return value is published back as a reply.
    :param arguments: this plugin's arguments, a mapping: the global plugin
        arguments overlaid with the plugin's own section of the configuration.
    :param name: the plugin's stable name (module or entry-point name).

    Raising here fails this plugin's load (reported, or fatal in strict mode);
    nothing it declared is subscribed.
    """


@hookspec
def reviewd_started(session: Session) -> None:
    """The daemon is up and delivering events to this plugin.

    Start background work here (threads, timers, connections), not at import.
    Also called after this plugin is reloaded in a running daemon.
    """


@hookspec
def reviewd_stopping(session: Session) -> None:
    """This plugin is about to stop: the daemon is shutting down, or the plugin
    is being unloaded or reloaded.

    Release what :func:`reviewd_started` acquired.  Events already queued for the
    plugin may still be delivered until its workers drain.
    """


@hookspec
def reviewd_health(
    session: Session,
) -> PluginHealth | bool | Mapping[str, Any] | list[str] | None:
    """Report whether this plugin can do its job.

    Return ``None`` (no opinion), a bool, a
    :class:`reviewd.plugin.registry.PluginHealth`, a mapping ``{"ready": bool,
    "problems": [str, ...]}``, or a list of problem strings (empty = healthy).
    Called often by ``/readyz`` and ``/status``: keep it cheap and non-blocking.
    """


@hookspec
def reviewd_prometheus_collectors(session: Session) -> Iterable[Collector] | None:
    """Return Prometheus collectors (an iterable) for the daemon to expose.

    Create them with ``registry=None`` so they are not registered twice; the
    daemon registers them on its own registry and unregisters them when the
    plugin is unloaded.
    """


@hookspec
def reviewd_hub_gap(
    session: Session, gap_start: datetime.datetime, gap_end: datetime.datetime
) -> None:
    """The event hub was disconnected from *gap_start* to *gap_end*.

    Both are timezone-aware ``datetime`` objects (UTC).  Events the server
    published in between were not delivered to anyone; query the server for
    what changed in that window (e.g. entities modified after *gap_start*) to
    reconcile.  Called once per gap, after the hub is connected again and all
    subscriptions are re-established.
    """
