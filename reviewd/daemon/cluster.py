"""What one replica can tell about the whole cluster sharing a Redis journal.

Why from Redis and not from the other replicas: the replicas do not talk to each other;
everything they share is in Redis, so any replica (and ``reviewd status`` against any
of them) shows the same picture: the replicas seen with their last heartbeat
(:mod:`reviewd.daemon.journal.redis_link` writes one every second), and per plugin the
stream lag (entries no replica has taken yet), pending entries (taken, not finished)
and by whom, claims (entries taken over from a replica that went silent), dead
letters, and who holds a pinned plugin's lease.  :class:`ClusterCollector` publishes
the same figures as Prometheus metrics, labelled by plugin and replica.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from reviewd.daemon.journal.redis import GROUP

#: Replicas silent for longer than this are dropped from the list (they left for good).
FORGET_AFTER = 86400.0


def replicas(journal: Any, now: float | None = None) -> list[dict[str, Any]]:
    """Every replica that sent a heartbeat within ``FORGET_AFTER``, newest first."""
    now = time.time() if now is None else now
    key = f"{journal.prefix}:replicas"
    out = []
    for name, raw in journal.client.hgetall(key).items():
        try:
            beat = json.loads(raw)
        except ValueError:
            continue
        age = now - float(beat.get("time", 0))
        if age > FORGET_AFTER:
            journal.client.hdel(key, name)
            continue
        out.append(
            {
                "name": name,
                "host": beat.get("host"),
                "pid": beat.get("pid"),
                "last_heartbeat": beat.get("time"),
                "age_seconds": round(max(0.0, age), 3),
                "started": beat.get("started"),
            }
        )
    return sorted(out, key=lambda r: r["age_seconds"])


def plugin_figures(journal: Any, plugin: str) -> dict[str, Any]:
    """Lag, pending (by replica), claims, dead letters and lease holder of one plugin."""
    client = journal.client
    stream = journal.key("stream", plugin)
    figures: dict[str, Any] = {
        "lag": 0,
        "pending": 0,
        "pending_by_replica": {},
        "claims": 0,
        "dead_letters": 0,
        "done": 0,
    }
    groups = client.xinfo_groups(stream) if client.exists(stream) else []
    for group in groups:
        if group.get("name") != GROUP:
            continue
        figures["pending"] = int(group.get("pending") or 0)
        lag = group.get("lag")
        figures["lag"] = (
            int(lag) if lag is not None else max(0, client.xlen(stream) - figures["pending"])
        )
        if figures["pending"]:
            summary = client.xpending(stream, GROUP)
            figures["pending_by_replica"] = {
                c["name"]: int(c["pending"]) for c in summary.get("consumers") or []
            }
    pipe = client.pipeline(transaction=False)
    pipe.get(journal.key("claims", plugin))
    pipe.xlen(journal.key("dead", plugin))
    pipe.get(journal.key("done", plugin))
    claims, dead, done = pipe.execute()
    figures.update(claims=int(claims or 0), dead_letters=int(dead), done=int(done or 0))
    if plugin in journal.pinned:
        figures["lease_holder"] = client.get(journal.key("lease", plugin))
    return figures


def spool_state(spool: Any) -> dict[str, int]:
    """The intake spool (events received, not yet in Redis) in figures."""
    if spool is None:
        return {}
    return {
        "events": len(spool),
        "bytes": spool.bytes,
        "max_bytes": spool.max_bytes,
        "refused": spool.refused,
        "peak_bytes": spool.peak_bytes,
    }


def view(journal: Any, spool: Any = None) -> dict[str, Any]:
    """``/status``'s ``cluster`` section; *spool*: the intake's (see :mod:`reviewd.daemon.spool`)."""
    link = journal.link
    return {
        "replica": journal.consumer,
        "redis": journal.path,
        "redis_reachable": link.up,
        "spool": spool_state(spool),
        "acks_waiting": journal.acks.backlog(),
        "replicas": replicas(journal),
        "plugins": {name: plugin_figures(journal, name) for name in known_plugins(journal)},
    }


def known_plugins(journal: Any) -> list[str]:
    """Plugins with a stream in Redis, a lane on this replica, or a lease."""
    return sorted(set(journal.plugins()) | set(journal.feeds) | set(journal.pinned))


def safe_view(journal: Any, spool: Any = None) -> dict[str, Any] | None:
    """The view, or what went wrong (a probe must answer while Redis is away)."""
    if not getattr(journal, "feeds_lanes", False):
        return None
    try:
        return view(journal, spool)
    except Exception as exc:  # noqa: BLE001
        from reviewd.api.exception import redact

        return {
            "replica": journal.consumer,
            "redis": journal.path,
            "redis_reachable": False,
            "error": redact(str(exc)),
            "spool": spool_state(spool),
        }


class ClusterCollector:
    """The cluster view as Prometheus metrics, read at scrape time."""

    def __init__(self, journal: Callable[[], Any], spool: Callable[[], Any] | None = None) -> None:
        self._journal = journal
        self._spool = spool

    def describe(self) -> Any:  # registering must not reach Redis
        return []

    def collect(self) -> Iterator[Any]:
        journal = self._journal()
        if journal is None or not getattr(journal, "feeds_lanes", False) or journal.closed:
            return
        reachable = GaugeMetricFamily(
            "reviewd_redis_up", "1 while this replica reaches the Redis journal."
        )
        reachable.add_metric([], 1.0 if journal.link.up else 0.0)
        yield reachable
        spool = spool_state(self._spool() if self._spool is not None else None)
        if spool:
            spooled = GaugeMetricFamily(
                "reviewd_redis_spool_bytes",
                "Bytes of received events waiting in the intake spool to be written to Redis.",
            )
            spooled.add_metric([], spool["bytes"])
            yield spooled
            refused = CounterMetricFamily(
                "reviewd_redis_spool_refused", "Events refused because the intake spool was full."
            )
            refused.add_metric([], spool["refused"])
            yield refused
        try:
            seen = replicas(journal)
            figures = {name: plugin_figures(journal, name) for name in known_plugins(journal)}
        except Exception:  # noqa: BLE001 - Redis away: reviewd_redis_up says it
            return
        age = GaugeMetricFamily(
            "reviewd_cluster_heartbeat_age_seconds",
            "Seconds since each replica's last heartbeat in Redis.",
            labels=["replica"],
        )
        for replica in seen:
            age.add_metric([replica["name"]], replica["age_seconds"])
        yield age
        lag = GaugeMetricFamily(
            "reviewd_cluster_stream_lag", "Entries no replica has taken yet.", labels=["plugin"]
        )
        pending = GaugeMetricFamily(
            "reviewd_cluster_pending",
            "Entries taken by a replica and not finished.",
            labels=["plugin", "replica"],
        )
        claims = CounterMetricFamily(
            "reviewd_cluster_claims",
            "Entries taken over from a replica that went silent.",
            labels=["plugin"],
        )
        dead = GaugeMetricFamily(
            "reviewd_cluster_dead_letters", "Dead letters kept in Redis.", labels=["plugin"]
        )
        lease = GaugeMetricFamily(
            "reviewd_cluster_lease_held",
            "1 where this replica holds a pinned plugin's lease.",
            labels=["plugin"],
        )
        for name, fig in sorted(figures.items()):
            lag.add_metric([name], fig["lag"])
            for replica, count in sorted(fig["pending_by_replica"].items()):
                pending.add_metric([name, replica], count)
            claims.add_metric([name], fig["claims"])
            dead.add_metric([name], fig["dead_letters"])
            if "lease_holder" in fig:
                holder = fig["lease_holder"] or ""
                lease.add_metric([name], 1.0 if holder.startswith(journal.consumer + "/") else 0.0)
        yield from (lag, pending, claims, dead, lease)
