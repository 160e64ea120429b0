"""Running the real ``reviewd`` process in tests: start, probe over HTTP, stop, read output."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition, timeout: float = 20.0, interval: float = 0.05, message: str = ""):
    """Poll *condition* until it returns something truthy; fail after *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message or condition}")
        time.sleep(interval)


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except (urllib.error.URLError, OSError):
        return 0, ""


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without any ftrack/reviewd/systemd settings, plus *extra*."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FTRACK_", "REVIEWD_", "NOTIFY_SOCKET", "WATCHDOG_",
                                "CREDENTIALS_DIRECTORY", "JOURNAL_STREAM", "STATE_DIRECTORY"))}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def write_plugin(directory: Path, name: str, source: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    return path


def lines_of(path: Path) -> list[str]:
    try:
        return path.read_text().split()
    except FileNotFoundError:
        return []


class DaemonProcess:
    """One ``reviewd`` process with its output captured to files."""

    def __init__(self, tmp: Path, args: list[str] = (), env: dict[str, str] | None = None,
                 cwd: Path | None = None, name: str = "daemon",
                 executable: list[str] | None = None) -> None:
        self.port = free_port()
        self.tmp = tmp
        self.stdout_path = tmp / f"{name}.stdout"
        self.stderr_path = tmp / f"{name}.stderr"
        full_env = clean_env(REVIEWD_HTTP=f"127.0.0.1:{self.port}",
                             REVIEWD_STATE_DIR=str(tmp / "state"))
        full_env.update(env or {})
        self.env = full_env
        command = executable or [sys.executable, "-m", "reviewd.daemon.cli"]
        self.proc = subprocess.Popen(
            [*command, *args], env=full_env, cwd=str(cwd or tmp),
            stdout=open(self.stdout_path, "w"), stderr=open(self.stderr_path, "w"))

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str) -> tuple[int, str]:
        return http_get(self.base + path)

    def status(self) -> dict:
        code, body = self.get("/status")
        return json.loads(body) if code == 200 else {}

    def wait_ready(self, timeout: float = 30.0) -> dict:
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"reviewd exited with {self.proc.returncode}:\n{self.output()}")
            return self.get("/readyz")[0] == 200
        wait_for(ready, timeout, message="reviewd /readyz to answer 200")
        return self.status()

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def output(self) -> str:
        text = ""
        for path in (self.stdout_path, self.stderr_path):
            if path.exists():
                text += path.read_text()
        return text

    def log_records(self) -> list[dict]:
        records = []
        for line in self.stderr_path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        return records


def service_env(server, **extra: str) -> dict[str, str]:
    """Environment for a daemon connecting to *server* as a service would."""
    env = {"FTRACK_SERVER": server.url, "FTRACK_API_USER": server.api_user,
           "FTRACK_API_KEY": server.api_key, "REVIEWD_LOG_FORMAT": "json"}
    env.update(extra)
    return env
