"""Hostile events at the embedded server (issue 14, finding 4).

Before the fix an event holding a lone surrogate killed the writer task of every
connection it was routed to (nothing more was delivered to them), and an
``inReplyToEvent`` sent as an object dropped the sender's connection with a TypeError.
"""

from __future__ import annotations

import json

import pytest

from tests.devserver_events.devserver_events_support import EventApp, RawClient, wire_event
from tests.support import wait_until


@pytest.fixture
def event_app():
    with EventApp(heartbeat_interval=0.3, heartbeat_timeout=1.5) as app:
        yield app


def test_lone_surrogate_event_is_delivered_and_the_writer_lives_on(event_app):
    with RawClient(event_app) as subscriber, RawClient(event_app) as publisher:
        assert subscriber.subscribe("topic=hostile.*") == {"success": True}
        # The wire form is ASCII JSON with the escape; the server decodes it to a lone
        # surrogate and must re-encode it for every subscriber.
        frame = "5:1+::" + json.dumps(
            {"name": "ftrack.event", "args": [wire_event("hostile.surrogate", {"text": "\ud800"})]}
        )
        publisher.send(frame)
        assert publisher.wait_ack("1")["success"] is True
        got = subscriber.wait_event(lambda e: e["topic"] == "hostile.surrogate")
        assert got["data"]["text"] == "\ud800"
        for n in range(5):  # the same connection still receives what follows
            publisher.emit_packet(wire_event("hostile.after", {"n": n}))
        wait_until(
            lambda: len([e for e in subscriber.events() if e["topic"] == "hostile.after"]) == 5,
            10,
            message="events after the surrogate one",
        )


def test_in_reply_to_event_as_an_object_is_refused_not_fatal(event_app):
    with RawClient(event_app) as publisher, RawClient(event_app) as subscriber:
        subscriber.subscribe("topic=hostile.*")
        event = wire_event("hostile.reply", {}, inReplyToEvent={"id": "x"})
        ack = publisher.publish(event)
        assert ack["success"] is False and "inReplyToEvent" in ack["message"]
        # The sender's connection is still there and works.
        assert publisher.publish(wire_event("hostile.ok", {})) == {"success": True}
        subscriber.wait_event(lambda e: e["topic"] == "hostile.ok")
