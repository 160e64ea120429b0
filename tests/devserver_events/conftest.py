"""Fixtures of the event-server tests: a bare event server on a real port."""

from __future__ import annotations

import pytest

from tests.devserver_events.devserver_events_support import EventApp


@pytest.fixture
def event_app():
    """A fresh event server with short heartbeats, so timeouts show within a test."""
    with EventApp(
        heartbeat_interval=0.3,
        heartbeat_timeout=1.5,
        max_frame_bytes=64 * 1024,
        max_subscriptions_per_connection=50,
    ) as app:
        yield app
