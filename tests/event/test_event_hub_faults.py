"""The hub against the event server's fault switches: it must outlive all of them."""

from __future__ import annotations

import logging
import time

import pytest

from reviewd.api.event.base import Event
from reviewd.api.event.connection import dead_after
from tests.conftest import SOAK
from tests.event.event_harness import EventOnlyServer, wait_for


def _emit_until_received(server, hub_seen, topic, timeout):
    """Emit *topic* every 50 ms until the hub has seen one; return when it did."""
    deadline = time.monotonic() + timeout
    sent = 0
    while time.monotonic() < deadline:
        server.emit(topic, {"n": sent})
        sent += 1
        if wait_for_quietly(lambda: hub_seen, 0.05):
            return time.monotonic()
    raise AssertionError(f"no {topic} event reached the hub within {timeout}s")


def wait_for_quietly(condition, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return bool(condition())


def test_hub_survives_all_sockets_dropped(event_server, make_hub):
    """Acceptance 2: reconnect, re-subscribe, next event within 2 s; queued event delivered."""
    hub = make_hub(event_server)  # default backoff: first retry within 1 s
    after_drop = []
    hub.subscribe("topic=studio.after", lambda e: after_drop.append(e))
    own = []
    hub.subscribe("topic=studio.queued", lambda e: own.append(e["data"]["n"]))
    queued_while_down = []

    def publish_while_down(reason):
        # Runs when the hub has just lost the socket, so this event is certainly
        # published while disconnected: it must be queued, not lost, and not block.
        if not queued_while_down:
            queued_while_down.append(hub.connected)
            hub.publish(Event("studio.queued", data={"n": 7}))

    hub.add_connection_listener(on_disconnected=publish_while_down)
    hub.connect(timeout=10)
    first_sid = {c["sid"] for c in event_server.events.connections()}

    assert event_server.faults.drop_all() == 1
    dropped_at = time.monotonic()
    received_at = _emit_until_received(event_server, after_drop, "studio.after", timeout=5)
    assert received_at - dropped_at <= 2.0, "next event later than 2 s after the drop"
    assert queued_while_down == [False]
    wait_for(lambda: own == [7], timeout=5, message="the event queued while disconnected")
    connections = event_server.events.connections()
    assert len(connections) == 1 and connections[0]["sid"] not in first_sid
    registered = {s["id"] for s in connections[0]["subscribers"]}
    assert registered == {s.id for s in hub.subscribers} | {hub.id}


@pytest.mark.soak
def test_hub_keeps_retrying_through_a_long_outage(event_server, make_hub):
    """Acceptance 3: growing jittered delays, never gives up, resumes afterwards.

    30 s outage with REVIEWD_SOAK=1; 6 s otherwise.  The cap is lowered to 4 s (it is
    configurable) so that the hub comes back soon after the outage ends.
    """
    outage = 30.0 if SOAK else 6.0
    hub = make_hub(event_server, reconnect_cap=4.0)
    seen = []
    hub.subscribe("topic=studio.back", lambda e: seen.append(e))
    hub.connect(timeout=10)
    attempts_before = len(hub.connection_attempts)

    event_server.faults.refuse_handshakes(outage)
    start = time.monotonic()
    wait_for(
        lambda: event_server.faults.refusing_for() == 0,
        timeout=outage + 5,
        interval=0.1,
        message="the outage to end",
    )
    _emit_until_received(event_server, seen, "studio.back", timeout=10)
    attempts = list(hub.connection_attempts)[attempts_before:]
    failures = [a for a in attempts if a.outcome.startswith("failed")]
    assert attempts[0].outcome.startswith("lost")
    assert attempts[-1].outcome == "connected"
    assert len(failures) >= 3
    assert all("503" in a.outcome for a in failures)
    # Ceilings double from the base up to the cap; each delay is drawn below its ceiling.
    ceilings = [a.ceiling for a in attempts if a.ceiling is not None]
    assert ceilings[:3] == [1.0, 2.0, 4.0]
    assert all(c == 4.0 for c in ceilings[3:])
    assert all(0 <= a.delay <= a.ceiling for a in attempts if a.delay is not None)
    assert len({a.delay for a in attempts if a.delay is not None}) > 1  # jittered
    # The hub waited as scheduled: each attempt follows the previous one's delay.
    for previous, current in zip(attempts, attempts[1:], strict=False):
        if previous.delay is not None:
            assert current.time - previous.time >= previous.delay - 0.05
    # It kept trying throughout the outage, never giving up.
    assert failures[-1].time - start >= outage - 4.5


def test_hub_notices_silent_socket_by_missing_heartbeats(make_hub):
    """Acceptance 4: socket open but silent -> reconnect within timeout plus margin."""
    with EventOnlyServer(heartbeat_interval=0.3, heartbeat_timeout=1.5) as server:
        hub = make_hub(server)
        seen = []
        hub.subscribe("topic=studio.alive", lambda e: seen.append(e))
        lost = []
        hub.add_connection_listener(
            on_disconnected=lambda reason: lost.append((time.monotonic(), reason))
        )
        hub.connect(timeout=10)
        server.faults.pause_heartbeats()
        paused_at = time.monotonic()
        wait_for(lambda: lost, timeout=10, message="the hub to notice the silence")
        noticed_after = lost[0][0] - paused_at
        assert "presumed dead" in lost[0][1]
        # Silence is measured from the last frame, which came before the pause.
        assert noticed_after <= dead_after(1.5) + 1.0  # scheduling slack on a busy host
        server.faults.resume_heartbeats()
        _emit_until_received(server, seen, "studio.alive", timeout=10)
        assert hub.connected


def test_hub_survives_server_disconnecting_it_for_silence(make_hub):
    """The server stops counting our heartbeats and drops us: we come back."""
    with EventOnlyServer(heartbeat_interval=0.3, heartbeat_timeout=1.0) as server:
        hub = make_hub(server)
        seen = []
        hub.subscribe("topic=studio.ignored", lambda e: seen.append(e))
        lost = []
        hub.add_connection_listener(on_disconnected=lost.append)
        hub.connect(timeout=10)
        server.faults.ignore_heartbeats()
        wait_for(lambda: lost, timeout=10, message="the server to drop the hub")
        server.faults.heed_heartbeats()
        _emit_until_received(server, seen, "studio.ignored", timeout=10)


MALFORMED_FRAMES = [
    "complete garbage",
    "",
    '5:::{"name": "ftrack.event", "args": [{"topic": ',  # truncated JSON
    "9::",  # unknown packet type
    "5:::[1, 2]",  # JSON but not an event payload
    '5:::{"name": "ftrack.event", "args": [42]}',  # the event is not an object
    '5:::{"name": "ftrack.event", "args": [{"data": {}}]}',  # no topic
    "6:::not-a-number",
    "6:::12345+[]",  # ack for nothing we sent
    '5:::{"name": "other.event", "args": []}',  # not an ftrack event: ignored
    "7:::server side complaint",
]


def test_hub_skips_malformed_frames_and_keeps_the_connection(event_server, make_hub, caplog):
    """Acceptance 6: garbage, truncated JSON, unknown types are logged and skipped."""
    hub = make_hub(event_server)
    seen = []
    hub.subscribe("topic=studio.after-garbage", lambda e: seen.append(e["data"]["n"]))
    hub.connect(timeout=10)
    attempts = len(hub.connection_attempts)
    with caplog.at_level(logging.WARNING, logger="reviewd.api.event.hub"):
        for frame in MALFORMED_FRAMES:
            assert event_server.faults.send_malformed(frame) == 1
        event_server.emit("studio.after-garbage", {"n": 1})
        wait_for(lambda: seen == [1], message="the event after the garbage")
    assert hub.connected
    assert len(hub.connection_attempts) == attempts  # same connection, no reconnect
    assert hub.stats()["malformed"] >= 6
    assert "malformed frame" in caplog.text
    assert "server side complaint" in caplog.text  # error packets are logged


def test_hub_is_not_held_up_by_missing_acks(event_server, make_hub):
    """A server that never acknowledges: publishing goes on, memory stays bounded."""
    hub = make_hub(event_server)
    own = []
    hub.subscribe("topic=studio.noack", lambda e: own.append(e))
    hub.connect(timeout=10)
    event_server.faults.blackhole_acks()
    for n in range(100):
        hub.publish(Event("studio.noack", data={"n": n}))
    wait_for(lambda: len(own) == 100, message="events routed without acks")
    assert hub.stats()["pending_acks"] == 100
    # Acks flow again from the next connection on, so the hub's re-sent subscriptions
    # are acknowledged; the 100 of the dropped connection can never be, and are forgotten.
    event_server.faults.restore_acks()
    event_server.faults.drop_all()
    wait_for(lambda: hub.stats()["acks_lost"] >= 100, message="acks forgotten on reconnect")
    wait_for(lambda: hub.subscribed, timeout=10, message="reconnect")
    wait_for(lambda: hub.stats()["pending_acks"] == 0, message="nothing left waiting for an ack")


def test_hub_logs_server_refusal_of_a_publish(event_server, make_hub, caplog):
    hub = make_hub(event_server)
    hub.connect(timeout=10)
    with caplog.at_level(logging.ERROR, logger="reviewd.api.event.hub"):
        hub.publish(Event("studio.bad-target", target="id="))
        wait_for(lambda: hub.stats()["server_refusals"] == 1, message="the refusal ack")
    assert "refused" in caplog.text
