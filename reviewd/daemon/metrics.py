"""Prometheus metrics of one daemon, on its own registry.

Why its own ``CollectorRegistry`` instead of prometheus_client's global one: a test can
run several daemons' pieces in one interpreter without "duplicated timeseries" errors,
plugin collectors can be unregistered on reload, and ``/metrics`` shows exactly what
this daemon owns.  Counters are updated where things happen; point-in-time values
(queue depths, hub state, journal size) are read at scrape time by
:class:`SnapshotCollector`, so they are never stale.

Names follow Prometheus conventions: ``reviewd_`` prefix, ``_total`` for counters,
base units (seconds, bytes).  No label ever carries user data other than a plugin name
or an event topic, and nothing here can contain the API key.  Per-plugin values are the
``plugin`` label of one family, never a metric name per plugin.

Every per-plugin series is created with 0 when the plugin loads
(:meth:`Metrics.add_plugin`): Prometheus's ``increase()`` needs a sample before the
first increment, so a counter that appears only when first incremented would never
fire an alert for a plugin's first dead letter.  Process (memory, CPU, descriptors,
start time), platform (Python version) and garbage-collector collectors are registered
too: a daemon meant to run for months must show its own growth.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from reviewd import __version__
from reviewd.daemon.api_metrics import ApiMetrics

HANDLER_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class Metrics:
    """Every metric the daemon records, created on a private registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        pt = ["plugin", "topic"]
        self.received = Counter(
            "reviewd_events_received",
            "Events received from the hub that matched at least one plugin subscription.",
            ["topic"],
            registry=r,
        )
        self.journaled = Counter(
            "reviewd_events_journaled",
            "Deliveries written to the journal (one per event and plugin).",
            pt,
            registry=r,
        )
        self.deduplicated = Counter(
            "reviewd_events_deduplicated",
            "Events ignored because their id was already journaled for the plugin.",
            pt,
            registry=r,
        )
        self.dispatched = Counter(
            "reviewd_events_dispatched", "Handler attempts started.", pt, registry=r
        )
        self.succeeded = Counter(
            "reviewd_events_succeeded", "Deliveries whose handlers all succeeded.", pt, registry=r
        )
        self.failed = Counter(
            "reviewd_events_failed", "Handler attempts that raised.", pt, registry=r
        )
        self.retried = Counter(
            "reviewd_events_retried", "Failed attempts scheduled for another try.", pt, registry=r
        )
        self.dead_lettered = Counter(
            "reviewd_events_dead_lettered",
            "Deliveries given up after the retry budget (kept in the journal).",
            pt,
            registry=r,
        )
        self.replayed = Counter(
            "reviewd_events_replayed",
            "Unfinished deliveries fed back from the journal (after a restart or queue overflow).",
            ["plugin"],
            registry=r,
        )
        self.handler_duration = Histogram(
            "reviewd_handler_duration_seconds",
            "Time spent in a plugin's handlers per delivery attempt.",
            pt,
            buckets=HANDLER_BUCKETS,
            registry=r,
        )
        self.slow = Counter(
            "reviewd_handler_slow",
            "Handler attempts that ran past the soft timeout.",
            ["plugin"],
            registry=r,
        )
        self.stuck_total = Counter(
            "reviewd_handler_stuck",
            "Handler attempts that ran past the hard timeout (plugin marked stuck).",
            ["plugin"],
            registry=r,
        )
        self.overflow = Counter(
            "reviewd_queue_overflow",
            "Deliveries left in the journal because the plugin's queue was full.",
            ["plugin"],
            registry=r,
        )
        self.reconnects = Counter(
            "reviewd_hub_reconnects",
            "Times the event hub connected again after losing its connection.",
            registry=r,
        )
        self.gaps = Counter("reviewd_hub_gaps", "Disconnections of the event hub.", registry=r)
        self.gap_seconds = Counter(
            "reviewd_hub_gap_seconds",
            "Seconds the event hub spent disconnected after having been connected.",
            registry=r,
        )
        self.session_attempts = Counter(
            "reviewd_session_connect_attempts",
            "Attempts to create the session (reach and authenticate with the server).",
            ["outcome"],
            registry=r,
        )
        self.reloads = Counter(
            "reviewd_reloads", "Configuration and plugin reloads.", ["outcome"], registry=r
        )
        self.api = ApiMetrics(r)
        build = Gauge(
            "reviewd_build_info", "Version of the running daemon.", ["version"], registry=r
        )
        build.labels(version=__version__).set(1)
        self._plugin_collectors: dict[str, list[Collector]] = {}
        for standard in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            # The same collector objects prometheus_client's default registry uses:
            # they read /proc and the interpreter at scrape time and hold no state.
            r.register(standard)

    def add_plugin(self, plugin: str, topics: Iterable[str] = ()) -> None:
        """Create every per-plugin series of *plugin* with 0 (see the module docstring).

        *topics* are the exact topics its subscriptions pin (``topic=ftrack.update``);
        the ``(plugin, topic)`` series of a subscription that matches any topic appear
        when first counted, which the dead-letter alert covers with its new-series rule.
        """
        for counter in (self.replayed, self.slow, self.stuck_total, self.overflow):
            counter.labels(plugin=plugin)
        for topic in sorted(set(topics)):
            for counter in (
                self.journaled,
                self.deduplicated,
                self.dispatched,
                self.succeeded,
                self.failed,
                self.retried,
                self.dead_lettered,
            ):
                counter.labels(plugin=plugin, topic=topic)
            self.handler_duration.labels(plugin=plugin, topic=topic)

    def add_snapshot(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        """Expose point-in-time values computed by *snapshot* at each scrape."""
        self.registry.register(SnapshotCollector(snapshot))

    def add_plugin_collectors(self, plugin: str, collectors: Iterable[Collector]) -> list[str]:
        """Register a plugin's own collectors; return errors (duplicate names) as text."""
        errors = []
        for collector in collectors:
            try:
                self.registry.register(collector)
                self._plugin_collectors.setdefault(plugin, []).append(collector)
            except ValueError as exc:
                errors.append(f"plugin {plugin}: collector not registered: {exc}")
        return errors

    def remove_plugin_collectors(self, plugin: str) -> None:
        for collector in self._plugin_collectors.pop(plugin, []):
            try:
                self.registry.unregister(collector)
            except KeyError:
                pass

    def render(self) -> bytes:
        return generate_latest(self.registry)


class SnapshotCollector(Collector):
    """Gauges read from the daemon's state when Prometheus scrapes.

    *snapshot* returns ``{"hub_connected": bool, "ready": bool, "uptime": float,
    "journal_size": int, "journal": {state: n}, "plugins": {name: {"queue_depth",
    "in_flight", "stuck"}}}``; missing keys are simply not exported.
    """

    def __init__(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        self._snapshot = snapshot

    def describe(self) -> Any:  # registering must not call the snapshot (it may not be ready)
        return []

    def collect(self) -> Iterator[Any]:
        try:
            snap = self._snapshot()
        except Exception:  # noqa: BLE001 - a scrape must never fail the daemon
            return
        simple = (
            ("reviewd_hub_connected", "1 when the event hub is connected.", "hub_connected"),
            ("reviewd_ready", "1 when the daemon is ready (see /readyz).", "ready"),
            ("reviewd_uptime_seconds", "Seconds since the daemon started.", "uptime"),
            ("reviewd_journal_size_bytes", "Bytes of the journal on disk.", "journal_size"),
        )
        for name, doc, key in simple:
            if key in snap:
                yield GaugeMetricFamily(name, doc, value=float(snap[key]))
        if "journal" in snap:
            family = GaugeMetricFamily(
                "reviewd_journal_deliveries",
                "Deliveries in the journal per state.",
                labels=["state"],
            )
            for state, count in sorted(snap["journal"].items()):
                family.add_metric([state], float(count))
            yield family
        plugins = snap.get("plugins", {})
        for name, doc, key in (
            ("reviewd_queue_depth", "Deliveries waiting in a plugin's queue.", "queue_depth"),
            ("reviewd_in_flight", "Deliveries a plugin's handlers are running now.", "in_flight"),
            (
                "reviewd_plugin_stuck",
                "1 when a handler of the plugin ran past its hard timeout and has not returned.",
                "stuck",
            ),
        ):
            family = GaugeMetricFamily(name, doc, labels=["plugin"])
            for plugin, stats in sorted(plugins.items()):
                family.add_metric(
                    [plugin], float(bool(stats[key]) if key == "stuck" else stats.get(key, 0))
                )
            yield family
