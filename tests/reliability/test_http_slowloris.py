"""Slowloris and connection floods on the daemon's HTTP listener (issue 14, finding 1).

Before the fix the listener kept one thread and one descriptor per idle connection
with no timeout: a few hundred idle sockets starved ``/healthz`` and the rest of the
process of descriptors.  These tests hold real idle and dribbling sockets against a
real listener and the real daemon.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time

from reviewd.daemon.http import HttpServer, Response
from tests.daemon.daemon_harness import DaemonProcess, lines_of, service_env, wait_for, write_plugin
from tests.daemon.test_daemon_acceptance_start import wait_subscribed
from tests.support import http_get, wait_until


class Probe:
    def health(self):
        return True, {"alive": True}

    def readiness(self):
        return True, {"ready": True, "reasons": []}

    def status(self):
        return {"ok": True}

    def metrics_text(self):
        return b"x 1\n"


def idle_sockets(address, count):
    """Open *count* TCP connections that never send a byte."""
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(address, timeout=5)
        sockets.append(sock)
    return sockets


def healthz_within(base: str, seconds: float = 1.0) -> int:
    """Status of /healthz, with the per-request timeout as the behaviour asserted."""
    code, _ = http_get(base + "/healthz", timeout=seconds)
    return code


def test_idle_connections_are_bounded_and_healthz_still_answers():
    server = HttpServer(Probe(), "127.0.0.1", 0, max_connections=32).start()
    base = "http://{}:{}".format(*server.address)
    sockets = idle_sockets(server.address, 300)
    try:
        for _ in range(20):
            assert healthz_within(base) == 200
        wait_until(lambda: server.connections.open_connections <= 32, 5, message="bound")
        assert server.connections.open_connections <= 32
        assert server.connections.evicted >= 300 - 32
        assert threading.active_count() < 40  # no thread per idle socket
    finally:
        for sock in sockets:
            sock.close()
        server.stop()


def test_dribbling_client_is_cut_off_at_the_header_deadline():
    server = HttpServer(Probe(), "127.0.0.1", 0, header_timeout=0.5).start()
    try:
        sock = socket.create_connection(server.address, timeout=5)
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        deadline = time.monotonic() + 5
        closed = False
        while time.monotonic() < deadline:
            try:
                sock.sendall(b"X-a: b\r\n")
                if sock.recv(1, socket.MSG_DONTWAIT) == b"":
                    closed = True
                    break
            except BlockingIOError:
                pass
            except OSError:
                closed = True
                break
            time.sleep(0.05)
        assert closed, "a client that never finishes its headers must be disconnected"
        assert server.connections.timed_out >= 1
    finally:
        server.stop()


def test_slow_route_does_not_block_healthz():
    release = threading.Event()
    server = HttpServer(Probe(), "127.0.0.1", 0)
    server.add_route("/slow", lambda request: (release.wait(10), Response(200, b"{}"))[1])
    server.start()
    base = "http://{}:{}".format(*server.address)
    try:
        slow = [
            threading.Thread(target=http_get, args=(base + "/slow",), kwargs={"timeout": 15})
            for _ in range(8)
        ]
        for thread in slow:
            thread.start()
        wait_until(lambda: server.connections.open_connections >= 8, 5, message="slow requests")
        assert healthz_within(base) == 200
        release.set()
        for thread in slow:
            thread.join()
    finally:
        release.set()
        server.stop()


def test_bad_requests_get_clear_errors():
    server = HttpServer(Probe(), "127.0.0.1", 0).start()
    try:
        for raw, code in (
            (b"POST /healthz HTTP/1.1\r\n\r\n", b" 405 "),
            (b"nonsense\r\n\r\n", b" 400 "),
            (b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n", b" 431 "),
        ):
            with socket.create_connection(server.address, timeout=5) as sock:
                sock.sendall(raw)
                assert code in sock.recv(200)
    finally:
        server.stop()


COUNTER = """
    import os

    OUT = os.environ["COUNT_OUT"]

    def register(session, **kwargs):
        def on_event(event):
            with open(OUT, "a") as handle:
                handle.write(event["id"] + "\\n")
        session.event_hub.subscribe("topic=test.flow", on_event)
"""


def descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_500_idle_connections_while_events_flow(tmp_path, devserver):
    """Acceptance 2: /healthz answers within 1 s throughout, no handler fails, the
    daemon's descriptors stay bounded."""
    plugins = tmp_path / "plugins"
    write_plugin(plugins, "counter", COUNTER)
    out = tmp_path / "out.txt"
    env = service_env(
        devserver,
        FTRACK_EVENT_PLUGIN_PATH=str(plugins),
        REVIEWD_JOURNAL=str(tmp_path / "journal.sqlite3"),
        COUNT_OUT=str(out),
    )
    daemon = DaemonProcess(tmp_path, [], env=env)
    try:
        daemon.wait_ready()
        wait_subscribed(devserver, "test.flow")
        baseline = descriptors(daemon.proc.pid)
        stop = threading.Event()
        sent = []

        def flow():
            n = 0
            while not stop.is_set() and n < 400:
                devserver.emit("test.flow", {"n": n})
                sent.append(n)
                n += 1
                stop.wait(0.01)

        emitter = threading.Thread(target=flow)
        emitter.start()
        sockets = idle_sockets(("127.0.0.1", daemon.port), 500)
        peak = 0
        try:
            for _ in range(30):
                assert healthz_within(daemon.base) == 200
                peak = max(peak, descriptors(daemon.proc.pid))
        finally:
            stop.set()
            emitter.join()
        wait_for(
            lambda: len(set(lines_of(out))) >= len(sent), timeout=60, message="every event handled"
        )
        assert healthz_within(daemon.base) == 200
        for sock in sockets:
            sock.close()
        status = daemon.status()
        counter = status["plugins"]["counter"]
        assert counter.get("failed", 0) == 0 and not status.get("dead_letters")
        assert peak <= baseline + 128 + 16, (baseline, peak)
        assert "Too many open files" not in daemon.output()
    finally:
        assert daemon.stop() == 0, daemon.output()
    print(json.dumps({"baseline_fds": baseline, "peak_fds": peak}))
