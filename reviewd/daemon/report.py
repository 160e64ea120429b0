"""What the daemon says about itself: ``/healthz``, ``/readyz``, ``/status`` and the
values Prometheus reads at scrape time.

Why apart from the supervisor: these are read-only views, built on the HTTP
listener's threads from the daemon's parts as they are at that moment; keeping them
here leaves the supervisor with the steps that *change* state.  Every view copes with
parts that do not exist yet (start-up) or no longer answer (stopping): a probe must
always answer, and say why rather than fail.

- :func:`health` — alive: the main loop is turning and the listener runs.
- :func:`readiness` — ready, or the reasons why not (each one line for ``/readyz``).
- :func:`status` — everything an operator asks first (``reviewd status`` prints it).
- :func:`metrics_snapshot` — gauges computed at scrape time.
"""

from __future__ import annotations

import os
import time
from typing import Any, Protocol

from reviewd import __version__
from reviewd.api.exception import redact
from reviewd.daemon import cluster
from reviewd.daemon.config import Config
from reviewd.daemon.http import HttpServer
from reviewd.daemon.hub_link import HubLink
from reviewd.daemon.intake import EventIntake
from reviewd.daemon.router import Router


class Parts(Protocol):
    """The daemon's parts the reports read (the :class:`~reviewd.daemon.supervisor.Daemon`)."""

    config: Config
    state: str
    ready: bool
    started_at: float
    heartbeat: float
    last_error: str | None
    http: HttpServer | None
    journal: Any
    router: Router | None
    session: Any
    hub: Any
    devserver: Any
    hub_link: HubLink
    intake: EventIntake

    @property
    def host(self) -> Any: ...


def health(daemon: Parts, tick: float) -> tuple[bool, dict[str, Any]]:
    """``/healthz``: the main loop (one turn every *tick* seconds) turned within the last
    ``max(10 s, 20 turns)`` and the HTTP listener is alive."""
    age = time.monotonic() - daemon.heartbeat
    problems = []
    if age > max(10.0, 20 * tick) and daemon.state == "running":
        problems.append(f"main loop has not turned for {age:.1f}s")
    if daemon.http is not None and not daemon.http.alive:
        problems.append("http listener stopped")
    return not problems, {"alive": not problems, "problems": problems, "state": daemon.state}


def readiness(daemon: Parts) -> tuple[bool, dict[str, Any]]:
    """``/readyz``: started, session up, hub connected, journal writable, no plugin stuck
    or reporting itself not ready — else every reason that applies."""
    reasons = []
    if not daemon.ready:
        reasons.append(f"not ready: {daemon.state}")
        if daemon.last_error:
            reasons.append(f"last error: {daemon.last_error}")
    if daemon.session is None:
        reasons.append("no session with the server yet")
    if daemon.hub is not None and not daemon.hub.connected:
        since = daemon.hub_link.disconnected_at
        text = "event hub not connected"
        if since:
            text += f" (for {time.time() - since:.1f}s)"
        reasons.append(text)
    if daemon.router is not None:
        for plugin, reason in sorted(daemon.router.stuck().items()):
            reasons.append(f"plugin {plugin} stuck: {reason}")
    if daemon.intake.journal_error:
        reasons.append(daemon.intake.journal_error)
    journal_problem = getattr(daemon.journal, "problem", None)  # Redis unreachable
    if journal_problem:
        reasons.append(journal_problem)
    host = daemon.host
    reasons += _refused_subscriptions(daemon.hub, host)
    if host is not None and daemon.config.plugins_required:
        reasons.extend(plugin_load_reasons(host))
    if host is not None and daemon.ready:
        try:
            for name, plugin_health in sorted(host.health().items()):
                if not plugin_health.ready and name in host.loaded:
                    problems = ", ".join(plugin_health.problems) or "reports not ready"
                    reasons.append(f"plugin {name} not ready: {problems}")
        except Exception as exc:  # noqa: BLE001
            reasons.append(f"plugin health check failed: {redact(str(exc))}")
    return not reasons, {"ready": not reasons, "reasons": reasons}


def _refused_subscriptions(hub: Any, host: Any) -> list[str]:
    """A reason per plugin whose subscriptions the server refused (past its limit): the
    plugin would otherwise look healthy while missing the events it asked for."""
    refused = getattr(hub, "refused_subscriptions", None) if hub is not None else None
    if not refused:
        return []
    by_plugin: dict[str, list[str]] = {}
    for subscriber_id, message in refused.items():
        owner = host.owner_of(subscriber_id) if host is not None else None
        by_plugin.setdefault(owner.plugin if owner else "(none)", []).append(message)
    return [
        f"plugin {plugin} not ready: {len(messages)} subscription(s) refused by the "
        f"event server ({messages[0]})"
        for plugin, messages in sorted(by_plugin.items())
    ]


def plugin_load_reasons(host: Any) -> list[str]:
    """Why the plugins make the daemon not ready: each plugin that failed to load, or no
    plugin loaded at all (with the plugin path's problems, which say why).

    Why this counts against readiness: a daemon running without the plugin a studio
    configured processes nothing while every probe says all is well; the operator finds
    out days later.  ``plugins.required = false`` relaxes it for a daemon meant to start
    empty."""
    reasons = [
        f"plugin {record.name} failed to load: {redact(str(record.error))}"
        for record in list(host.failures)
    ]
    if not host.loaded:
        paths = ", ".join(host.paths) or "none configured"
        problems = "; ".join(redact(p) for p in host.problems)
        reasons.append(
            f"no plugin loaded (plugin paths: {paths})" + (f": {problems}" if problems else "")
        )
    return reasons


def status(daemon: Parts) -> dict[str, Any]:
    """``/status``: version, uptime, server, hub, per-plugin counts and lanes, journal,
    the last dead letters and the last error."""
    ready, readiness_body = readiness(daemon)
    lanes = daemon.router.snapshot() if daemon.router is not None else {}
    host = daemon.host
    plugins: dict[str, Any] = {}
    for record in list(host.plugins if host is not None else []):
        plugins[record.name] = {
            "kind": record.kind,
            "source": record.source,
            "loaded": record.loaded,
            "error": record.error,
            "warnings": list(record.warnings),
            "subscriptions": [s.expression for s in record.subscriptions],
            **lanes.get(record.name, {}),
        }
    journal: dict[str, Any] = {}
    dead: list[dict[str, Any]] = []
    if daemon.journal is not None and daemon.state != "stopping":
        try:
            journal = {
                "path": daemon.journal.path,
                "size_bytes": daemon.journal.size_bytes(),
                **daemon.journal.counts(),
            }
            dead = [
                {
                    "event_id": d.event_id,
                    "plugin": d.plugin,
                    "topic": d.topic,
                    "attempts": d.attempts,
                    "error": (d.last_error or "").strip().splitlines()[-1:],
                }
                for d in daemon.journal.dead_letters()[-20:]
            ]
        except Exception as exc:  # noqa: BLE001
            journal = {"error": redact(str(exc))}
    hub_stats: dict[str, Any] = {}
    if daemon.hub is not None:
        try:
            hub_stats = dict(daemon.hub.stats())
        except Exception:  # noqa: BLE001
            hub_stats = {}
    link = daemon.hub_link
    config = daemon.config
    return {
        "version": __version__,
        "pid": os.getpid(),
        "uptime_seconds": round(time.time() - daemon.started_at, 3),
        "state": daemon.state,
        "ready": ready,
        "reasons": readiness_body["reasons"],
        "server": {
            "url": config.server_url,
            "user": config.api_user,
            "embedded": daemon.devserver is not None,
            "version": (daemon.session.server_version if daemon.session else None),
        },
        "hub": {
            "connected": bool(daemon.hub is not None and daemon.hub.connected),
            "reconnects": link.reconnects,
            "gaps": link.gap_count,
            "gap_seconds": round(link.gap_seconds, 3),
            "last_gap": link.last_gap,
            **{f"stats_{k}": v for k, v in hub_stats.items()},
        },
        "plugins": plugins,
        "plugin_problems": list(host.problems) if host is not None else [],
        "journal": journal,
        "dead_letters": dead,
        "cluster": (
            cluster.safe_view(daemon.journal, getattr(daemon.intake, "spool", None))
            if daemon.state != "stopping"
            else None
        ),
        "last_error": daemon.last_error,
    }


def metrics_snapshot(daemon: Parts) -> dict[str, Any]:
    """The values :class:`~reviewd.daemon.metrics.Metrics` turns into gauges at scrape time."""
    snap: dict[str, Any] = {
        "hub_connected": bool(daemon.hub is not None and daemon.hub.connected),
        "ready": readiness(daemon)[0],
        "uptime": time.time() - daemon.started_at,
    }
    if daemon.router is not None:
        snap["plugins"] = daemon.router.snapshot()
    if daemon.journal is not None and daemon.state != "stopping":
        try:
            snap["journal_size"] = daemon.journal.size_bytes()
            snap["journal"] = daemon.journal.counts()
        except Exception:  # noqa: BLE001
            pass
    return snap
