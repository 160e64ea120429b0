"""Event hub scenarios: server-to-handler stream and local dispatch, reviewd's EventHub
against ftrack_api's (``bench_hub.py`` does the measuring)."""

from __future__ import annotations

from benchmarks._scenario import Scenario

_round = [0]


def _stream(quick: bool) -> dict[str, float]:
    from benchmarks import bench_hub

    total = 3000 if quick else 20000
    kinds = ["reviewd", "ftrack_api"]
    if _round[0] % 2:
        kinds.reverse()  # alternate who goes first, so drift hits both alike
    _round[0] += 1
    figures = {kind: bench_hub.bench_stream(kind, total) for kind in kinds}
    return {
        "reviewd": figures["reviewd"]["events_per_second"],
        "ftrack_api": figures["ftrack_api"]["events_per_second"],
        "reviewd_cpu_us_per_event": figures["reviewd"]["client_cpu_us_per_event"],
        "ftrack_api_cpu_us_per_event": figures["ftrack_api"]["client_cpu_us_per_event"],
    }


def _dispatch(quick: bool) -> dict[str, float]:
    from benchmarks import bench_hub

    events = 3000 if quick else 20000
    return {
        "reviewd": bench_hub.bench_dispatch("reviewd", events),
        "ftrack_api": bench_hub.bench_dispatch("ftrack_api", events),
    }


SCENARIOS = [
    Scenario(
        "hub.stream",
        "events/s",
        _stream,
        description="server -> handler through the WebSocket, 50 subscriptions",
    ),
    Scenario(
        "hub.dispatch",
        "us/event",
        _dispatch,
        higher_is_better=False,
        description="local dispatch to 50 subscriptions",
    ),
]
