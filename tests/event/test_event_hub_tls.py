"""TLS: verification on by default, ``verify=False``, a CA bundle path, REQUESTS_CA_BUNDLE."""

from __future__ import annotations

import ssl

import pytest

from reviewd.api.exception import EventHubConnectionError
from tests.event.event_harness import EventOnlyServer


@pytest.fixture
def tls_server(certificate):
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    with EventOnlyServer(
        heartbeat_interval=0.5, heartbeat_timeout=3.0, ssl_context=context
    ) as server:
        yield server


@pytest.fixture(autouse=True)
def no_ambient_bundle(monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


def _round_trip(hub, server):
    seen = []
    hub.subscribe("topic=studio.tls", seen.append)
    hub.connect(timeout=10)
    server.emit("studio.tls")
    from tests.event.event_harness import wait_for

    wait_for(lambda: seen, message="an event over TLS")


def test_hub_refuses_an_unknown_certificate_by_default(tls_server, make_hub):
    hub = make_hub(tls_server)
    with pytest.raises(EventHubConnectionError, match="(?i)certificate"):
        hub.connect(timeout=1.5)


@pytest.mark.filterwarnings("ignore:Unverified HTTPS request")
def test_hub_connects_over_tls_with_verification_off(tls_server, make_hub):
    assert tls_server.url.startswith("https://")
    _round_trip(make_hub(tls_server, verify=False), tls_server)


def test_hub_trusts_a_ca_bundle_given_as_verify(tls_server, make_hub, certificate):
    _round_trip(make_hub(tls_server, verify=str(certificate[0])), tls_server)


def test_hub_honours_requests_ca_bundle(tls_server, make_hub, certificate, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
    _round_trip(make_hub(tls_server), tls_server)
