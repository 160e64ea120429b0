"""Fixtures of the reliability tests: a devserver *process* and a reviewd process."""

from __future__ import annotations

import pytest

from reliability.processes import DaemonProcess, ServerProcess


@pytest.fixture
def server_process(tmp_path):
    (tmp_path / "server").mkdir()
    server = ServerProcess(tmp_path / "server").start()
    yield server
    server.stop()


@pytest.fixture
def daemon_process(tmp_path, server_process):
    (tmp_path / "daemon").mkdir()
    daemon = DaemonProcess(tmp_path / "daemon", server_process.url).start()
    daemon.wait_ready()
    yield daemon
    daemon.stop()
