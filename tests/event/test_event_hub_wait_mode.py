"""The hub's default dispatch mode, ftrack_api's: callbacks run inside ``wait()``.

Also ftrack_api's lifecycle rules that come with it: a second ``connect()`` raises,
``disconnect()`` of an idle hub raises and forgets every subscriber, events published
before ``connect()`` wait for it.  The daemon's mode (a dispatch thread, chosen with
``dispatch_thread=True`` or a dispatch hook) is tested in the other files here.
"""

from __future__ import annotations

import threading
import time

import pytest

from reviewd.api.event.base import Event
from reviewd.api.exception import EventHubConnectionError
from tests.event.event_harness import wait_for


def test_callbacks_run_only_inside_wait_in_the_calling_thread(event_server, make_hub):
    hub = make_hub(event_server, dispatch_thread=False)
    assert hub.dispatch_mode == "wait"
    seen = []
    hub.subscribe("topic=studio.ping", lambda e: seen.append(threading.current_thread()))
    hub.connect(timeout=10)
    event_server.emit("studio.ping", {"n": 1})
    # Received but not handled: wait() has not been called.
    wait_for(lambda: len(hub._event_queue) > 0, message="the event in the queue")
    assert seen == []
    hub.wait(0.5)
    assert seen == [threading.current_thread()]


def test_wait_returns_on_a_final_disconnect_not_on_a_reconnecting_one(event_server, make_hub):
    hub = make_hub(event_server, dispatch_thread=False)
    hub.connect(timeout=10)
    reconnecting = Event("ftrack.meta.disconnected", data={"reconnecting": True})
    hub._event_queue.put(reconnecting)
    hub._event_queue.put(Event("ftrack.meta.disconnected"))
    hub._event_queue.put(Event("after"))
    hub.wait(30)  # returns at the second event, long before 30 s
    assert len(hub._event_queue) == 1  # "after" is left for the next wait()


def test_second_connect_raises_and_idle_disconnect_raises(event_server, make_hub):
    hub = make_hub(event_server, dispatch_thread=False)
    with pytest.raises(EventHubConnectionError, match="Not currently connected"):
        hub.disconnect()
    hub.connect(timeout=10)
    with pytest.raises(EventHubConnectionError, match="Already connected"):
        hub.connect()
    assert hub.connected  # the refused connect() changed nothing


def test_disconnect_forgets_subscribers_unless_asked_to_keep_them(event_server, make_hub):
    hub = make_hub(event_server, dispatch_thread=False)
    hub.subscribe("topic=a", lambda e: None)
    hub.connect(timeout=10)
    assert len(hub._subscribers) == 2  # the hub's reply subscriber, then ours
    hub.disconnect(unsubscribe=False)
    assert [s.subscription for s in hub.subscribers] == ["topic=a"]
    hub.connect(timeout=10)
    wait_for(lambda: len(event_server.subscriber_ids()) == 2, message="re-subscribed")
    hub.disconnect()
    assert hub._subscribers == [] and hub.subscribers == []
    assert hub._intentional_disconnect and not hub._connection_initialised


def test_events_published_before_connect_are_sent_by_connect(event_server, make_hub):
    hub = make_hub(event_server, dispatch_thread=False)
    with pytest.raises(EventHubConnectionError):
        hub.publish(Event("studio.early"))  # neither connected nor initialised
    replies = []
    hub.subscribe("topic=studio.early", lambda e: "pong")
    hub.init_connection()
    hub.publish(Event("studio.early"), on_reply=lambda r: replies.append(r["data"]))
    assert hub._event_send_queue.qsize() == 1
    hub.connect(timeout=10)
    deadline = time.monotonic() + 10
    while not replies and time.monotonic() < deadline:
        hub.wait(0.2)  # our own subscriber answers inside wait(), the reply too
    assert replies == ["pong"]
    assert hub._event_send_queue.qsize() == 0


def test_a_failing_send_is_logged_and_does_not_raise(event_server, make_hub, caplog):
    hub = make_hub(event_server, dispatch_thread=False)
    hub.connect(timeout=10)

    class Broken:
        def send(self, text):
            raise RuntimeError("boom")

    real, hub._connection = hub._connection, Broken()
    try:
        event = Event("studio.lost")
        hub.publish(event)  # as ftrack_api: logged, not raised
    finally:
        hub._connection = real
    assert f"Error sending event {event}." in [r.getMessage() for r in caplog.records]


def test_a_dispatch_hook_puts_the_hub_in_thread_mode(event_server, make_hub):
    hub = make_hub(event_server, dispatch_thread=False)
    seen = []
    hub.subscribe("topic=studio.hooked", lambda e: None)
    hub.connect(timeout=10)
    hub.set_dispatch_hook(lambda event, subscribers: seen.append(threading.current_thread()))
    assert hub.dispatch_mode == "thread"
    event_server.emit("studio.hooked")
    wait_for(lambda: seen, message="the hook called without wait()")
    assert seen[0].name.startswith("reviewd-hub-dispatch")


def test_only_a_final_disconnect_can_end_wait(event_server, make_hub):
    hub = make_hub(event_server, dispatch_thread=False)

    def queued_disconnects():
        return [
            item
            for item in list(hub._event_queue._items)
            if item.__class__ is not tuple and item["topic"] == "ftrack.meta.disconnected"
        ]

    hub.connect(timeout=10)
    hub.reconnect(attempts=3, delay=0.5)
    # Reconnecting on purpose is not the end: its disconnect event says so.
    assert all(event["data"] == {"reconnecting": True} for event in queued_disconnects())
    hub.disconnect(unsubscribe=False)
    assert [event["data"] for event in queued_disconnects()][-1] == {}  # final
    hub.connect(timeout=10)
    # The previous connection's final disconnect is dropped: it cannot end this wait().
    assert all(event["data"] == {"reconnecting": True} for event in queued_disconnects())


def test_connect_without_a_timeout_gives_up_after_one_failed_attempt():
    from reviewd.api.event.hub import EventHub

    hub = EventHub("http://127.0.0.1:9", "tester", "a-key", reconnect_base=0.05)
    with pytest.raises(EventHubConnectionError, match="127.0.0.1:9") as info:
        hub.connect()  # ftrack_api's connect(): one attempt (a timeout asks for retries)
    # It gave up on the failed attempt, not at the end of a waiting time.
    assert "within" not in str(info.value) and "Connection refused" in str(info.value)
    assert not hub.running and hub._connection_initialised
