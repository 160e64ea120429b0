"""The processes a scenario drives: the embedded server and the ``reviewd`` daemon.

Both run as real child processes so that a scenario can SIGKILL, SIGSTOP and restart
them exactly as an operator's host would.  The server keeps its data in a file, so a
restarted server (same port, same key) is the same server to the daemon.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

API_USER = "reliability"
API_KEY = "reliability-key-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition, timeout: float, message: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class ServerProcess:
    """``reviewd devserver`` on a fixed port with file-backed data."""

    def __init__(
        self,
        workdir: Path,
        *,
        heartbeat_interval: float = 1.0,
        heartbeat_timeout: float = 4.0,
        port: int | None = None,
    ) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.heartbeat = (heartbeat_interval, heartbeat_timeout)
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> ServerProcess:
        self.starts += 1
        log = open(self.workdir / "server.log", "a")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reviewd.daemon.cli",
                "devserver",
                "--port",
                str(self.port),
                "--data",
                str(self.workdir / "server.sqlite3"),
                "--api-user",
                API_USER,
                "--api-key",
                API_KEY,
                "--heartbeat-interval",
                str(self.heartbeat[0]),
                "--heartbeat-timeout",
                str(self.heartbeat[1]),
            ],
            stdout=log,
            stderr=log,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        if wait:
            wait_until(
                lambda: _listening(self.port) or self.proc.poll() is not None,
                30,
                "the devserver to listen",
            )
            if self.proc.poll() is not None:
                raise RuntimeError((self.workdir / "server.log").read_text()[-2000:])
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


RECORDER = """
import os

OUT = os.environ["RELIABILITY_OUT"]

def register(session, **kwargs):
    def record(event):
        with open(OUT, "a") as handle:
            handle.write(str(event["id"]) + "\\n")
    session.event_hub.subscribe("topic=reliability.*", record)
"""


class DaemonProcess:
    """``reviewd`` with one recording plugin, a SQLite journal and the HTTP listener."""

    def __init__(
        self,
        workdir: Path,
        server_url: str,
        *,
        plugins: dict[str, str] | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.workdir = workdir
        self.server_url = server_url
        self.http_port = free_port()
        self.plugin_dir = workdir / "plugins"
        self.plugin_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.plugin_dir, 0o755)
        for name, source in {"recorder": RECORDER, **(plugins or {})}.items():
            (self.plugin_dir / f"{name}.py").write_text(source)
        self.out = workdir / "handled.txt"
        self.journal = workdir / "journal.sqlite3"
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.crashes = 0

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FTRACK_", "REVIEWD_"))}
        env.update(
            FTRACK_SERVER=self.server_url,
            FTRACK_API_USER=API_USER,
            FTRACK_API_KEY=API_KEY,
            FTRACK_EVENT_PLUGIN_PATH=str(self.plugin_dir),
            REVIEWD_JOURNAL=str(self.journal),
            REVIEWD_STATE_DIR=str(self.workdir),
            REVIEWD_HTTP=f"127.0.0.1:{self.http_port}",
            REVIEWD_LOG_FORMAT="json",
            RELIABILITY_OUT=str(self.out),
            PYTHONUNBUFFERED="1",
            # The harness stops the daemon after the scenario's accounting: waiting the
            # default 30 s for a deliberately hanging handler (the misbehaving plugins)
            # proves nothing and doubled that scenario's time.  Unfinished work stays
            # pending in the journal, as after any grace period that ran out.
            REVIEWD_GRACE_PERIOD="2",
        )
        env.update(self.extra_env)
        return env

    def start(self) -> DaemonProcess:
        self.starts += 1
        log = open(self.workdir / "daemon.log", "a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "reviewd.daemon.cli"], env=self.env(), stdout=log, stderr=log
        )
        return self

    def get(self, path: str, timeout: float = 2.0) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.http_port}{path}", timeout=timeout
            ) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except OSError:
            return 0, ""

    def status(self) -> dict:
        code, body = self.get("/status")
        return json.loads(body) if code == 200 else {}

    def wait_ready(self, timeout: float = 60) -> None:
        def ready():
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"reviewd exited {self.proc.returncode}: {self.log()[-3000:]}")
            return self.get("/readyz")[0] == 200

        wait_until(ready, timeout, "reviewd to be ready")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> int:
        if not self.alive():
            return self.proc.returncode if self.proc else 0
        self.proc.terminate()
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()
            return -9

    def log(self) -> str:
        path = self.workdir / "daemon.log"
        return path.read_text() if path.exists() else ""

    def handled(self) -> list[str]:
        try:
            return [canonical_id(i) for i in self.out.read_text().split()]
        except FileNotFoundError:
            return []

    def journaled(self) -> set[str]:
        """Ids of the reliability events the journal accepted: those it still holds, and
        those compaction already turned into de-duplication rows (every plugin of this
        harness subscribes to ``reliability.*`` only, so every compacted row is one)."""
        live, _done, compacted = self._journal_ids()
        return live | compacted

    def done_ids(self) -> set[str]:
        """Ids of the reliability events whose delivery the journal records as done
        (a compacted event is one every plugin finished)."""
        _live, done, compacted = self._journal_ids()
        return done | compacted

    def _journal_ids(self) -> tuple[set[str], set[str], set[str]]:
        if not self.journal.exists():
            return set(), set(), set()
        db = sqlite3.connect(str(self.journal))
        try:
            live = {
                row[0]
                for row in db.execute("SELECT id FROM events WHERE topic LIKE 'reliability.%'")
            }
            done = {
                row[0]
                for row in db.execute(
                    "SELECT e.id FROM events e JOIN deliveries d ON d.event_seq = e.seq "
                    "WHERE d.state = 'done' AND e.topic LIKE 'reliability.%'"
                )
            }
            try:
                compacted = {_id_text(row[0]) for row in db.execute("SELECT id FROM seen")}
            except sqlite3.OperationalError:  # a journal from before compaction existed
                compacted = set()
        finally:
            db.close()
        return {canonical_id(i) for i in live}, {canonical_id(i) for i in done}, compacted

    def pending(self) -> int:
        if not self.journal.exists():
            return 0
        db = sqlite3.connect(str(self.journal))
        try:
            return db.execute("SELECT count(*) FROM deliveries WHERE state = 'pending'").fetchone()[
                0
            ]
        finally:
            db.close()


def canonical_id(event_id: str) -> str:
    """One spelling per id (the journal's compact rows keep a UUID's 16 bytes only)."""
    try:
        return str(uuid.UUID(event_id))
    except ValueError:
        return event_id


def _id_text(key: bytes | str) -> str:
    """The id behind a compact de-duplication key (see ``journal.sqlite.seen_key``)."""
    if isinstance(key, bytes):
        return str(uuid.UUID(bytes=key)) if len(key) == 16 else key.decode("utf-8")
    return canonical_id(key)
