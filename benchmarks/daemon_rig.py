"""A real ``reviewd`` daemon with a no-op plugin, fed by the embedded server: the rig
behind the daemon scenarios (and the long soak runs).

Why a separate process for the daemon: its CPU time and RSS are read from ``/proc``
without the publisher (the embedded server, in this process) mixed in.  The plugin
measures what only it can see: when the first and last events reached it and, for a
steady stream, each event's latency from the server's send time (``data.t``, the same
clock, same host).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

NOOP_PLUGIN = """
import json, os, time

OUT = os.environ["BENCH_OUT"]
state = {"n": 0, "first": None, "lat": []}

def register(session, **kwargs):
    def noop(event):
        now = time.time()
        if state["first"] is None:
            state["first"] = now
        state["n"] += 1
        sent = event["data"].get("t")
        if sent is not None:
            state["lat"].append(now - sent)
        if event["data"].get("flush"):
            lat = sorted(state["lat"])
            figures = {"count": state["n"], "first": state["first"], "last": now}
            if lat:
                figures["p50_ms"] = lat[len(lat) // 2] * 1000
                figures["p99_ms"] = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
            tmp = OUT + ".tmp"
            with open(tmp, "w") as handle:
                json.dump(figures, handle)
            os.replace(tmp, OUT)
            state["first"] = None
            state["lat"] = []
    session.event_hub.subscribe("topic=bench.*", noop)
"""


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process *pid* (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def proc_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class DaemonRig:
    """Embedded server + ``reviewd`` process with the no-op plugin (it writes its
    figures when an event says ``flush``: the last of each burst or stream)."""

    def __init__(self, extra_env: dict[str, str] | None = None) -> None:
        from reviewd.devserver import DevServer

        self.tmp = Path(tempfile.mkdtemp(prefix="reviewd-bench-"))
        (self.tmp / "plugins").mkdir()
        (self.tmp / "plugins" / "noop.py").write_text(textwrap.dedent(NOOP_PLUGIN))
        self.out = self.tmp / "figures.json"
        self.journal = self.tmp / "journal.sqlite3"
        self.server = DevServer(seed="empty").start()
        self.port = _free_port()
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("FTRACK_", "REVIEWD_", "NOTIFY_SOCKET"))
        }
        env.update(
            {
                "FTRACK_SERVER": self.server.url,
                "FTRACK_API_USER": self.server.api_user,
                "FTRACK_API_KEY": self.server.api_key,
                "FTRACK_EVENT_PLUGIN_PATH": str(self.tmp / "plugins"),
                "REVIEWD_JOURNAL": str(self.journal),
                "REVIEWD_HTTP": f"127.0.0.1:{self.port}",
                "REVIEWD_STATE_DIR": str(self.tmp / "state"),
                "REVIEWD_LOG_LEVEL": "warning",
                "REVIEWD_LOG_FORMAT": "json",
                "BENCH_OUT": str(self.out),
                "PYTHONPATH": str(ROOT),
            }
        )
        env.update(extra_env or {})
        self.stderr = open(self.tmp / "daemon.stderr", "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "reviewd.daemon.cli"],
            env=env,
            cwd=str(self.tmp),
            stdout=subprocess.DEVNULL,
            stderr=self.stderr,
        )
        self._wait(lambda: self._get("/readyz") == 200, 120, "the daemon to be ready")
        self._wait(self._subscribed, 60, "the no-op plugin's subscription")

    def _get(self, path: str) -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return r.status
        except Exception:  # noqa: BLE001 - not up yet
            return 0

    def status(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/status", timeout=10) as r:
            return json.loads(r.read())

    def _subscribed(self) -> bool:
        return any(
            "bench." in sub["subscription"]
            for conn in self.server.events.connections()
            for sub in conn["subscribers"]
        )

    def _wait(self, condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"reviewd exited while waiting for {what}: "
                    f"{(self.tmp / 'daemon.stderr').read_text()[-2000:]}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.02)

    def cpu(self) -> float:
        return proc_cpu_seconds(self.proc.pid)

    def rss(self) -> int:
        return proc_rss_bytes(self.proc.pid)

    def figures(self, count: int, timeout: float = 1800) -> dict:
        """Wait until the plugin reported *count* events in total; its last figures."""

        def done():
            try:
                return json.loads(self.out.read_text())["count"] >= count
            except (OSError, ValueError):
                return False

        self._wait(done, timeout, f"{count} events at the plugin")
        return json.loads(self.out.read_text())

    def burst(self, total: int, start: int = 0) -> None:
        """Publish *total* events as fast as the daemon's connection takes them."""
        events = self.server.events
        source = {"id": "bench-source", "user": {"username": "bench"}}

        async def run() -> None:
            for first in range(start, start + total, 500):
                for i in range(first, min(start + total, first + 500)):
                    data = {"i": i, "flush": i == start + total - 1}
                    await events.publish({"topic": "bench.noop", "data": data, "source": source})
                while any(c.outbox.qsize() > 2000 for c in events._open_connections()):
                    await asyncio.sleep(0.0005)

        asyncio.run_coroutine_threadsafe(run(), events.loop).result(3600)

    def steady(self, rate: float, seconds: float) -> None:
        """Publish at a steady *rate* for *seconds*, each event stamped with its send time."""
        events = self.server.events
        source = {"id": "bench-source", "user": {"username": "bench"}}
        total = int(rate * seconds)

        async def run() -> None:
            begin = time.monotonic()
            for i in range(total):
                delay = begin + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                data = {"i": i, "t": time.time(), "flush": i == total - 1}
                await events.publish({"topic": "bench.steady", "data": data, "source": source})

        asyncio.run_coroutine_threadsafe(run(), events.loop).result(seconds * 3 + 600)

    def journal_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal"):
            try:
                total += os.path.getsize(str(self.journal) + suffix)
            except OSError:
                pass
        return total

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()
        self.server.stop()
        import shutil

        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> DaemonRig:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
