"""Honest readiness (failed plugin, empty plugin path, the relaxing setting), per-plugin
series that exist from load, standard process collectors, and the alert rules under
promtool."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

from reviewd.daemon.metrics import Metrics
from tests.conftest import require
from tests.daemon.daemon_harness import REPO, DaemonProcess, service_env, wait_for, write_plugin

GOOD = """
    import reviewd

    @reviewd.hookimpl
    def reviewd_register(registry, session):
        registry.subscribe("topic=ops.ping", lambda event: None)
"""

BROKEN = """
    raise RuntimeError("broken on purpose at import")
"""


def _readyz(daemon: DaemonProcess) -> tuple[int, dict]:
    code, body = daemon.get("/readyz")
    return code, json.loads(body) if body.strip().startswith("{") else {}


def _running(daemon: DaemonProcess) -> bool:
    return daemon.status().get("state") == "running"


def test_a_plugin_that_failed_to_load_makes_the_daemon_not_ready(tmp_path, devserver):
    plugins = tmp_path / "plugins"
    write_plugin(plugins, "good", GOOD)
    write_plugin(plugins, "broken", BROKEN)
    daemon = DaemonProcess(
        tmp_path, [], env=service_env(devserver, FTRACK_EVENT_PLUGIN_PATH=str(plugins))
    )
    try:
        wait_for(lambda: _running(daemon), timeout=40, message="the daemon to finish start-up")
        code, body = _readyz(daemon)
        assert code == 503
        assert any(
            r.startswith("plugin broken failed to load") and "broken on purpose" in r
            for r in body["reasons"]
        ), body
        # The good plugin still runs: one bad plugin hurts only itself.
        assert daemon.status()["plugins"]["good"]["loaded"] is True
    finally:
        assert daemon.stop() == 0


def test_an_empty_plugin_path_makes_the_daemon_not_ready_with_the_reason(tmp_path, devserver):
    empty = tmp_path / "nothing-here"
    empty.mkdir()
    daemon = DaemonProcess(
        tmp_path, [], env=service_env(devserver, FTRACK_EVENT_PLUGIN_PATH=str(empty))
    )
    try:
        wait_for(lambda: _running(daemon), timeout=40, message="the daemon to finish start-up")
        code, body = _readyz(daemon)
        assert code == 503
        [reason] = [r for r in body["reasons"] if r.startswith("no plugin loaded")]
        assert str(empty) in reason
    finally:
        assert daemon.stop() == 0


def test_plugins_required_false_relaxes_readiness(tmp_path, devserver):
    plugins = tmp_path / "plugins"
    write_plugin(plugins, "broken", BROKEN)
    daemon = DaemonProcess(
        tmp_path,
        [],
        env=service_env(
            devserver, FTRACK_EVENT_PLUGIN_PATH=str(plugins), REVIEWD_PLUGINS_REQUIRED="false"
        ),
    )
    try:
        status = daemon.wait_ready(timeout=40)
        # Still reported, just not counted against readiness.
        assert status["plugins"]["broken"]["loaded"] is False
        assert "broken on purpose" in status["plugins"]["broken"]["error"]
    finally:
        assert daemon.stop() == 0


def _sample(text: str, name: str, **labels: str) -> float | None:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.match(rf"^{name}\{{(.*)\}} (\S+)$", line)
        if match and ",".join(sorted(match.group(1).split(","))) == wanted:
            return float(match.group(2))
    return None


def test_every_per_plugin_series_exists_with_zero_after_load(tmp_path, devserver):
    plugins = tmp_path / "plugins"
    write_plugin(plugins, "good", GOOD)
    daemon = DaemonProcess(
        tmp_path, [], env=service_env(devserver, FTRACK_EVENT_PLUGIN_PATH=str(plugins))
    )
    try:
        daemon.wait_ready(timeout=40)
        code, text = daemon.get("/metrics")
        assert code == 200
        for name in (
            "reviewd_events_dead_lettered_total",
            "reviewd_events_failed_total",
            "reviewd_events_retried_total",
            "reviewd_events_succeeded_total",
            "reviewd_events_dispatched_total",
            "reviewd_handler_duration_seconds_count",
        ):
            assert _sample(text, name, plugin="good", topic="ops.ping") == 0.0, name
        for name in (
            "reviewd_events_replayed_total",
            "reviewd_handler_slow_total",
            "reviewd_handler_stuck_total",
            "reviewd_queue_overflow_total",
        ):
            assert _sample(text, name, plugin="good") == 0.0, name
        # Labels on one family, never a metric name per plugin.
        assert not re.search(r"^reviewd_\w*good\w*", text, re.M)
        # Standard process and platform collectors, read from this process.
        for name in (
            "process_resident_memory_bytes",
            "process_cpu_seconds_total",
            "process_open_fds",
            "process_max_fds",
            "process_start_time_seconds",
        ):
            assert re.search(rf"^{name} \d", text, re.M), name
        assert re.search(r'^python_info\{.*implementation="CPython"', text, re.M)
        assert float(re.search(r"^process_open_fds (\S+)", text, re.M).group(1)) > 3
    finally:
        assert daemon.stop() == 0


def test_add_plugin_creates_series_only_under_the_plugin_label():
    metrics = Metrics()
    metrics.add_plugin("alpha", ["ftrack.update", "ftrack.action.launch"])
    text = metrics.render().decode()
    assert (
        _sample(
            text, "reviewd_events_dead_lettered_total", plugin="alpha", topic="ftrack.action.launch"
        )
        == 0.0
    )
    assert _sample(text, "reviewd_queue_overflow_total", plugin="alpha") == 0.0
    assert _sample(text, "reviewd_queue_overflow_total", plugin="beta") is None


def _promtool(*args: str) -> subprocess.CompletedProcess:
    require(
        shutil.which("promtool") is not None,
        "promtool is not installed (Debian package 'prometheus')",
    )
    return subprocess.run(
        ["promtool", *args], cwd=REPO / "deploy", capture_output=True, text=True, timeout=120
    )


def test_promtool_check_rules_accepts_the_alert_rules():
    result = _promtool("check", "rules", "prometheus-alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_rule_tests_fire_on_the_first_dead_letter():
    tests_file = (REPO / "deploy" / "prometheus-alerts.test.yml").read_text()
    assert "ReviewdDeadLetters" in tests_file and "values: '0 0 0 0 0 1 1 1'" in tests_file
    result = _promtool("test", "rules", "prometheus-alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_a_refused_plugin_path_makes_the_daemon_not_ready_naming_the_refusal(tmp_path, devserver):
    shared = tmp_path / "world-writable"
    write_plugin(shared, "good", GOOD)
    shared.chmod(0o777)
    daemon = DaemonProcess(
        tmp_path, [], env=service_env(devserver, FTRACK_EVENT_PLUGIN_PATH=str(shared))
    )
    try:
        wait_for(lambda: _running(daemon), timeout=40, message="the daemon to finish start-up")
        code, body = _readyz(daemon)
        assert code == 503
        [reason] = [r for r in body["reasons"] if r.startswith("no plugin loaded")]
        assert str(shared) in reason and "writable" in reason, reason
    finally:
        assert daemon.stop() == 0
