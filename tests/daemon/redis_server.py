"""A private ``redis-server`` for the scale-out tests: started, stopped and restarted on
the same port and data directory, with ``appendonly yes`` so that a restart keeps
everything the replicas wrote (the production setting for a reviewd journal)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.conftest import require
from tests.support import free_port, wait_until


class RedisServer:
    """One redis-server process; ``url`` stays valid across :meth:`restart`."""

    def __init__(self, directory: Path, appendonly: bool = True) -> None:
        require(shutil.which("redis-server") is not None, "redis-server is not installed")
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.appendonly = appendonly
        self.proc: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--save",
                "",
                "--appendonly",
                "yes" if self.appendonly else "no",
                "--appendfsync",
                "everysec",
            ],
            stdout=open(self.directory / "redis.log", "a"),
            stderr=subprocess.STDOUT,
        )
        wait_until(self.ping, 20, 0.05, "redis-server to answer")
        return self

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def client(self):
        import redis

        return redis.Redis.from_url(self.url, decode_responses=True)

    def stop(self) -> None:
        """A clean shutdown (SIGTERM): Redis writes its append-only file and exits."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def version(self) -> tuple[int, ...]:
        info = self.client().info("server")
        return tuple(int(p) for p in str(info["redis_version"]).split(".")[:2])
