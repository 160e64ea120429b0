"""Scale-out throughput: deliveries per second for one replica on SQLite, one on Redis
and three on Redis, measured in the same run against the same embedded server.

Each configuration gets real ``reviewd`` processes, a private ``redis-server``
(``appendonly yes``, as in production) and a burst of events published through a hub
to two plugins; the clock runs from the first publish until the replicas' metrics
count every delivery succeeded.  Two handler profiles:

* ``noop`` — the handler returns at once: what the daemon itself costs.  Every replica
  receives and journals (or deduplicates) every event, so on a two-core machine three
  replicas compete for the same CPU and cannot go much faster than one.
* ``io`` — the handler waits 5 ms, like a plugin making one ftrack API call: the case
  scale-out is for, since that wait is what the replicas share.

Figures: ``sqlite_1``, ``redis_1``, ``redis_3`` (deliveries/s) and the two ratios the
issue sets targets for (``redis_1 / sqlite_1`` >= 0.5, ``redis_3 / redis_1`` >= 2).
Log level ``warning`` in every configuration (info lines for each deduplicated event
would measure the console, not the journal).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

from benchmarks._scenario import Scenario

PLUGINS = ("bench_a", "bench_b")
TOPIC = "bench.cluster"

PLUGIN_SOURCE = """
    import os
    import time

    DELAY = float(os.environ.get("BENCH_HANDLER_SECONDS", "0"))

    def register(session, **kwargs):
        def on_event(event):
            if DELAY:
                time.sleep(DELAY)
        session.event_hub.subscribe("topic=bench.cluster", on_event)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(condition, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise RuntimeError(f"benchmark: timed out waiting for {what}")


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except OSError:
        return 0, ""


class _Redis:
    def __init__(self, directory: Path) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
             str(directory), "--save", "", "--appendonly", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        client = redis.Redis(port=self.port)

        def up() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False
        _wait(up, 20, "redis-server")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


class _Replica:
    def __init__(self, directory: Path, env: dict[str, str]) -> None:
        self.port = _free_port()
        full = {k: v for k, v in os.environ.items() if not k.startswith(("FTRACK_", "REVIEWD_"))}
        full.update(env, REVIEWD_HTTP=f"127.0.0.1:{self.port}",
                    REVIEWD_STATE_DIR=str(directory / f"state-{self.port}"),
                    REVIEWD_LOG_LEVEL="warning", REVIEWD_LOG_FORMAT="json")
        self.proc = subprocess.Popen([sys.executable, "-m", "reviewd.daemon.cli"], env=full,
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(directory / f"replica-{self.port}.log", "w"))

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"benchmark: a replica exited with {self.proc.returncode}")
        return _get(f"http://127.0.0.1:{self.port}/readyz")[0] == 200

    def succeeded(self) -> float:
        _code, body = _get(f"http://127.0.0.1:{self.port}/metrics")
        return sum(float(line.rsplit(" ", 1)[1]) for line in body.splitlines()
                   if line.startswith("reviewd_events_succeeded_total{"))

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _measure(server, directory: Path, backend: str, replicas: int, events: int,
             handler_seconds: float, redis_url: str | None) -> float:
    """Deliveries per second for one configuration."""
    from reviewd.api.event.base import Event
    from reviewd.api.event.hub import EventHub

    plugins = directory / "plugins"
    if not plugins.exists():
        plugins.mkdir()
        for name in PLUGINS:
            (plugins / f"{name}.py").write_text(textwrap.dedent(PLUGIN_SOURCE))
    run = Path(tempfile.mkdtemp(dir=directory))
    env = {"FTRACK_SERVER": server.url, "FTRACK_API_USER": server.api_user,
           "FTRACK_API_KEY": server.api_key, "FTRACK_EVENT_PLUGIN_PATH": str(plugins),
           "BENCH_HANDLER_SECONDS": str(handler_seconds), "REVIEWD_JOURNAL_BACKEND": backend}
    if backend == "redis":
        env.update(REVIEWD_REDIS_URL=redis_url or "", REVIEWD_REDIS_PREFIX=run.name)
    started = []
    hub = EventHub(server.url, server.api_user, server.api_key,
                   publish_queue_size=events * 2)
    try:
        for index in range(replicas):
            started.append(_Replica(run, {**env, "REVIEWD_CONSUMER": f"replica-{index}"}))
        _wait(lambda: all(r.ready() for r in started), 120, "replicas ready")

        def subscribed() -> int:
            return sum(any(TOPIC in s["subscription"] for s in c["subscribers"])
                       for c in server.events.connections())
        _wait(lambda: subscribed() >= replicas, 60, "replicas subscribed")
        hub.connect(timeout=30)
        wanted = events * len(PLUGINS)
        began = time.perf_counter()
        for n in range(events):
            hub.publish(Event(TOPIC, data={"n": n}))
        _wait(lambda: sum(r.succeeded() for r in started) >= wanted, 600,
              "every delivery handled", interval=0.1)
        return wanted / (time.perf_counter() - began)
    finally:
        hub.disconnect()
        for replica in started:
            replica.stop()


def _run(quick: bool, handler_seconds: float) -> dict[str, float]:
    from reviewd.devserver import DevServer

    if shutil.which("redis-server") is None:
        raise RuntimeError("benchmark scenario_redis needs redis-server on PATH")
    events = (1000 if quick else 5000) if not handler_seconds else (400 if quick else 2000)
    directory = Path(tempfile.mkdtemp(prefix="reviewd-bench-redis-"))
    redis_server = _Redis(directory)
    try:
        with DevServer(seed="demo") as server:
            sqlite_1 = _measure(server, directory, "sqlite", 1, events, handler_seconds, None)
            redis_1 = _measure(server, directory, "redis", 1, events, handler_seconds,
                               redis_server.url)
            redis_3 = _measure(server, directory, "redis", 3, events, handler_seconds,
                               redis_server.url)
    finally:
        redis_server.stop()
        shutil.rmtree(directory, ignore_errors=True)
    return {"sqlite_1": round(sqlite_1, 1), "redis_1": round(redis_1, 1),
            "redis_3": round(redis_3, 1),
            "redis_1_vs_sqlite_1": round(redis_1 / sqlite_1, 2),
            "redis_3_vs_redis_1": round(redis_3 / redis_1, 2),
            "events": events, "deliveries": events * len(PLUGINS)}


SCENARIOS = [
    Scenario("cluster.noop", "deliveries/s", lambda quick: _run(quick, 0.0),
             headline="redis_3",
             description="1 SQLite replica, 1 and 3 Redis replicas; no-op handler"),
    Scenario("cluster.io", "deliveries/s", lambda quick: _run(quick, 0.005),
             headline="redis_3",
             description="1 SQLite replica, 1 and 3 Redis replicas; 5 ms handler"),
]
