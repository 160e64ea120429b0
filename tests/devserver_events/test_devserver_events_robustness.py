"""Bad input from one connection never stops the server or disturbs another connection.

Each test runs a *victim* pair (subscriber + publisher) whose traffic is checked after
an *offender* has done its worst: the victim must see every event, in order.
"""

from __future__ import annotations

import json

import pytest

from tests.devserver_events.devserver_events_support import RawClient, wait_until, wire_event


def assert_victim_traffic_intact(app, count: int = 20) -> None:
    """A fresh subscriber/publisher pair exchanges *count* events without loss."""
    with RawClient(app) as subscriber, RawClient(app) as publisher:
        assert subscriber.subscribe("topic=victim.traffic") == {"success": True}
        sent = [wire_event("victim.traffic", {"n": n}) for n in range(count)]
        for event in sent:
            publisher.emit_packet(event)
        wait_until(lambda: len(subscriber.events()) == count, message=f"{count} events")
        assert [e["data"]["n"] for e in subscriber.events()] == list(range(count))
        assert all(args[0] == {"success": True} for args in publisher.acks().values())


GARBAGE = [
    "hello",
    "",
    ":::",
    "9::",
    "5",
    "5:1+::{not json",
    '5:2+::{"name": "ftrack.event", "args": [1, 2]}',
    '5:3+::{"name": "not.ftrack", "args": [{"topic": "x"}]}',
    '5:4+::{"name": "ftrack.event", "args": [{"data": {}}]}',
    '5:5+::{"name": "ftrack.event", "args": [{"topic": "x", "source": "oops"}]}',
    '5:6+::{"name": "ftrack.event", "args": [{"topic": "x", "target": 5}]}',
    '5:7+::{"name": "ftrack.event", "args": "nope"}',
    "5:abc+::{}",
    "6:::99+[{}]",
    "3:::just a message",
    '4:::{"json": true}',
    "8::",
    "1::",
    "\x00\x01\u2603",
]


def test_garbage_frames_are_answered_and_the_offender_keeps_working(event_app):
    with RawClient(event_app) as offender, RawClient(event_app) as victim:
        victim.subscribe("topic=victim.*")
        for frame in GARBAGE:
            offender.send(frame)
        offender.ws.send_binary(b"\x00\xffbinary")
        # Refused events with an ack id get an ack error naming the problem.
        for ack_id in "1234567":
            ack = offender.wait_ack(ack_id)
            assert ack["success"] is False and ack["message"], ack_id
        assert "topic" in offender.wait_ack("4")["message"]
        # Frames without an ack id that cannot be used get an error packet (type 7).
        offender.wait_frame(lambda f: f.startswith("7:::malformed packet"))
        offender.wait_frame(lambda f: f.startswith("7:::binary frames"))
        # The offender is still connected and its valid traffic still works.
        assert offender.subscribe("topic=offender.ok") == {"success": True}
        offender.publish(wire_event("victim.ping"))
        victim.wait_event(lambda e: e["topic"] == "victim.ping")
        assert not offender.closed.is_set()
    assert_victim_traffic_intact(event_app)


def test_oversized_frame_is_refused_with_an_ack_error(event_app):
    limit = event_app.events.max_frame_bytes
    with RawClient(event_app) as offender, RawClient(event_app) as victim:
        victim.subscribe("topic=big")
        huge = wire_event("big", {"blob": "x" * (limit + 10)})
        result = offender.publish(huge)
        assert result["success"] is False
        assert "exceeds the limit" in result["message"]
        offender.send("3:::" + "y" * (limit + 10))
        offender.wait_frame(lambda f: f.startswith("7:::") and "exceeds" in f)
        small = wire_event("big", {"blob": "ok"})
        assert offender.publish(small) == {"success": True}
        victim.wait_event(lambda e: e["id"] == small["id"])
        assert [e["data"]["blob"] for e in victim.events()] == ["ok"]  # the huge one: lost
    assert_victim_traffic_intact(event_app)


def test_frame_beyond_the_hard_limit_closes_only_the_offender(event_app):
    limit = event_app.events.max_frame_bytes
    with RawClient(event_app) as offender, RawClient(event_app) as bystander:
        bystander.subscribe("topic=victim.*")
        try:
            offender.send("3:::" + "z" * (limit * 5))
        except Exception:
            pass  # the server may cut the socket while we are still writing
        assert offender.closed.wait(10)
        assert not bystander.closed.is_set()
    assert_victim_traffic_intact(event_app)


def test_subscription_flood_hits_the_limit_with_an_ack_error(event_app):
    limit = event_app.events.max_subscriptions_per_connection
    with RawClient(event_app) as flooder:
        ack_ids = []
        for n in range(limit + 10):
            event = wire_event(
                "ftrack.meta.subscribe",
                {"subscriber": {"id": f"flood-{n}"}, "subscription": "topic=f"},
            )
            ack_ids.append(flooder.emit_packet(event))
        results = [flooder.wait_ack(a) for a in ack_ids]
        assert all(r["success"] for r in results[:limit])
        refused = results[limit:]
        assert all(r["success"] is False and "limit" in r["message"] for r in refused)
        connection = [c for c in event_app.events.connections() if c["sid"] == flooder.sid][0]
        assert len(connection["subscribers"]) == limit
        assert_victim_traffic_intact(event_app)
        # Unsubscribing frees room again.
        assert flooder.unsubscribe("flood-0") == {"success": True}
        assert flooder.subscribe("topic=f", subscriber_id="late") == {"success": True}


def test_event_flood_from_one_connection_does_not_starve_another(event_app):
    with RawClient(event_app) as flooder, RawClient(event_app) as listener:
        listener.subscribe("topic=flood")
        for n in range(500):
            flooder.emit_packet(wire_event("flood", {"n": n}))
        assert_victim_traffic_intact(event_app)
        wait_until(lambda: len(listener.events()) == 500, message="500 flood events")
        assert [e["data"]["n"] for e in listener.events()] == list(range(500))


@pytest.mark.parametrize("frame", ["5:1+::" + json.dumps({"name": "ftrack.event"}), "0::"])
def test_odd_but_valid_packets(event_app, frame):
    """An event without args is refused by ack; a client ``0::`` closes only itself."""
    with RawClient(event_app) as client, RawClient(event_app) as other:
        client.send(frame)
        if frame == "0::":
            assert client.closed.wait(10)
        else:
            assert client.wait_ack("1")["success"] is False
        assert not other.closed.is_set()
    assert_victim_traffic_intact(event_app)


def test_a_client_that_stops_reading_is_cut_off_and_others_get_everything():
    import websocket

    from tests.devserver_events.devserver_events_support import EventApp, handshake

    with EventApp(max_outbox_bytes=256 << 10) as app:
        sid = handshake(app).text.split(":")[0]
        stalled = websocket.create_connection(
            app.url.replace("http", "ws") + f"/socket.io/1/websocket/{sid}", timeout=10
        )
        subscribe = wire_event(
            "ftrack.meta.subscribe", {"subscriber": {"id": "stalled"}, "subscription": "topic=bulk"}
        )
        stalled.send("5:1+::" + json.dumps({"name": "ftrack.event", "args": [subscribe]}))
        wait_until(
            lambda: any(c["sid"] == sid and c["subscribers"] for c in app.events.connections()),
            message="stalled subscribed",
        )
        try:
            with RawClient(app) as healthy:
                healthy.subscribe("topic=bulk")
                blob = "b" * 100_000

                def delivered() -> int:
                    return sum(frame.startswith("5:") for frame in healthy.snapshot())

                for n in range(150):  # 15 MB: beyond socket buffers plus the 256 kB outbox
                    # Publish at the pace the healthy client reads, as a real feed would.
                    wait_until(lambda n=n: delivered() >= n - 2, 30, 0.002, f"event {n - 2}")
                    app.publish(wire_event("bulk", {"n": n, "blob": blob}))
                wait_until(
                    lambda: all(c["sid"] != sid for c in app.events.connections()),
                    30,
                    message="the stalled client to be cut off",
                )
                wait_until(lambda: len(healthy.events()) == 150, 60, message="150 bulk events")
                assert [e["data"]["n"] for e in healthy.events()] == list(range(150))
        finally:
            stalled.close()
