"""Daemon scenarios: the whole durable path (hub -> spool -> journal -> lane -> plugin)
to a no-op plugin, against the plain hub loops it is built on.

- ``daemon.throughput``: events/s from the embedded server to a no-op plugin through
  ``reviewd`` (journal, router), next to a plain ``ftrack_api`` loop (one subscription,
  a no-op callback, ``event_hub.wait()``) and a plain ``reviewd.api`` hub loop, each in
  its own process, in alternating order.  Also the daemon's CPU per event (``/proc``).
- ``daemon.latency``: p50/p99 from the server's send time to the plugin's handler at a
  steady 200 events/s.
- ``daemon.memory``: RSS idle and after a burst, journal bytes after it (``--quick``:
  20,000 events; full: 100,000 then 1,000,000 with ``REVIEWD_BENCH_MILLION=1``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

from benchmarks._scenario import Scenario
from benchmarks.daemon_rig import ROOT, DaemonRig

PLAIN_CLIENT = """
import json, os, sys, time
N = int(sys.argv[1]); KIND = sys.argv[2]
state = {"calls": 0, "first": None, "last": None}
def handler(event):
    now = time.perf_counter()
    if state["first"] is None:
        state["first"] = now
    state["last"] = now
    state["calls"] += 1
if KIND == "reviewd":
    from reviewd.api.event.hub import EventHub
    hub = EventHub(os.environ["FTRACK_SERVER"], os.environ["FTRACK_API_USER"],
                   os.environ["FTRACK_API_KEY"], dispatch_thread=True)
    hub.subscribe("topic=bench.*", handler)
    hub.connect(timeout=30)
    print("ready", hub.id, flush=True)
    cpu = time.process_time()
    deadline = time.time() + 600
    while state["calls"] < N and time.time() < deadline:
        time.sleep(0.01)
    cpu = time.process_time() - cpu
    hub.disconnect()
else:
    import ftrack_api
    session = ftrack_api.Session(auto_connect_event_hub=True)
    hub = session.event_hub
    deadline = time.time() + 60
    while not hub.connected and time.time() < deadline:
        time.sleep(0.05)
    hub.subscribe("topic=bench.*", handler)
    print("ready", hub.id, flush=True)
    cpu = time.process_time()
    deadline = time.time() + 600
    while state["calls"] < N and time.time() < deadline:
        hub.wait(0.05)
    cpu = time.process_time() - cpu
seconds = (state["last"] - state["first"]) if state["first"] is not None else 0.0
print(json.dumps({"calls": state["calls"], "seconds": seconds, "cpu": cpu}))
"""

_round = [0]


def _plain_loop(kind: str, total: int) -> dict[str, float]:
    """A plain hub loop (*kind*: reviewd or ftrack_api) receiving *total* events."""
    from benchmarks import bench_hub
    from reviewd.devserver import DevServer
    from tests.peer import peer_env, start_peer

    with DevServer(seed="empty") as server:
        env = peer_env(server)
        if kind == "reviewd":
            full = {k: v for k, v in os.environ.items() if not k.startswith("FTRACK_")}
            full.update(env, PYTHONPATH=str(ROOT))
            process = subprocess.Popen(
                [sys.executable, "-c", textwrap.dedent(PLAIN_CLIENT), str(total), kind],
                env=full,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        else:
            process = start_peer(PLAIN_CLIENT, env=env, args=(str(total), kind))
        try:
            hub_id = bench_hub._wait_ready(process)
            deadline = time.monotonic() + 60
            while not bench_hub._subscribed(server, hub_id, 1):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{kind} plain loop never subscribed")
                time.sleep(0.05)
            _burst(server, total)
            result = bench_hub._finish(process)
        finally:
            if process.poll() is None:
                process.kill()
    if result["calls"] != total:
        raise RuntimeError(f"{kind} plain loop: {result['calls']} calls, expected {total}")
    return {
        "events_per_second": (total - 1) / result["seconds"],
        "cpu_us_per_event": result["cpu"] / total * 1e6,
    }


def _burst(server, total: int) -> None:
    import asyncio

    events = server.events
    source = {"id": "bench-source", "user": {"username": "bench"}}

    async def run() -> None:
        for first in range(0, total, 500):
            for i in range(first, min(total, first + 500)):
                await events.publish({"topic": "bench.noop", "data": {"i": i}, "source": source})
            while any(c.outbox.qsize() > 2000 for c in events._open_connections()):
                await asyncio.sleep(0.0005)

    asyncio.run_coroutine_threadsafe(run(), events.loop).result(3600)


def _daemon_burst(total: int) -> dict[str, float]:
    with DaemonRig() as rig:
        cpu = rig.cpu()
        rig.burst(total)
        figures = rig.figures(total)
        cpu = rig.cpu() - cpu
    return {
        "events_per_second": (total - 1) / (figures["last"] - figures["first"]),
        "cpu_us_per_event": cpu / total * 1e6,
    }


def _throughput(quick: bool) -> dict[str, float]:
    total = 5000 if quick else 50000
    runs = {
        "reviewd": lambda: _daemon_burst(total),
        "ftrack_api": lambda: _plain_loop("ftrack_api", total),
        "reviewd_plain_loop": lambda: _plain_loop("reviewd", total),
    }
    order = list(runs)
    if _round[0] % 2:
        order.reverse()
    _round[0] += 1
    figures = {name: runs[name]() for name in order}
    return {
        "reviewd": figures["reviewd"]["events_per_second"],
        "ftrack_api": figures["ftrack_api"]["events_per_second"],
        "reviewd_plain_loop": figures["reviewd_plain_loop"]["events_per_second"],
        "daemon_cpu_us_per_event": figures["reviewd"]["cpu_us_per_event"],
        "ftrack_api_cpu_us_per_event": figures["ftrack_api"]["cpu_us_per_event"],
        "reviewd_plain_cpu_us_per_event": figures["reviewd_plain_loop"]["cpu_us_per_event"],
    }


def _cpu(quick: bool) -> dict[str, float]:
    """CPU per event of the daemon at its full rate (a separate, longer burst)."""
    total = 10000 if quick else 100000
    return {"reviewd": _daemon_burst(total)["cpu_us_per_event"]}


def _latency(quick: bool) -> dict[str, float]:
    seconds = 5 if quick else 30
    with DaemonRig() as rig:
        rig.steady(200, seconds)
        figures = rig.figures(int(200 * seconds))
    return {"reviewd": figures["p99_ms"], "p50_ms": figures["p50_ms"], "p99_ms": figures["p99_ms"]}


def _memory(quick: bool) -> dict[str, float]:
    steps = [20000] if quick else [100000]
    if not quick and os.environ.get("REVIEWD_BENCH_MILLION") == "1":
        steps.append(1000000)
    out: dict[str, float] = {}
    with DaemonRig() as rig:
        out["rss_idle_mb"] = rig.rss() / 1e6
        sent = 0
        for step in steps:
            rig.burst(step - sent, start=sent)
            rig.figures(step)
            sent = step
            # Let compaction and reclaiming catch up with what finished, as they do in
            # service: until the journal's size stops changing.
            deadline = time.monotonic() + 900
            sizes: list[int] = []
            while time.monotonic() < deadline:
                status = rig.status().get("journal", {})
                sizes = (sizes + [rig.journal_bytes()])[-6:]
                settled = len(sizes) == 6 and max(sizes) == min(sizes)
                if status.get("pending", 1) == 0 and settled:
                    break
                time.sleep(1)
            label = f"{step // 1000}k"
            out[f"rss_after_{label}_mb"] = rig.rss() / 1e6
            out[f"journal_after_{label}_mb"] = rig.journal_bytes() / 1e6
        out["reviewd"] = out[f"rss_after_{steps[-1] // 1000}k_mb"]
    return out


SCENARIOS = [
    Scenario(
        "daemon.throughput",
        "events/s",
        _throughput,
        description="server -> journal -> router -> no-op plugin, vs plain hub loops",
    ),
    Scenario(
        "daemon.cpu",
        "us/event",
        _cpu,
        higher_is_better=False,
        description="daemon CPU time per event at its full rate",
    ),
    Scenario(
        "daemon.latency",
        "ms p99",
        _latency,
        higher_is_better=False,
        description="send -> handler at a steady 200 events/s",
    ),
    Scenario(
        "daemon.memory",
        "MB RSS",
        _memory,
        higher_is_better=False,
        description="RSS and journal size after a burst",
    ),
]


if __name__ == "__main__":
    print(json.dumps({s.name: s.run("--quick" in sys.argv) for s in SCENARIOS}, indent=2))
