"""TLS verification on by default, against a local self-signed server (issue 14, item 10).

The embedded server is put behind the harness's TLS-terminating proxy with a
certificate made here by the ``openssl`` CLI.  Without a CA bundle the daemon refuses
with one clear line and exit 78 (waiting cannot fix trust); with ``REVIEWD_CA_BUNDLE``
it connects both sockets (API and events) and delivers events.
"""

from __future__ import annotations

import ssl
from urllib.parse import urlsplit

import pytest

from reliability.proxy import FaultProxy
from tests.daemon.daemon_harness import DaemonProcess, lines_of, service_env, wait_for, write_plugin
from tests.daemon.test_daemon_acceptance_start import wait_subscribed

RECORD = """
    import os

    HERE = os.path.dirname(os.path.abspath(__file__))

    def register(session, **kwargs):
        def record(event):
            with open(os.path.join(HERE, "tls.txt"), "a") as handle:
                handle.write(event["id"] + "\\n")
        session.event_hub.subscribe("topic=test.tls", record)
"""


@pytest.fixture
def tls_front(devserver, certificate):
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    upstream = urlsplit(devserver.url)
    proxy = FaultProxy((upstream.hostname, upstream.port), tls=context).start()
    yield proxy
    proxy.stop()


def tls_env(devserver, proxy, tmp_path, **extra):
    env = service_env(devserver, FTRACK_EVENT_PLUGIN_PATH=str(tmp_path / "plugins"), **extra)
    env["FTRACK_SERVER"] = proxy.url
    env.pop("REQUESTS_CA_BUNDLE", None)
    env.pop("CURL_CA_BUNDLE", None)
    return env


def test_self_signed_server_is_refused_with_one_line_and_exit_78(tmp_path, devserver, tls_front):
    write_plugin(tmp_path / "plugins", "record", RECORD)
    daemon = DaemonProcess(tmp_path, [], env=tls_env(devserver, tls_front, tmp_path))
    code = daemon.proc.wait(60)
    stderr = daemon.stderr_path.read_text()
    assert code == 78, daemon.output()
    # Besides the structured log records, exactly one plain line for the operator.
    lines = [line for line in stderr.strip().splitlines() if not line.startswith("{")]
    assert len(lines) == 1, stderr
    assert "certificate verify failed" in lines[0] and "REVIEWD_CA_BUNDLE" in lines[0]
    assert "Traceback" not in daemon.output()


def test_configured_ca_bundle_connects_api_and_event_socket(
    tmp_path, devserver, tls_front, certificate
):
    write_plugin(tmp_path / "plugins", "record", RECORD)
    env = tls_env(devserver, tls_front, tmp_path, REVIEWD_CA_BUNDLE=str(certificate[0]))
    daemon = DaemonProcess(tmp_path, [], env=env)
    try:
        daemon.wait_ready()
        wait_subscribed(devserver, "test.tls")
        devserver.emit("test.tls", {})
        wait_for(lambda: lines_of(tmp_path / "plugins" / "tls.txt"), message="event over TLS")
        assert tls_front.connections["event"] >= 1 and tls_front.connections["api"] >= 1
    finally:
        assert daemon.stop() == 0, daemon.output()


def test_missing_ca_bundle_file_is_a_config_error(tmp_path):
    from tests.daemon.test_daemon_config import run_cli

    result = run_cli(
        "check-config",
        env={
            "FTRACK_SERVER": "https://127.0.0.1:9",
            "FTRACK_API_KEY": "k-123456",
            "REVIEWD_CA_BUNDLE": str(tmp_path / "nope.pem"),
        },
    )
    assert result.returncode == 78 and "server.ca_bundle" in result.stderr
