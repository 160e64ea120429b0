"""Event hub benchmark: reviewd's EventHub side by side with ftrack-python-api 3.1.0.

Two figures, each measured for both clients with the same 50 subscriptions (40 on exact
topics, 5 on a wildcard topic plus a data condition, 5 that never match; every event
matches exactly two of them):

1. **stream**: events per second from the embedded DevServer to the handlers, through
   the WebSocket.  The server runs in this process; each client runs in a process of
   its own (reviewd under this interpreter, ftrack_api in the peer virtualenv), so the
   clients do not share a GIL with the server.  The rate is taken between the first
   and the last handler call, in the client process.
   The embedded server (pure Python) can be the slower side, so each client's CPU
   time per streamed event is reported too: its inverse is the rate the client could
   sustain against a faster server.
2. **dispatch**: microseconds per event for local dispatch to 50 subscriptions
   (``publish(event, synchronous=True)``, no network), in each client's own process.

Run: ``.venv/bin/python benchmarks/bench_hub.py [--events 20000] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

EXACT_TOPICS = 40
KINDS = 5

# Shared by both client scripts (each defines `subscribe(expression, callback)`).
SUBSCRIPTIONS = [f"topic=bench.t{j}" for j in range(EXACT_TOPICS)]
SUBSCRIPTIONS += [f"topic=bench.* and data.k={m}" for m in range(KINDS)]
SUBSCRIPTIONS += [f"topic=never.{m}" for m in range(KINDS)]

STREAM_CLIENT = """
import json, sys, time
N = int(sys.argv[1]); SUBSCRIPTIONS = json.loads(sys.argv[2]); KIND = sys.argv[3]
state = {"calls": 0, "first": None, "last": None}
def handler(event):
    now = time.perf_counter()
    if state["first"] is None:
        state["first"] = now
    state["last"] = now
    state["calls"] += 1
if KIND == "reviewd":
    import os
    from reviewd.api.event.hub import EventHub
    hub = EventHub(os.environ["FTRACK_SERVER"], os.environ["FTRACK_API_USER"],
                   os.environ["FTRACK_API_KEY"], dispatch_thread=True)
    for expression in SUBSCRIPTIONS:
        hub.subscribe(expression, handler)
    hub.connect(timeout=30)
    print("ready", hub.id, flush=True)
    cpu_start = time.process_time()
    deadline = time.time() + 300
    while state["calls"] < 2 * N and time.time() < deadline:
        time.sleep(0.01)
    cpu = time.process_time() - cpu_start
    hub.disconnect()
else:
    import ftrack_api
    session = ftrack_api.Session(auto_connect_event_hub=True)
    hub = session.event_hub
    deadline = time.time() + 60
    while not hub.connected and time.time() < deadline:
        time.sleep(0.05)
    for expression in SUBSCRIPTIONS:
        hub.subscribe(expression, handler)
    print("ready", hub.id, flush=True)
    cpu_start = time.process_time()
    deadline = time.time() + 300
    while state["calls"] < 2 * N and time.time() < deadline:
        hub.wait(0.05)
    cpu = time.process_time() - cpu_start
seconds = (state["last"] - state["first"]) if state["first"] is not None else 0.0
print(json.dumps({"calls": state["calls"], "seconds": seconds, "cpu": cpu}))
"""

DISPATCH_CLIENT = """
import json, sys, time
M = int(sys.argv[1]); SUBSCRIPTIONS = json.loads(sys.argv[2]); KIND = sys.argv[3]
calls = [0]
def handler(event):
    calls[0] += 1
if KIND == "reviewd":
    from reviewd.api.event.hub import EventHub
    from reviewd.api.event.base import Event
else:
    from ftrack_api.event.hub import EventHub
    from ftrack_api.event.base import Event
hub = EventHub("http://127.0.0.1:9", "bench", "bench-key")
for expression in SUBSCRIPTIONS:
    hub.subscribe(expression, handler)
events = [Event(topic="bench.t%d" % (i % 40), data={"i": i, "k": str(i % 5)}) for i in range(M)]
start = time.perf_counter()
for event in events:
    hub.publish(event, synchronous=True)
seconds = time.perf_counter() - start
assert calls[0] == 2 * M, calls[0]
print(json.dumps({"seconds": seconds, "events": M}))
"""


def _wait_ready(process: subprocess.Popen, timeout: float = 120.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.startswith("ready"):
            return line.split()[1]
        if not line and process.poll() is not None:
            raise RuntimeError(f"client exited early:\n{process.stderr.read()}")
    raise RuntimeError("client never became ready")


def _finish(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=300)
    if process.returncode != 0:
        raise RuntimeError(f"client failed:\n{err}")
    return json.loads([line for line in out.splitlines() if line.strip()][-1])


def _subscribed(server, hub_id: str, count: int) -> bool:
    for connection in server.events.connections():
        ids = {s["id"] for s in connection["subscribers"]}
        if hub_id in ids and len(ids) >= count:
            return True
    return False


def _stream(server, total: int) -> None:
    """Publish *total* events from the server's loop, as fast as the client reads them.

    The server closes a connection whose outbox reaches 10,000 frames, so the burst
    pauses while any outbox holds more than 2,000 (reading the server's own queue is
    fine for a benchmark, never for a test).
    """
    source = {"id": "bench-source", "user": {"username": "bench"}}
    events = server.events

    async def run() -> None:
        for start in range(0, total, 500):
            for i in range(start, min(total, start + 500)):
                await events.publish(
                    {
                        "topic": f"bench.t{i % EXACT_TOPICS}",
                        "data": {"i": i, "k": str(i % KINDS)},
                        "source": source,
                    }
                )
            while any(c.outbox.qsize() > 2000 for c in events._open_connections()):
                await asyncio.sleep(0.0005)

    asyncio.run_coroutine_threadsafe(run(), events.loop).result(600)


def bench_stream(kind: str, total: int) -> dict:
    from reviewd.devserver import DevServer
    from tests.peer import peer_env, start_peer

    args = (str(total), json.dumps(SUBSCRIPTIONS), kind)
    with DevServer(seed="empty") as server:
        env = peer_env(server)
        if kind == "reviewd":
            import os

            full_env = {k: v for k, v in os.environ.items() if not k.startswith("FTRACK_")}
            full_env.update(env, PYTHONPATH=str(ROOT))
            process = subprocess.Popen(
                [sys.executable, "-c", textwrap.dedent(STREAM_CLIENT), *args],
                env=full_env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        else:
            process = start_peer(STREAM_CLIENT, env=env, args=args)
        try:
            hub_id = _wait_ready(process)
            deadline = time.monotonic() + 60
            while not _subscribed(server, hub_id, len(SUBSCRIPTIONS)):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{kind} client never subscribed")
                time.sleep(0.05)
            _stream(server, total)
            result = _finish(process)
        finally:
            if process.poll() is None:
                process.kill()
    if result["calls"] != 2 * total:
        raise RuntimeError(f"{kind}: {result['calls']} handler calls, expected {2 * total}")
    return {
        "events_per_second": (total - 1) / result["seconds"],
        "client_cpu_us_per_event": result["cpu"] / total * 1e6,
    }


def bench_dispatch(kind: str, events: int) -> float:
    from tests.peer import peer_python

    args = [str(events), json.dumps(SUBSCRIPTIONS), kind]
    python = sys.executable if kind == "reviewd" else str(peer_python())
    completed = subprocess.run(
        [python, "-c", textwrap.dedent(DISPATCH_CLIENT), *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=str(ROOT),
        env={"PYTHONPATH": str(ROOT) if kind == "reviewd" else "", "PATH": "/usr/bin:/bin"},
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{kind} dispatch failed:\n{completed.stderr}")
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    return result["seconds"] / result["events"] * 1e6


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000, help="events streamed per client")
    parser.add_argument(
        "--dispatch-events", type=int, default=20000, help="events dispatched locally per client"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    options = parser.parse_args(argv)

    streams = {kind: bench_stream(kind, options.events) for kind in ("reviewd", "ftrack_api")}
    figures = {
        "stream_events_per_second": {
            kind: figures["events_per_second"] for kind, figures in streams.items()
        },
        "stream_client_cpu_us_per_event": {
            kind: figures["client_cpu_us_per_event"] for kind, figures in streams.items()
        },
        "dispatch_us_per_event_50_subscriptions": {
            "reviewd": bench_dispatch("reviewd", options.dispatch_events),
            "ftrack_api": bench_dispatch("ftrack_api", options.dispatch_events),
        },
    }
    stream = figures["stream_events_per_second"]
    dispatch = figures["dispatch_us_per_event_50_subscriptions"]
    cpu = figures["stream_client_cpu_us_per_event"]
    figures["stream_speedup"] = stream["reviewd"] / stream["ftrack_api"]
    figures["client_capacity_speedup"] = cpu["ftrack_api"] / cpu["reviewd"]
    figures["dispatch_speedup"] = dispatch["ftrack_api"] / dispatch["reviewd"]
    if options.json:
        print(json.dumps(figures, indent=2))
    else:
        print(f"{'':42}{'reviewd':>14}{'ftrack_api 3.1.0':>18}{'speedup':>10}")
        print(
            f"{'server -> handler, events/s (websocket)':42}"
            f"{stream['reviewd']:>14,.0f}{stream['ftrack_api']:>18,.0f}"
            f"{figures['stream_speedup']:>9.1f}x"
        )
        print(
            f"{'client CPU per streamed event, us':42}"
            f"{cpu['reviewd']:>14.1f}{cpu['ftrack_api']:>18.1f}"
            f"{figures['client_capacity_speedup']:>9.1f}x"
        )
        print(
            f"{'  = client capacity, events/s':42}"
            f"{1e6 / cpu['reviewd']:>14,.0f}{1e6 / cpu['ftrack_api']:>18,.0f}"
        )
        print(
            f"{'local dispatch, us/event, 50 subscriptions':42}"
            f"{dispatch['reviewd']:>14.2f}{dispatch['ftrack_api']:>18.2f}"
            f"{figures['dispatch_speedup']:>9.1f}x"
        )
    return figures


if __name__ == "__main__":
    main()
