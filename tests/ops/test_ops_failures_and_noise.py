"""Readable failures (a raising handler's frames at error level, console and JSON; the
emit command saying what a failed action replied) and log noise (no-op outcomes at
debug, one line per plugin load)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

from reviewd.plugin.helpers import ActionLog
from tests.daemon.daemon_harness import (
    DaemonProcess,
    clean_env,
    service_env,
    wait_for,
    write_plugin,
)
from tests.support import server_env

RAISING = """
    def register(session, **kwargs):
        session.event_hub.subscribe("topic=ops.boom", on_boom)


    def on_boom(event):
        explode(event["data"]["n"])


    def explode(n):
        raise RuntimeError(f"boom from my plugin ({n})")
"""

FAILING_ACTION = """
    def register(session, **kwargs):
        session.event_hub.subscribe("topic=ftrack.action.launch", launch)


    def launch(event):
        return {"success": False, "message": "render farm is full"}
"""


def _line_of(path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_handler_exception_is_an_error_line_with_the_plugins_frames_in_json(tmp_path, devserver):
    plugins = tmp_path / "plugins"
    source = write_plugin(plugins, "boom", RAISING)
    daemon = DaemonProcess(
        tmp_path,
        [],
        env=service_env(devserver, FTRACK_EVENT_PLUGIN_PATH=str(plugins), REVIEWD_MAX_ATTEMPTS="1"),
    )
    try:
        daemon.wait_ready(timeout=40)
        devserver.emit("ops.boom", {"n": 7})

        def raised():
            return [r for r in daemon.log_records() if r.get("event") == "handler raised"]

        [record] = wait_for(raised, message="the handler's failure to be logged")
        assert record["level"] == "error"
        assert record["plugin"] == "boom"
        assert record["error"] == "RuntimeError: boom from my plugin (7)"
        path = str(source.resolve())
        assert record["frames"] == [
            f"{path}:{_line_of(source, 'explode(event')} in on_boom",
            f"{path}:{_line_of(source, 'raise RuntimeError')} in explode",
        ]
    finally:
        assert daemon.stop() == 0


def test_handler_exception_frames_show_on_the_console(tmp_path, devserver):
    plugins = tmp_path / "plugins"
    source = write_plugin(plugins, "boom", RAISING)
    daemon = DaemonProcess(
        tmp_path,
        ["--log-format", "console"],
        env=server_env(devserver, FTRACK_EVENT_PLUGIN_PATH=str(plugins), REVIEWD_MAX_ATTEMPTS="1"),
    )
    try:
        daemon.wait_ready(timeout=40)
        devserver.emit("ops.boom", {"n": 8})
        expected = f"    at {source.resolve()}:{_line_of(source, 'raise RuntimeError')} in explode"
        wait_for(lambda: expected in daemon.output(), message="the plugin's frame on the console")
        lines = daemon.output().splitlines()
        index = next(i for i, line in enumerate(lines) if "handler raised" in line)
        assert "error" in lines[index].lower() and "boom from my plugin (8)" in lines[index]
        assert lines[index + 1].startswith("    at ") and "in on_boom" in lines[index + 1]
        assert lines[index + 2] == expected
    finally:
        assert daemon.stop() == 0


def test_emit_says_what_a_failed_action_replied(tmp_path, devserver):
    plugins = tmp_path / "plugins"
    write_plugin(plugins, "farm", FAILING_ACTION)
    daemon = DaemonProcess(
        tmp_path, [], env=service_env(devserver, FTRACK_EVENT_PLUGIN_PATH=str(plugins))
    )
    try:
        daemon.wait_ready(timeout=40)
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "reviewd.daemon.cli",
                "devserver",
                "emit",
                "ftrack.action.launch",
                "--data",
                '{"actionIdentifier": "x"}',
                "--wait-reply",
                "20",
            ],
            env=clean_env(**server_env(devserver)),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 70, done.stderr
        assert "the handler of ftrack.action.launch failed: render farm is full" in done.stderr
        assert "subscribed" not in done.stderr
        assert '"success": false' in done.stdout
    finally:
        assert daemon.stop() == 0


def test_noop_outcomes_log_at_debug_and_still_count(caplog):
    actions = ActionLog("quiet_ops_test")
    with caplog.at_level(logging.DEBUG, logger="reviewd.plugins.quiet_ops_test"):
        actions.noop("unchanged", "%s stays %s", "SH010", "In progress")
        actions.count("rolled_up", "%s: %s -> %s", "SH020", "In progress", "Done")
    levels = {r.getMessage().split(" [")[0]: r.levelno for r in caplog.records}
    assert levels == {
        "SH010 stays In progress": logging.DEBUG,
        "SH020: In progress -> Done": logging.INFO,
    }
    assert actions.totals == {"unchanged": 1, "rolled_up": 1}


def _unchanged_count(daemon: DaemonProcess) -> float:
    code, text = daemon.get("/metrics")
    for line in text.splitlines() if code == 200 else []:
        if line.startswith('reviewd_plugin_status_rollup_actions_total{action="unchanged"}'):
            return float(line.split()[-1])
    return 0.0


def test_the_demo_logs_one_line_per_plugin_load_and_no_noop_at_info(tmp_path):
    """The demo as a new user runs it: the embedded server's simulated activity makes
    status_rollup decide "stays In progress" again and again; none of it at info."""
    plugins = os.path.join(os.path.dirname(__file__), "..", "..", "plugins")
    daemon = DaemonProcess(
        tmp_path,
        ["--embedded-server"],
        env={
            "FTRACK_EVENT_PLUGIN_PATH": os.path.abspath(plugins),
            "REVIEWD_SIMULATE": "10",
            "REVIEWD_LOG_FORMAT": "json",
        },
    )
    try:
        status = daemon.wait_ready(timeout=60)
        names = [n for n, p in status["plugins"].items() if p["loaded"]]
        assert "status_rollup" in names
        wait_for(
            lambda: _unchanged_count(daemon) >= 2,
            timeout=60,
            message="status_rollup to leave a parent unchanged twice",
        )
        records = daemon.log_records()
        for name in names:
            loads = [
                r
                for r in records
                if r.get("plugin") == name
                and "load" in str(r.get("event", ""))
                and r.get("level") == "info"
            ]
            assert len(loads) == 1, (name, loads)
        assert not [r for r in records if " stays " in str(r.get("event", ""))]
    finally:
        assert daemon.stop() == 0
