"""HTTP endpoints, sd_notify over a real datagram socket, logging redaction, metrics."""

from __future__ import annotations

import io
import json
import logging
import os
import socket

import pytest
import structlog

from reviewd.api.exception import register_secret
from reviewd.daemon import logging as daemon_logging
from reviewd.daemon.http import HttpServer
from reviewd.daemon.metrics import Metrics
from reviewd.daemon.systemd import Notifier, watchdog_interval
from tests.conftest import require
from tests.support import http_get

SECRET = "obs-secret-key-31337"


@pytest.fixture(autouse=True)
def restore_logging():
    """These tests configure process-wide logging; put it back for other tests."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()


class StaticProbe:
    """A probe answering from fixed values (the listener is what is under test)."""

    def __init__(self, ready=True):
        self.ready = ready
        self.metrics_registry = Metrics()

    def health(self):
        return True, {"alive": True}

    def readiness(self):
        if self.ready:
            return True, {"ready": True, "reasons": []}
        return False, {"ready": False, "reasons": ["plugin slow is stuck"]}

    def status(self):
        return {"version": "x", "note": f"key is {SECRET}"}

    def metrics_text(self):
        return self.metrics_registry.render()


def test_http_endpoints_and_redaction():
    register_secret(SECRET)
    probe = StaticProbe(ready=False)
    server = HttpServer(probe, "127.0.0.1", 0).start()
    try:
        base = "http://{}:{}".format(*server.address)
        assert http_get(base + "/healthz")[0] == 200
        code, body = http_get(base + "/readyz")
        assert code == 503 and json.loads(body)["reasons"] == ["plugin slow is stuck"]
        probe.ready = True
        assert http_get(base + "/readyz")[0] == 200
        code, body = http_get(base + "/status")
        assert code == 200 and SECRET not in body and "***" in body
        code, body = http_get(base + "/metrics")
        assert code == 200 and "reviewd_build_info" in body
        assert http_get(base + "/nope")[0] == 404
    finally:
        server.stop()


def test_snapshot_metrics_are_read_at_scrape_time():
    metrics = Metrics()
    state = {
        "hub_connected": False,
        "plugins": {"p": {"queue_depth": 3, "in_flight": 1, "stuck": None}},
    }
    metrics.add_snapshot(lambda: state)
    text = metrics.render().decode()
    assert "reviewd_hub_connected 0.0" in text
    assert 'reviewd_queue_depth{plugin="p"} 3.0' in text
    state["hub_connected"] = True
    state["plugins"]["p"]["stuck"] = "handler running"
    text = metrics.render().decode()
    assert "reviewd_hub_connected 1.0" in text
    assert 'reviewd_plugin_stuck{plugin="p"} 1.0' in text


def test_sd_notify_messages_arrive_on_a_datagram_socket(tmp_path):
    path = str(tmp_path / "notify.sock")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(path)
    receiver.settimeout(5)
    notifier = Notifier(path)
    assert notifier.ready("ready: 2 plugins")
    assert notifier.status("hub connected\nline two")
    assert notifier.watchdog()
    assert notifier.stopping()
    messages = [receiver.recv(4096).decode() for _ in range(4)]
    assert messages == [
        "READY=1\nSTATUS=ready: 2 plugins",
        "STATUS=hub connected line two",
        "WATCHDOG=1",
        "STOPPING=1\nSTATUS=stopping",
    ]
    notifier.close()
    receiver.close()


def test_sd_notify_abstract_socket_and_no_socket():
    name = f"reviewd-test-{os.getpid()}"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind("\0" + name)
    receiver.settimeout(5)
    assert Notifier("@" + name).watchdog()
    assert receiver.recv(100) == b"WATCHDOG=1"
    receiver.close()
    assert Notifier("").ready() is False  # outside systemd: a no-op


def test_watchdog_interval(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "10000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert watchdog_interval() == 5.0
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert watchdog_interval() is None  # meant for another process
    monkeypatch.delenv("WATCHDOG_USEC")
    monkeypatch.delenv("WATCHDOG_PID")
    assert watchdog_interval() is None


def test_json_logs_carry_context_and_never_the_key():
    register_secret(SECRET)
    stream = io.StringIO()
    daemon_logging.configure("debug", "json", stream=stream)
    log = structlog.get_logger("reviewd.test")
    with structlog.contextvars.bound_contextvars(event_id="ev-1", plugin="p1"):
        log.info("handled", detail=f"url with {SECRET}")
        logging.getLogger("some.plugin").warning("stdlib line %s", SECRET)
        try:
            raise RuntimeError(f"failed with {SECRET}")
        except RuntimeError:
            log.exception("boom")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 3
    assert all(line["event_id"] == "ev-1" and line["plugin"] == "p1" for line in lines)
    assert lines[1]["logger"] == "some.plugin" and lines[1]["level"] == "warning"
    assert SECRET not in stream.getvalue()
    assert "***" in lines[0]["detail"]


def test_console_format_and_auto_choice():
    stream = io.StringIO()
    assert daemon_logging.configure("info", "console", stream=stream) == "console"
    structlog.get_logger("x").info("hello console")
    assert "hello console" in stream.getvalue()
    assert daemon_logging.choose_format("auto", True, {}) == "console"
    assert daemon_logging.choose_format("auto", False, {}) == "json"
    if daemon_logging.journald_available():
        assert daemon_logging.choose_format("auto", False, {"JOURNAL_STREAM": "8:1"}) == "journald"


def test_journald_handler_sends_structured_fields():
    require(daemon_logging.journald_available(), "systemd-python is not installed")
    register_secret(SECRET)
    sent = []
    handler = daemon_logging.JournaldHandler()
    handler._send = lambda message, **fields: sent.append((message, fields))
    handler.setFormatter(
        daemon_logging.RedactingFormatter(
            foreign_pre_chain=[
                structlog.contextvars.merge_contextvars,
                structlog.stdlib.add_log_level,
                daemon_logging.redact_processor,
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    logger = logging.getLogger("journald.test")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        with structlog.contextvars.bound_contextvars(event_id="ev-9", plugin="p9"):
            logger.error("failed with %s", SECRET)
    finally:
        logger.removeHandler(handler)
    message, fields = sent[0]
    assert message == "failed with ***"
    assert fields["PRIORITY"] == "3" and fields["EVENT_ID"] == "ev-9"
    assert fields["PLUGIN"] == "p9" and fields["SYSLOG_IDENTIFIER"] == "reviewd"
