"""Running the real ``reviewd`` process in tests: start, probe over HTTP, stop, read output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support import (
    free_port,
    http_get,
    server_env,
    stop_process,
    wait_process_ready,
    wait_until,
    write_source,
)

REPO = Path(__file__).resolve().parents[2]


def wait_for(condition, timeout: float = 20.0, interval: float = 0.05, message: str = ""):
    """:func:`tests.support.wait_until` with the daemon suite's defaults: 20 s, every
    50 ms, since each wait spans a real process (start-up, delivery, a retry)."""
    return wait_until(condition, timeout, interval, message)


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without any ftrack/reviewd/systemd settings, plus *extra*."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            (
                "FTRACK_",
                "REVIEWD_",
                "NOTIFY_SOCKET",
                "WATCHDOG_",
                "CREDENTIALS_DIRECTORY",
                "JOURNAL_STREAM",
                "STATE_DIRECTORY",
            )
        )
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def write_plugin(directory: Path, name: str, source: str) -> Path:
    """Write the plugin module ``directory/<name>.py`` from indented *source*."""
    return write_source(directory / f"{name}.py", source)


def lines_of(path: Path) -> list[str]:
    try:
        return path.read_text().split()
    except FileNotFoundError:
        return []


class DaemonProcess:
    """One ``reviewd`` process with its output captured to files."""

    def __init__(
        self,
        tmp: Path,
        args: list[str] = (),
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        name: str = "daemon",
        executable: list[str] | None = None,
    ) -> None:
        self.port = free_port()
        self.tmp = tmp
        self.stdout_path = tmp / f"{name}.stdout"
        self.stderr_path = tmp / f"{name}.stderr"
        full_env = clean_env(
            REVIEWD_HTTP=f"127.0.0.1:{self.port}", REVIEWD_STATE_DIR=str(tmp / "state")
        )
        full_env.update(env or {})
        self.env = full_env
        command = executable or [sys.executable, "-m", "reviewd.daemon.cli"]
        self.proc = subprocess.Popen(
            [*command, *args],
            env=full_env,
            cwd=str(cwd or tmp),
            stdout=open(self.stdout_path, "w"),
            stderr=open(self.stderr_path, "w"),
        )

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str) -> tuple[int, str]:
        return http_get(self.base + path)

    def status(self) -> dict:
        code, body = self.get("/status")
        return json.loads(body) if code == 200 else {}

    def wait_ready(self, timeout: float = 30.0) -> dict:
        wait_process_ready(
            self.proc,
            lambda: self.get("/readyz")[0] == 200,
            self.output,
            timeout,
            0.05,
            "reviewd /readyz to answer 200",
        )
        return self.status()

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 30.0) -> int:
        return stop_process(self.proc, timeout)

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
    return server_env(server, **{"REVIEWD_LOG_FORMAT": "json", **extra})
