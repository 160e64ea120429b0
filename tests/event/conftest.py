"""Fixtures of the event hub tests: a real event server, hubs that always get closed."""

from __future__ import annotations

import pytest

from tests.event.event_harness import EventOnlyServer


@pytest.fixture
def event_server():
    """The real socket.io event server (fault switches included), heartbeats every 0.5 s."""
    with EventOnlyServer(heartbeat_interval=0.5, heartbeat_timeout=3.0) as server:
        yield server


@pytest.fixture
def make_hub():
    """Build EventHubs for a test and disconnect every one of them afterwards."""
    from reviewd.api.event.hub import EventHub

    hubs = []

    def make(server, **options):
        # These tests are about the hub's own threads (the daemon's model); the
        # ftrack_api model (callbacks inside wait()) has tests of its own.
        options.setdefault("dispatch_thread", True)
        hub = EventHub(server.url, server.api_user, server.api_key, **options)
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        if hub.running:
            hub.disconnect(unsubscribe=False, timeout=2.0)
