"""Scale-out throughput: deliveries per second for one replica on SQLite, one on Redis
and three on Redis, measured in the same run against the same embedded server.

Each configuration gets real ``reviewd`` processes, a private ``redis-server``
(``appendonly yes``, as in production) and a burst of events published through a hub
to two plugins; the clock runs from the first publish until every delivery is counted
finished (SQLite: the replicas' ``/metrics``; Redis: the finished counters the
acknowledgements write, read from Redis).  Two handler profiles:

* ``noop`` — the handler returns at once: what the daemon itself costs.  Every replica
  receives and journals (or deduplicates) every event, so on a two-core machine three
  replicas compete for the same CPU and cannot go much faster than one.
* ``io`` — the handler waits 5 ms, like a plugin making one ftrack API call: the case
  scale-out is for, since that wait is what the replicas share.

Each configuration's replicas take both bursts, one after the other.  Figures
(deliveries/s): ``noop_sqlite_1``, ``noop_redis_1``, ``noop_redis_3`` and the same with
``io_``, and per profile the two ratios the issue sets targets for
(``redis_1_vs_sqlite_1`` >= 0.5, ``redis_3_vs_redis_1`` >= 2).

Where the CPU goes, per delivery (``/proc``, user + system, over each burst):
``*_cpu_us_replicas`` (all replicas together), ``*_cpu_us_redis`` (redis-server) and
``*_cpu_us_publisher`` (this process: the embedded server fanning every event out to
every replica, and the publishing hub); ``*_cpu_us_total`` is their sum and
``*_cpu_ceiling`` the deliveries/s the machine's cores could reach at that cost if they
did nothing else.  When three replicas' ceiling is below twice what one replica moves,
the ratio target cannot be met on that machine, whatever the code does.
Log level ``warning`` in every configuration (info lines for each deduplicated event
would measure the console, not the journal).
"""

from __future__ import annotations

import os
import resource
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
    import time

    def register(session, **kwargs):
        def on_event(event):
            delay = event["data"].get("delay")
            if delay:
                time.sleep(delay)
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


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process *pid* (Linux ``/proc``)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


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
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(directory),
                "--save",
                "",
                "--appendonly",
                "yes",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
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
        full.update(
            env,
            REVIEWD_HTTP=f"127.0.0.1:{self.port}",
            REVIEWD_STATE_DIR=str(directory / f"state-{self.port}"),
            REVIEWD_LOG_LEVEL="warning",
            REVIEWD_LOG_FORMAT="json",
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "reviewd.daemon.cli"],
            env=full,
            stdout=subprocess.DEVNULL,
            stderr=open(directory / f"replica-{self.port}.log", "w"),
        )

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"benchmark: a replica exited with {self.proc.returncode}")
        return _get(f"http://127.0.0.1:{self.port}/readyz")[0] == 200

    def succeeded(self) -> float:
        _code, body = _get(f"http://127.0.0.1:{self.port}/metrics")
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in body.splitlines()
            if line.startswith("reviewd_events_succeeded_total{")
        )

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _measure(
    server,
    directory: Path,
    backend: str,
    replicas: int,
    bursts: list[tuple[int, float]],
    redis_server: _Redis | None,
) -> list[dict[str, float]]:
    """Per burst (events, handler seconds) on one configuration: deliveries per second
    and CPU microseconds per delivery of the replicas, redis-server and this process."""
    from reviewd.api.event.base import Event
    from reviewd.api.event.hub import EventHub

    plugins = directory / "plugins"
    if not plugins.exists():
        plugins.mkdir()
        for name in PLUGINS:
            (plugins / f"{name}.py").write_text(textwrap.dedent(PLUGIN_SOURCE))
    run = Path(tempfile.mkdtemp(dir=directory))
    env = {
        "FTRACK_SERVER": server.url,
        "FTRACK_API_USER": server.api_user,
        "FTRACK_API_KEY": server.api_key,
        "FTRACK_EVENT_PLUGIN_PATH": str(plugins),
        "REVIEWD_JOURNAL_BACKEND": backend,
    }
    if backend == "redis":
        assert redis_server is not None
        env.update(REVIEWD_REDIS_URL=redis_server.url, REVIEWD_REDIS_PREFIX=run.name)
    started = []
    hub = EventHub(
        server.url,
        server.api_user,
        server.api_key,
        publish_queue_size=2 * max(events for events, _delay in bursts),
    )
    figures = []
    try:
        for index in range(replicas):
            started.append(_Replica(run, {**env, "REVIEWD_CONSUMER": f"replica-{index}"}))
        _wait(lambda: all(r.ready() for r in started), 120, "replicas ready")

        def subscribed() -> int:
            return sum(
                any(TOPIC in s["subscription"] for s in c["subscribers"])
                for c in server.events.connections()
            )

        _wait(lambda: subscribed() >= replicas, 60, "replicas subscribed")
        if backend == "redis":
            # Completions recorded in Redis (the ACK script counts them): read from Redis,
            # so that measuring costs the replicas nothing (their /metrics would also
            # read the cluster view from Redis at every poll).
            import redis

            client = redis.Redis.from_url(redis_server.url)

            def finished() -> float:
                return sum(int(client.get(f"{run.name}:done:{p}") or 0) for p in PLUGINS)

        else:

            def finished() -> float:
                return sum(r.succeeded() for r in started)

        hub.connect(timeout=30)
        done = 0.0
        for events, delay in bursts:
            deliveries = events * len(PLUGINS)
            done += deliveries
            cpu = _cpu_snapshot(started, redis_server if backend == "redis" else None)
            began = time.perf_counter()
            for n in range(events):
                hub.publish(Event(TOPIC, data={"n": n, "delay": delay}))
            _wait(
                lambda total=done: finished() >= total,
                600,
                "every delivery handled",
                interval=0.05,
            )
            elapsed = time.perf_counter() - began
            spent = _cpu_snapshot(started, redis_server if backend == "redis" else None)
            figures.append(
                {
                    "rate": deliveries / elapsed,
                    **{
                        f"cpu_us_{part}": (spent[part] - cpu[part]) * 1e6 / deliveries
                        for part in spent
                    },
                }
            )
        return figures
    finally:
        hub.disconnect()
        for replica in started:
            replica.stop()


def _cpu_snapshot(replicas: list[_Replica], redis_server: _Redis | None) -> dict[str, float]:
    """CPU seconds so far: the replicas together, redis-server, this process (the
    embedded server and the publisher; the metrics polling is a small share)."""
    return {
        "replicas": sum(_cpu_seconds(r.proc.pid) for r in replicas),
        "redis": _cpu_seconds(redis_server.proc.pid) if redis_server is not None else 0.0,
        "publisher": _own_cpu_seconds(),
    }


def _run(quick: bool) -> dict[str, float]:
    from reviewd.devserver import DevServer

    if shutil.which("redis-server") is None:
        raise RuntimeError("benchmark scenario_redis needs redis-server on PATH")
    bursts = [(1000, 0.0), (300, 0.005)] if quick else [(5000, 0.0), (2000, 0.005)]
    directory = Path(tempfile.mkdtemp(prefix="reviewd-bench-redis-"))
    redis_server = _Redis(directory)
    # The machine's load before the run: on a shared machine it says how far to trust
    # the round (the ratios come from configurations measured back to back).
    figures: dict[str, float] = {"load_1min": round(os.getloadavg()[0], 2)}
    try:
        with DevServer(seed="demo") as server:
            for label, backend, replicas in (
                ("sqlite_1", "sqlite", 1),
                ("redis_1", "redis", 1),
                ("redis_3", "redis", 3),
            ):
                measured = _measure(server, directory, backend, replicas, bursts, redis_server)
                for profile, burst in zip(("noop", "io"), measured, strict=True):
                    figures[f"{profile}_{label}"] = round(burst.pop("rate"), 1)
                    for part, value in burst.items():
                        figures[f"{profile}_{label}_{part}"] = round(value, 1)
                    total = sum(burst.values())
                    figures[f"{profile}_{label}_cpu_us_total"] = round(total, 1)
                    # Deliveries/s the machine could reach if every core did nothing else.
                    figures[f"{profile}_{label}_cpu_ceiling"] = round(
                        (os.cpu_count() or 1) * 1e6 / total, 1
                    )
    finally:
        redis_server.stop()
        shutil.rmtree(directory, ignore_errors=True)
    for profile in ("noop", "io"):
        figures[f"{profile}_redis_1_vs_sqlite_1"] = round(
            figures[f"{profile}_redis_1"] / figures[f"{profile}_sqlite_1"], 2
        )
        figures[f"{profile}_redis_3_vs_redis_1"] = round(
            figures[f"{profile}_redis_3"] / figures[f"{profile}_redis_1"], 2
        )
    return figures


SCENARIOS = [
    Scenario(
        "cluster.throughput",
        "deliveries/s",
        _run,
        headline="io_redis_3",
        description="deliveries/s to two plugins: 1 SQLite replica, 1 and 3 Redis "
        "replicas; no-op (noop_) and 5 ms (io_) handlers",
    ),
]
