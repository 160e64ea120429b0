"""Each fault switch does what it says, seen from raw WebSocket clients, and the event
server keeps serving once the fault is over (or, for others, while it lasts)."""

from __future__ import annotations

import threading
import time

import requests
import websocket

from reviewd.devserver.faults import DEFAULT_MALFORMED_FRAME
from tests.devserver_events.devserver_events_support import (
    RawClient,
    handshake,
    wait_until,
    wire_event,
)
from tests.devserver_events.test_devserver_events_robustness import (
    assert_victim_traffic_intact,
)


def test_drop_all_cuts_every_socket_without_a_goodbye(event_app):
    clients = [RawClient(event_app) for _ in range(3)]
    try:
        for client in clients:
            client.subscribe("topic=test.*")
        assert event_app.faults.drop_all() == 3
        for client in clients:
            assert client.closed.wait(10)
            assert "0::" not in client.snapshot()  # abrupt: no socket.io disconnect
            assert client.close_reason != "close frame"  # and no WebSocket close frame
        wait_until(lambda: event_app.events.connections() == [], message="no connections")
    finally:
        for client in clients:
            client.close()
    assert_victim_traffic_intact(event_app)


def test_refuse_handshakes_takes_the_event_server_down_then_it_comes_back(event_app):
    spare_sid = handshake(event_app).text.split(":")[0]  # handed out before the outage
    with RawClient(event_app) as client:
        assert event_app.faults.refuse_handshakes(1.0) == 1
        assert client.closed.wait(10)
        refused = handshake(event_app)
        assert refused.status_code == 503
        assert int(refused.headers["Retry-After"]) >= 1
        try:
            websocket.create_connection(
                event_app.url.replace("http", "ws") + f"/socket.io/1/websocket/{spare_sid}",
                timeout=5,
            )
            raise AssertionError("websocket upgrade accepted during the outage")
        except websocket.WebSocketBadStatusException as error:
            assert error.status_code == 503
        # Other HTTP routes on the same port keep answering during the outage.
        emit = requests.post(
            f"{event_app.url}/devserver/emit",
            json={"topic": "x"},
            headers={"ftrack-user": "bad", "ftrack-api-key": "bad"},
            timeout=5,
        )
        assert emit.status_code == 401
    wait_until(
        lambda: handshake(event_app).status_code == 200, 10, message="handshakes accepted again"
    )
    assert event_app.faults.refusing_for() == 0
    assert_victim_traffic_intact(event_app)


def test_pause_heartbeats_makes_the_socket_quiet_but_open(event_app):
    with RawClient(event_app) as quiet, RawClient(event_app) as publisher:
        quiet.subscribe("topic=test.alive")
        wait_until(lambda: "2::" in quiet.snapshot(), message="a first heartbeat")
        event_app.faults.pause_heartbeats()
        paused_at = len(quiet.snapshot())
        # Observation window longer than the heartbeat timeout (1.5 s) and five
        # intervals: no heartbeat may arrive, and the server must not time us out.
        time.sleep(2.0)
        publisher.publish(wire_event("test.alive"))
        quiet.wait_event(lambda e: e["topic"] == "test.alive")
        assert "2::" not in quiet.snapshot()[paused_at:]
        assert not quiet.closed.is_set()
        event_app.faults.resume_heartbeats()
        wait_until(lambda: "2::" in quiet.snapshot()[paused_at:], message="heartbeats again")


def test_ignore_heartbeats_makes_the_server_time_out_answering_clients(event_app):
    with RawClient(event_app) as client:
        event_app.faults.ignore_heartbeats()
        started = time.monotonic()
        client.send("8::")  # a noop still counts as life: the timeout starts after it
        assert client.closed.wait(10), "client answering heartbeats was not timed out"
        assert time.monotonic() - started >= 1.5  # not before the heartbeat timeout
        assert client.snapshot().count("2::") >= 2  # it was asked and did answer
        assert "0::" in client.snapshot()
    event_app.faults.heed_heartbeats()
    with RawClient(event_app) as fresh:
        wait_until(lambda: fresh.snapshot().count("2::") >= 6, 10, message="six heartbeats")
        assert not fresh.closed.is_set()  # 6 intervals > the 1.5 s timeout: heard again


def test_delay_acks_routes_at_once_and_acknowledges_late(event_app):
    with RawClient(event_app) as subscriber, RawClient(event_app) as publisher:
        subscriber.subscribe("topic=test.late")
        event_app.faults.delay_acks(1.5)
        event = wire_event("test.late")
        started = time.monotonic()
        ack_id = publisher.emit_packet(event)
        subscriber.wait_event(lambda e: e["id"] == event["id"])
        assert ack_id not in publisher.acks()
        assert publisher.wait_ack(ack_id) == {"success": True}
        assert time.monotonic() - started >= 1.4
        event_app.faults.restore_acks()
        assert publisher.publish(wire_event("test.late")) == {"success": True}


def test_blackhole_acks_never_acknowledges_until_restored(event_app):
    with RawClient(event_app) as subscriber, RawClient(event_app) as publisher:
        subscriber.subscribe("topic=test.hole")
        event_app.faults.blackhole_acks()
        lost_ack = publisher.emit_packet(wire_event("test.hole", {"n": 1}))
        subscriber.wait_event(lambda e: e["data"] == {"n": 1})
        event_app.faults.restore_acks()
        assert publisher.publish(wire_event("test.hole", {"n": 2})) == {"success": True}
        # Acks go out in order on one connection: the later one arrived, the lost one never.
        assert lost_ack not in publisher.acks()
        assert event_app.faults.state()["acks"] == "normal"


def test_send_malformed_reaches_every_client_or_one_and_traffic_goes_on(event_app):
    with RawClient(event_app) as a, RawClient(event_app) as b:
        assert event_app.faults.send_malformed() == 2
        a.wait_frame(lambda f: f == DEFAULT_MALFORMED_FRAME)
        b.wait_frame(lambda f: f == DEFAULT_MALFORMED_FRAME)
        assert event_app.faults.send_malformed("\x00garbage", sid=a.sid) == 1
        a.wait_frame(lambda f: f == "\x00garbage")
        assert a.subscribe("topic=after") == {"success": True}
        b.publish(wire_event("after"))
        a.wait_event(lambda e: e["topic"] == "after")
        assert "\x00garbage" not in b.snapshot()


def test_switches_are_thread_safe_and_reset_clears_them(event_app):
    faults = event_app.faults
    errors = []

    def hammer(n):
        try:
            for _ in range(200):
                faults.pause_heartbeats() if n % 2 else faults.resume_heartbeats()
                faults.delay_acks(0.1) if n % 3 else faults.blackhole_acks()
                faults.state()
            faults.drop_all()
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    faults.refuse_handshakes(60)
    faults.reset()
    assert faults.state() == {
        "refusing_for": 0,
        "heartbeats_paused": False,
        "ignoring_heartbeats": False,
        "acks": "normal",
        "ack_delay": 0.0,
    }
    assert handshake(event_app).status_code == 200
    assert "Faults" in repr(faults)


def test_devserver_exposes_the_switches_and_api_survives_them(devserver):
    """The same switches through ``DevServer.faults``; ``/api`` keeps answering."""
    assert devserver.faults is devserver.events.faults
    with RawClient(devserver) as client:
        client.subscribe("topic=ftrack.update")
        assert devserver.faults.refuse_handshakes(0.5) == 1
        assert client.closed.wait(10)
        assert handshake(devserver).status_code == 503
        answer = requests.post(
            f"{devserver.url}/api",
            json=[{"action": "query_server_information"}],
            timeout=10,
            headers={"ftrack-user": devserver.api_user, "ftrack-api-key": devserver.api_key},
        )
        assert "schema_hash" in answer.json()[0]
    wait_until(lambda: handshake(devserver).status_code == 200, message="event server back")
    with RawClient(devserver) as again:
        again.subscribe("topic=ftrack.update")
        devserver.emit("ftrack.update", {"entities": []})
        again.wait_event(lambda e: e["topic"] == "ftrack.update")
