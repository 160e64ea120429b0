"""The systemd unit: a dynamic user with its state directory, a finite start timeout
that the daemon extends (EXTEND_TIMEOUT_USEC) while it waits for the server, and the
sandboxing score ``systemd-analyze security`` gives it (printed for the report)."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import uuid

from reviewd.devserver import DevServer
from tests.conftest import require
from tests.daemon.daemon_harness import REPO, DaemonProcess, wait_for
from tests.support import free_port

#: The worst exposure score (0 safest, 10 unsafe) the unit may reach; 1.3 when written.
MAX_EXPOSURE = 2.0


def unit_text() -> str:
    return (REPO / "reviewd.service").read_text()


def test_unit_creates_its_user_and_state_and_has_a_finite_start_timeout():
    unit = unit_text()
    assert re.search(r"^DynamicUser=yes$", unit, re.M)
    assert re.search(r"^StateDirectory=reviewd$", unit, re.M)
    timeout = re.search(r"^TimeoutStartSec=(\S+)$", unit, re.M).group(1)
    assert timeout != "infinity" and 0 < int(timeout.rstrip("s")) <= 300
    assert re.search(r"^Type=notify$", unit, re.M)


def test_systemd_analyze_security_score(tmp_path, record_property):
    require(shutil.which("systemd-analyze") is not None, "systemd-analyze is not installed")
    entry = REPO / ".venv" / "bin" / "reviewd"
    target = str(entry) if entry.exists() else shutil.which("reviewd") or sys.executable
    copy = tmp_path / "reviewd.service"
    copy.write_text(unit_text().replace("/usr/local/bin/reviewd", target))
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(copy)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    match = re.search(r"Overall exposure level for reviewd\.service: ([\d.]+) (\w+)", result.stdout)
    assert match, result.stdout[-2000:]
    score = float(match.group(1))
    record_property(
        "figure: systemd-analyze security (reviewd.service exposure)", f"{score} {match.group(2)}"
    )
    assert score <= MAX_EXPOSURE, result.stdout


def test_waiting_for_the_server_extends_the_start_timeout(tmp_path):
    """While the server is down each attempt sends EXTEND_TIMEOUT_USEC (at least the
    backoff cap), then READY=1 once it is up."""
    notify = str(tmp_path / "notify.sock")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(notify)
    receiver.settimeout(0.2)
    port = free_port()
    key = "extend-key-" + uuid.uuid4().hex
    daemon = DaemonProcess(
        tmp_path,
        [],
        env={
            "NOTIFY_SOCKET": notify,
            "FTRACK_SERVER": f"http://127.0.0.1:{port}",
            "FTRACK_API_USER": "admin",
            "FTRACK_API_KEY": key,
            "REVIEWD_CONNECT_BACKOFF_MAX": "0.5",
            "REVIEWD_PLUGINS_REQUIRED": "false",
        },
    )
    messages: list[str] = []

    def receive() -> list[str]:
        while True:
            try:
                messages.append(receiver.recv(4096).decode())
            except TimeoutError:
                return messages

    server = None
    try:
        wait_for(
            lambda: sum("EXTEND_TIMEOUT_USEC=" in m for m in receive()) >= 3,
            timeout=30,
            message="three extensions while the server is down",
        )
        assert not any("READY=1" in m for m in messages)
        extensions = [
            int(m.split("EXTEND_TIMEOUT_USEC=")[1].split()[0])
            for m in messages
            if "EXTEND_TIMEOUT_USEC=" in m
        ]
        assert min(extensions) >= 0.5 * 1_000_000
        server = DevServer(seed="demo", port=port, api_user="admin", api_key=key).start()
        wait_for(
            lambda: any(m.startswith("READY=1") for m in receive()),
            timeout=30,
            message="READY=1 once the server is up",
        )
    finally:
        code = daemon.stop()
        receiver.close()
        if server is not None:
            server.stop()
    assert code == 0, daemon.output()
