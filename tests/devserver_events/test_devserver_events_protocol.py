"""The event server speaks socket.io 0.9 as PROTOCOL.md section 4 describes.

These tests drive a bare :class:`EventServer` on a real port with raw frames, so each
rule (handshake, heartbeats, acks, subscribe, routing, replies) is checked on the wire.
"""

from __future__ import annotations

import uuid

import pytest
import requests
import websocket

from reviewd.api.event.packet import parse_handshake
from tests.devserver_events.devserver_events_support import (
    RawClient,
    handshake,
    wait_until,
    wire_event,
)


def ws_url(app, sid: str) -> str:
    return app.url.replace("http://", "ws://") + f"/socket.io/1/websocket/{sid}"


# ------------------------------------------------------------------ handshake
def test_handshake_answers_session_id_timeouts_and_websocket_transport(event_app):
    response = handshake(event_app)
    assert response.status_code == 200
    parsed = parse_handshake(response.text)
    assert len(parsed.session_id) >= 16
    assert parsed.heartbeat_timeout == 1.5
    assert "websocket" in parsed.transports
    assert handshake(event_app).text.split(":")[0] != parsed.session_id


@pytest.mark.parametrize("user,key", [("events.tester", "wrong-key"), ("nobody", None), ("", "")])
def test_handshake_refuses_bad_credentials_without_echoing_the_key(event_app, user, key):
    headers = {"ftrack-user": user, "ftrack-api-key": key if key is not None else event_app.api_key}
    response = requests.get(f"{event_app.url}/socket.io/1/", headers=headers, timeout=10)
    assert response.status_code == 401
    assert "InvalidCredentialsError" in response.text
    assert event_app.api_key not in response.text
    assert "wrong-key" not in response.text


def test_websocket_refuses_unknown_and_reused_session_ids(event_app):
    with pytest.raises(websocket.WebSocketBadStatusException) as unknown:
        websocket.create_connection(ws_url(event_app, uuid.uuid4().hex), timeout=5)
    assert unknown.value.status_code == 404

    sid = handshake(event_app).text.split(":")[0]
    first = websocket.create_connection(ws_url(event_app, sid), timeout=5)
    try:
        assert first.recv() == "1::"
        with pytest.raises(websocket.WebSocketBadStatusException) as reused:
            websocket.create_connection(ws_url(event_app, sid), timeout=5)
        assert reused.value.status_code == 404
    finally:
        first.close()


# ------------------------------------------------------------------ heartbeats
def test_connect_packet_first_then_heartbeats_every_interval(event_app):
    with RawClient(event_app) as client:
        client.wait_frame(lambda f: True, message="the first frame")
        assert client.snapshot()[0] == "1::"
        wait_until(lambda: client.snapshot().count("2::") >= 3, 10, message="three heartbeats")
        assert not client.closed.is_set()


def test_client_that_stops_answering_heartbeats_is_disconnected(event_app):
    with RawClient(event_app, answer_heartbeats=False) as silent, RawClient(event_app) as alive:
        assert silent.subscribe("topic=test.*")["success"] is True
        assert alive.subscribe("topic=test.*")["success"] is True
        assert silent.closed.wait(10), "server kept a silent client past its heartbeat timeout"
        assert "0::" in silent.snapshot()
        wait_until(lambda: len(event_app.events.connections()) == 1, message="one connection")
        # The answering client stays connected and keeps receiving.
        assert not alive.closed.is_set()
        event_app.publish(wire_event("test.after"))
        alive.wait_event(lambda e: e["topic"] == "test.after")


# ------------------------------------------------------------------ acks and subscribe
def test_subscribe_acks_success_and_refuses_duplicate_id_and_bad_expression(event_app):
    with RawClient(event_app) as client:
        assert client.subscribe("topic=ftrack.update", subscriber_id="sub-1") == {"success": True}

        duplicate = client.subscribe("topic=other", subscriber_id="sub-1")
        assert duplicate["success"] is False
        assert "sub-1" in duplicate["message"]

        invalid = client.subscribe("topic=ftrack.update and (", subscriber_id="sub-2")
        assert invalid["success"] is False
        assert invalid["message"]

        no_id = client.publish(wire_event("ftrack.meta.subscribe", {"subscription": "topic=x"}))
        assert no_id["success"] is False and "subscriber.id" in no_id["message"]

        subs = event_app.events.connections()[0]["subscribers"]
        assert [(s["id"], s["subscription"]) for s in subs] == [("sub-1", "topic=ftrack.update")]


def test_publish_is_acknowledged_with_the_packet_id(event_app):
    with RawClient(event_app) as client:
        client.send('5:41+::{"name":"ftrack.event","args":[{"topic":"test.ack","data":{}}]}')
        client.wait_frame(lambda f: f.startswith("6:::41+"), message="ack 41")
        assert '6:::41+[{"success":true}]' in client.snapshot()


def test_unsubscribe_stops_delivery_and_unknown_id_is_refused(event_app):
    with RawClient(event_app) as subscriber, RawClient(event_app) as publisher:
        subscriber.subscribe("topic=test.gone", subscriber_id="gone")
        subscriber.subscribe("topic=test.marker", subscriber_id="marker")
        assert subscriber.unsubscribe("gone") == {"success": True}
        assert subscriber.unsubscribe("gone")["success"] is False
        publisher.publish(wire_event("test.gone"))
        publisher.publish(wire_event("test.marker"))
        subscriber.wait_event(lambda e: e["topic"] == "test.marker")
        assert [e["topic"] for e in subscriber.events()] == ["test.marker"]


# ------------------------------------------------------------------ routing
def test_events_reach_only_matching_subscriptions_once_per_connection(event_app):
    with RawClient(event_app) as a, RawClient(event_app) as b, RawClient(event_app) as pub:
        a.subscribe("topic=test.a")
        a.subscribe("topic=test.*")  # a second match on the same connection: still once
        b.subscribe("topic=test.b")
        first = wire_event("test.a", {"n": 1})
        assert pub.publish(first) == {"success": True}
        pub.publish(wire_event("test.b", {"n": 2}))
        b.wait_event(lambda e: e["topic"] == "test.b")
        a.wait_event(lambda e: e["topic"] == "test.b")  # test.* matches too
        assert [e["topic"] for e in b.events()] == ["test.b"]
        assert [e["topic"] for e in a.events()] == ["test.a", "test.b"]
        assert a.events()[0] == first  # delivered in wire form, unchanged
        assert pub.events() == []


def test_targeted_event_reaches_only_subscribers_whose_metadata_matches(event_app):
    with RawClient(event_app) as nuke, RawClient(event_app) as maya, RawClient(event_app) as pub:
        nuke.subscribe("topic=ftrack.action.launch", applicationId="nuke")
        maya.subscribe("topic=ftrack.action.launch", applicationId="maya")
        pub.publish(wire_event("ftrack.action.launch", {"n": 1}, target="applicationId=maya"))
        pub.publish(wire_event("ftrack.action.launch", {"n": 2}))  # untargeted: both
        nuke.wait_event(lambda e: e["data"] == {"n": 2})
        maya.wait_event(lambda e: e["data"] == {"n": 2})
        assert [e["data"]["n"] for e in maya.events()] == [1, 2]
        assert [e["data"]["n"] for e in nuke.events()] == [2]

        bad = pub.publish(wire_event("ftrack.action.launch", target="applicationId=("))
        assert bad["success"] is False


def test_reply_is_routed_back_by_target_to_the_publishers_hub(event_app):
    with (
        RawClient(event_app) as asker,
        RawClient(event_app) as answerer,
        RawClient(event_app) as bystander,
    ):
        asker_id = "hub-asker"
        asker.subscribe("topic=ftrack.meta.reply", subscriber_id=asker_id)
        bystander.subscribe("topic=ftrack.meta.reply", subscriber_id="hub-bystander")
        answerer.subscribe("topic=test.question")
        question = wire_event("test.question", {"q": 6 * 7})
        question["source"]["id"] = asker_id
        asker.publish(question)
        received = answerer.wait_event(lambda e: e["topic"] == "test.question")
        reply = wire_event(
            "ftrack.meta.reply",
            {"answer": 42},
            target=f"id={received['source']['id']}",
            inReplyToEvent=received["id"],
        )
        assert answerer.publish(reply) == {"success": True}
        got = asker.wait_event(lambda e: e["topic"] == "ftrack.meta.reply")
        assert got["inReplyToEvent"] == question["id"]
        assert got["data"] == {"answer": 42}
        assert bystander.events() == []


def test_subscriptions_vanish_with_their_connection(event_app):
    with RawClient(event_app) as keeper, RawClient(event_app) as pub:
        keeper.subscribe("topic=test.v")
        leaver = RawClient(event_app)
        leaver.subscribe("topic=test.v", subscriber_id="leaver-sub")
        assert len(event_app.events.connections()) == 3
        leaver.close()
        wait_until(
            lambda: all(
                s["id"] != "leaver-sub"
                for c in event_app.events.connections()
                for s in c["subscribers"]
            ),
            message="the leaver's subscriber to vanish",
        )
        pub.publish(wire_event("test.v"))
        keeper.wait_event(lambda e: e["topic"] == "test.v")
        # The same subscriber id may now subscribe again on a new connection.
        with RawClient(event_app) as again:
            assert again.subscribe("topic=test.v", subscriber_id="leaver-sub")["success"]


def test_resubscribing_an_id_on_a_new_connection_moves_it(event_app):
    """A reconnecting hub re-sends its subscriber ids before the server notices that its
    old socket died; the new registration must win, not be refused."""
    with RawClient(event_app) as old, RawClient(event_app) as new, RawClient(event_app) as pub:
        old.subscribe("topic=test.move", subscriber_id="hub-1")
        old.subscribe("topic=test.marker", subscriber_id="old-marker")
        assert new.subscribe("topic=test.move", subscriber_id="hub-1") == {"success": True}
        pub.publish(wire_event("test.move"))
        pub.publish(wire_event("test.marker"))
        new.wait_event(lambda e: e["topic"] == "test.move")
        old.wait_event(lambda e: e["topic"] == "test.marker")
        assert [e["topic"] for e in old.events()] == ["test.marker"]


# ------------------------------------------------------------------ server-originated
def test_server_publish_and_emit_wait_for_reply(event_app):
    with RawClient(event_app) as plugin:
        plugin.subscribe("topic=ftrack.action.discover")
        ftrack_update = wire_event("ftrack.update", {"entities": []})
        plugin.subscribe("topic=ftrack.update")
        event_app.publish(ftrack_update)
        plugin.wait_event(lambda e: e["id"] == ftrack_update["id"])

        import threading

        def answer():
            event = plugin.wait_event(lambda e: e["topic"] == "ftrack.action.discover")
            plugin.publish(
                wire_event(
                    "ftrack.meta.reply",
                    {"items": [{"label": "Digest"}]},
                    target=f"id={event['source']['id']}",
                    inReplyToEvent=event["id"],
                )
            )

        thread = threading.Thread(target=answer)
        thread.start()
        reply = event_app.emit("ftrack.action.discover", {"selection": []}, wait_reply=10)
        thread.join(10)
        assert reply is not None
        assert reply["data"] == {"items": [{"label": "Digest"}]}
        sent = [e for e in plugin.events() if e["topic"] == "ftrack.action.discover"][0]
        assert sent["source"]["applicationId"] == "ftrack.client.web"
        assert reply["inReplyToEvent"] == sent["id"]


def test_emit_without_any_replier_returns_none_after_the_wait(event_app):
    assert event_app.emit("ftrack.action.discover", {}, wait_reply=0.3) is None
    with pytest.raises(ValueError):
        event_app.emit("", {})


def test_server_shutdown_says_goodbye_to_every_client():
    from tests.devserver_events.devserver_events_support import EventApp

    app = EventApp().start()
    stopped = False
    try:
        clients = [RawClient(app) for _ in range(2)]
        for client in clients:
            client.subscribe("topic=x")
        app.stop()
        stopped = True
        for client in clients:
            assert client.closed.wait(10)
            assert client.snapshot()[-1] == "0::"
            client.close()
    finally:
        if not stopped:
            app.stop()
