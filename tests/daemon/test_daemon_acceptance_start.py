"""Acceptance: the real ``reviewd`` process starting, notifying systemd, waiting for an
unreachable server, and never leaking the API key."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import uuid

from reviewd.devserver import DevServer
from tests.conftest import require

from .daemon_harness import (
    REPO,
    DaemonProcess,
    clean_env,
    free_port,
    lines_of,
    service_env,
    wait_for,
    write_plugin,
)

COUNTER = """
    import logging
    import os

    log = logging.getLogger("counter")
    OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "handled.txt")

    def register(session, **kwargs):
        def on_update(event):
            with open(OUT, "a") as handle:
                handle.write(event["id"] + "\\n")
            log.info("counted an update")
        session.event_hub.subscribe("topic=ftrack.update", on_update)
"""


def wait_subscribed(server, topic: str, timeout: float = 20.0) -> None:
    """Until the server holds a subscription for *topic* (events before that are not routed)."""

    def subscribed():
        return any(
            topic in sub["subscription"]
            for conn in server.events.connections()
            for sub in conn["subscribers"]
        )

    wait_for(subscribed, timeout, message=f"a subscription to {topic}")


def test_first_command_plugins_act_on_simulated_activity(tmp_path):
    """README's first command in a fresh directory that holds a plugins/ folder."""
    write_plugin(tmp_path / "plugins", "counter", COUNTER)
    reviewd = REPO / ".venv" / "bin" / "reviewd"
    executable = [str(reviewd)] if reviewd.exists() else None
    daemon = DaemonProcess(
        tmp_path, ["--foreground"], executable=executable, env={"REVIEWD_SIMULATE": "5"}
    )
    try:
        # Within 10 seconds of starting, the plugin has acted on simulated changes.
        wait_for(
            lambda: len(lines_of(tmp_path / "handled.txt")) >= 2,
            timeout=10,
            message="the plugin to handle simulated ftrack.update events",
        )
        result = subprocess.run(
            [sys.executable, "-m", "reviewd.daemon.cli", "status"],
            capture_output=True,
            text=True,
            timeout=30,
            env=clean_env(REVIEWD_HTTP=f"127.0.0.1:{daemon.port}"),
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "READY" in result.stdout and "(embedded)" in result.stdout
        counter_line = next(
            line for line in result.stdout.splitlines() if line.strip().startswith("counter")
        )
        handled = int(counter_line.split("handled ")[1].split(",")[0])
        assert handled >= 1
        # Console output for a human, with the plugin and event id on the plugin's lines.
        output = daemon.output()
        assert "counted an update" in output and "plugin=counter" in output
        assert "event_id=" in output
    finally:
        assert daemon.stop() == 0, daemon.output()


def test_repository_plugins_load_with_the_first_command(tmp_path):
    """From the repository root, the repository's own plugins/ are loaded."""
    plugin_files = [p for p in (REPO / "plugins").glob("*.py") if not p.name.startswith("_")]
    plugin_files += [p for p in (REPO / "plugins").glob("*/__init__.py")]
    require(bool(plugin_files), "the repository has no plugins/ yet (issue 8)")
    daemon = DaemonProcess(tmp_path, ["--foreground"], cwd=REPO)
    try:
        status = daemon.wait_ready(timeout=30)
        assert status["plugins"], daemon.output()
        assert all(str(REPO / "plugins") in info["source"] for info in status["plugins"].values())
    finally:
        assert daemon.stop() == 0, daemon.output()


def test_sd_notify_ready_status_watchdog_stopping_in_order(tmp_path, devserver):
    notify_path = str(tmp_path / "notify.sock")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(notify_path)
    receiver.settimeout(20)
    write_plugin(tmp_path / "plugins", "counter", COUNTER)
    env = service_env(
        devserver,
        NOTIFY_SOCKET=notify_path,
        WATCHDOG_USEC="400000",
        FTRACK_EVENT_PLUGIN_PATH=str(tmp_path / "plugins"),
    )
    daemon = DaemonProcess(tmp_path, [], env=env)
    messages: list[str] = []
    try:

        def receive_until(predicate):
            while not predicate():
                messages.append(receiver.recv(4096).decode())
            return True

        receive_until(lambda: any(m.startswith("WATCHDOG=1") for m in messages))
        daemon.signal(signal.SIGTERM)
        receive_until(lambda: any("STOPPING=1" in m for m in messages))
        assert daemon.proc.wait(30) == 0
    finally:
        daemon.kill()
        receiver.close()
    index = {
        key: next(i for i, m in enumerate(messages) if key in m)
        for key in ("STATUS=", "READY=1", "WATCHDOG=1", "STOPPING=1")
    }
    assert index["STATUS="] < index["READY=1"] < index["WATCHDOG=1"] < index["STOPPING=1"]
    ready = messages[index["READY=1"]]
    assert "STATUS=ready: 1 plugin(s)" in ready
    assert not any("WATCHDOG=1" in m for m in messages[: index["READY=1"]])


def test_unreachable_server_at_start_waits_then_becomes_ready(tmp_path):
    port = free_port()
    key = "wait-key-" + uuid.uuid4().hex
    env = {
        "FTRACK_SERVER": f"http://127.0.0.1:{port}",
        "FTRACK_API_USER": "admin",
        "FTRACK_API_KEY": key,
        "REVIEWD_CONNECT_BACKOFF_MAX": "0.5",
        "REVIEWD_LOG_FORMAT": "json",
        "REVIEWD_PLUGINS_REQUIRED": "false",
    }  # no plugin path: the server is under test
    daemon = DaemonProcess(tmp_path, [], env=env)
    server = None
    try:

        def retried_twice():
            status = daemon.status()
            return status and "attempt 3" in status.get("state", "")

        wait_for(retried_twice, timeout=30, message="three attempts to reach the server")
        code, body = daemon.get("/readyz")
        assert code == 503 and "connecting to" in body
        assert daemon.get("/healthz")[0] == 200
        assert daemon.proc.poll() is None  # it waits, it does not exit
        server = DevServer(seed="demo", port=port, api_user="admin", api_key=key).start()
        status = daemon.wait_ready(timeout=30)
        assert status["hub"]["connected"] is True
        warnings = [
            r for r in daemon.log_records() if r.get("event") == "server not reachable, will retry"
        ]
        assert len(warnings) >= 2
    finally:
        code = daemon.stop()
        if server is not None:
            server.stop()
    assert code == 0, daemon.output()


LEAKY = """
    import logging
    import os

    log = logging.getLogger("leaky")

    def register(session, **kwargs):
        key = os.environ["FTRACK_API_KEY"]

        def on_update(event):
            log.warning("about to fail with key %s", key)
            raise RuntimeError("the key is " + key)
        session.event_hub.subscribe("topic=test.leak", on_update)
"""


def test_api_key_never_appears_in_logs_metrics_or_status(tmp_path):
    key = "sekrit-" + uuid.uuid4().hex
    with DevServer(seed="demo", api_key=key, simulate=20) as server:
        write_plugin(tmp_path / "plugins", "leaky", LEAKY)
        write_plugin(tmp_path / "plugins", "counter", COUNTER)
        env = service_env(
            server,
            REVIEWD_LOG_LEVEL="debug",
            REVIEWD_MAX_ATTEMPTS="2",
            REVIEWD_RETRY_BACKOFF="0.05",
            FTRACK_EVENT_PLUGIN_PATH=str(tmp_path / "plugins"),
        )
        daemon = DaemonProcess(tmp_path, [], env=env)
        try:
            daemon.wait_ready()
            wait_subscribed(server, "test.leak")
            server.emit("test.leak", {"n": 1})
            wait_for(
                lambda: daemon.status().get("dead_letters"),
                timeout=20,
                message="the leaky plugin's event to be dead-lettered",
            )
            wait_for(lambda: len(lines_of(tmp_path / "handled.txt")) >= 2, timeout=20)
            captured = [daemon.get(p)[1] for p in ("/status", "/metrics", "/readyz", "/healthz")]
            cli = subprocess.run(
                [sys.executable, "-m", "reviewd.daemon.cli", "status", "--json"],
                capture_output=True,
                text=True,
                timeout=30,
                env=daemon.env,
            )
            journal_cli = subprocess.run(
                [sys.executable, "-m", "reviewd.daemon.cli", "journal", "list"],
                capture_output=True,
                text=True,
                timeout=30,
                env=daemon.env,
            )
        finally:
            assert daemon.stop() == 0, daemon.output()
    output = daemon.output()
    assert "about to fail with key ***" in output  # the plugin's line is there, redacted
    assert "RuntimeError: the key is ***" in journal_cli.stdout
    everything = "\n".join([output, *captured, cli.stdout, cli.stderr, journal_cli.stdout])
    assert key not in everything
    journal = json.loads(cli.stdout)["journal"]["path"]
    with open(journal, "rb") as handle:
        assert key.encode() not in handle.read()
    assert os.path.getsize(journal) > 0


def test_refused_credentials_exit_78_with_one_line(tmp_path, devserver):
    env = service_env(devserver, FTRACK_API_KEY="wrong-key-" + uuid.uuid4().hex)
    daemon = DaemonProcess(tmp_path, [], env=env)
    assert daemon.proc.wait(60) == 78
    last = daemon.stderr_path.read_text().strip().splitlines()[-1]
    assert last.startswith(
        "reviewd: configuration error: server.api_key: the ftrack server "
        f"at {devserver.url} refused user"
    )
    assert env["FTRACK_API_KEY"] not in daemon.output()


def test_http_address_in_use_exits_78(tmp_path, devserver):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        daemon = DaemonProcess(
            tmp_path, ["--http", f"127.0.0.1:{port}"], env=service_env(devserver)
        )
        assert daemon.proc.wait(60) == 78
    assert f"daemon.http: cannot listen on 127.0.0.1:{port}" in daemon.output()
    assert "--http ADDR:PORT" in daemon.output()  # the line names the fix, too
