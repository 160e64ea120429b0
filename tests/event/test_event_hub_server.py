"""The hub against the real event server: delivery, replies, hooks, threads, queues."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from reviewd.api.event.base import Event
from reviewd.api.event.hub import EventHub
from reviewd.api.exception import EventHubConnectionError, ReplyTimeoutError
from tests.event.event_harness import EventOnlyServer, free_port, wait_for


def test_hub_receives_server_events_off_the_reader_thread(event_server, make_hub):
    hub = make_hub(event_server)
    seen = []
    hub.subscribe("topic=studio.ping", lambda e: seen.append((e, threading.current_thread().name)))
    hub.connect(timeout=10)
    assert hub.connected and hub.subscribed
    event_server.emit("studio.ping", {"n": 1})
    wait_for(lambda: seen, message="the event")
    event, thread_name = seen[0]
    assert isinstance(event, Event)
    assert event["data"] == {"n": 1} and event["topic"] == "studio.ping"
    assert event["in_reply_to_event"] is None
    assert thread_name.startswith("reviewd-hub-dispatch")


def test_hub_keeps_server_order(event_server, make_hub):
    hub = make_hub(event_server)
    seen = []
    hub.subscribe("topic=studio.seq", lambda e: seen.append(e["data"]["n"]))
    hub.connect(timeout=10)
    for n in range(200):
        event_server.emit("studio.seq", {"n": n})
    wait_for(lambda: len(seen) == 200, message="200 events")
    assert seen == list(range(200))


def test_hub_handler_result_goes_back_as_reply(event_server, make_hub):
    hub = make_hub(event_server)
    hub.subscribe(
        "topic=ftrack.action.discover",
        lambda e: {"items": [{"label": "Publish", "actionIdentifier": "publish"}]},
        subscriber={"id": "discoverer", "applicationId": "reviewd.test"},
    )
    hub.connect(timeout=10)
    reply = event_server.emit("ftrack.action.discover", {"selection": []}, wait_reply=5)
    assert reply is not None
    assert reply["topic"] == "ftrack.meta.reply"
    assert reply["data"]["items"][0]["actionIdentifier"] == "publish"
    assert reply["source"]["id"] == "discoverer"  # a reply comes from the subscriber
    assert reply["target"] == f"id={event_server.events.source_id}"


def test_hub_on_reply_and_publish_and_wait(event_server, make_hub):
    responder = make_hub(event_server)
    responder.subscribe("topic=studio.question", lambda e: {"answer": e["data"]["q"] * 2})
    responder.connect(timeout=10)
    asker = make_hub(event_server)
    asker.connect(timeout=10)

    replies = []
    asker.publish(Event("studio.question", data={"q": 21}), on_reply=replies.append)
    wait_for(lambda: replies, message="on_reply")
    assert replies[0]["data"] == {"answer": 42}
    assert replies[0]["target"] == f"id={asker.id}"

    reply = asker.publish_and_wait(Event("studio.question", data={"q": 5}), timeout=5)
    assert reply["data"] == {"answer": 10}
    assert reply["in_reply_to_event"]


def test_hub_publish_and_wait_times_out_and_forgets_callback(event_server, make_hub):
    hub = make_hub(event_server)
    hub.connect(timeout=10)
    with pytest.raises(ReplyTimeoutError, match="studio.nobody"):
        hub.publish_and_wait(Event("studio.nobody"), timeout=0.3)
    assert hub.stats()["reply_callbacks"] == 0


def test_hub_publish_and_wait_works_inside_a_handler(event_server, make_hub):
    """The reply is read off the socket directly, so a handler can wait for it (the
    answer comes from another hub: this hub's dispatch thread is busy in the handler)."""
    responder = make_hub(event_server)
    responder.subscribe("topic=studio.inner", lambda e: "inner-answer")
    responder.connect(timeout=10)
    hub = make_hub(event_server)
    outcome = []
    hub.subscribe(
        "topic=studio.outer",
        lambda e: outcome.append(hub.publish_and_wait(Event("studio.inner"), 5)),
    )
    hub.connect(timeout=10)
    event_server.emit("studio.outer")
    wait_for(lambda: outcome, message="the nested reply")
    assert outcome[0]["data"] == "inner-answer"


def test_hub_dispatch_hook_replaces_callbacks_and_deliver_runs_them(event_server, make_hub):
    hub = make_hub(event_server)
    calls = []
    low = hub.subscribe("topic=studio.hooked", lambda e: calls.append("low") or None, priority=50)
    high = hub.subscribe(
        "topic=studio.hooked", lambda e: calls.append("high") or {"ok": True}, priority=5
    )
    hub.subscribe("topic=studio.other", lambda e: calls.append("other"))
    hooked, meta = [], []

    def hook(event, subscribers):
        (meta if event["topic"].startswith("ftrack.meta.") else hooked).append((event, subscribers))

    hub.set_dispatch_hook(hook)
    hub.connect(timeout=10)
    wait_for(lambda: meta, message="meta.connected through the hook")
    assert meta[0][0]["topic"] == "ftrack.meta.connected" and meta[0][1] == []

    event_server.emit("studio.hooked", {"n": 1})
    wait_for(lambda: hooked, message="the hook")
    event, subscribers = hooked[0]
    assert [s.id for s in subscribers] == [high, low]
    assert calls == []  # the hook replaced inline dispatch

    # The daemon later delivers; a non-None result is published as a reply.
    replies = []
    asker = make_hub(event_server)
    asker.connect(timeout=10)
    question = Event("studio.hooked", data={"n": 2})
    asker.publish(question, on_reply=replies.append)
    wait_for(lambda: len(hooked) == 2, message="second hooked event")
    event, subscribers = hooked[1]
    assert [hub.deliver(event, s) for s in subscribers] == [{"ok": True}, None]
    assert calls == ["high", "low"]
    wait_for(lambda: replies, message="reply from deliver()")
    assert replies[0]["data"] == {"ok": True}

    hub.set_dispatch_hook(None)
    event_server.emit("studio.hooked", {"n": 3})
    wait_for(lambda: len(calls) == 4, message="inline dispatch again")


def test_hub_deliver_propagates_handler_errors(event_server, make_hub):
    hub = make_hub(event_server)

    def broken(event):
        raise KeyError("bug")

    hub.subscribe("topic=a", broken)
    with pytest.raises(KeyError):
        hub.deliver(Event("a"), hub.subscribers[0])


def test_hub_connection_listeners_and_meta_events(event_server, make_hub):
    hub = make_hub(event_server)
    states, metas = [], []
    hub.add_connection_listener(
        on_connected=lambda: states.append("up"),
        on_disconnected=lambda reason: states.append(("down", reason)),
    )
    hub.subscribe(
        "topic=ftrack.meta.connected or topic=ftrack.meta.disconnected",
        lambda e: metas.append(e["topic"]),
    )
    hub.connect(timeout=10)
    wait_for(lambda: metas == ["ftrack.meta.connected"], message="meta.connected")
    assert states == ["up"]

    event_server.faults.drop_all()
    wait_for(lambda: len(states) >= 3, message="down and up again")
    assert states[1][0] == "down" and states[1][1]
    assert states[2] == "up"
    wait_for(
        lambda: (
            metas[:3]
            == ["ftrack.meta.connected", "ftrack.meta.disconnected", "ftrack.meta.connected"]
        ),
        message="meta events",
    )


def test_hub_connection_listener_can_be_removed(event_server, make_hub):
    hub = make_hub(event_server)
    states = []
    remove = hub.add_connection_listener(on_connected=lambda: states.append("up"))
    remove()
    hub.connect(timeout=10)
    assert states == []


def test_hub_bad_credentials_fail_fast_without_leaking_the_key(event_server):
    secret = "definitely-wrong-key-123456"
    hub = EventHub(event_server.url, event_server.api_user, secret, dispatch_thread=True)
    with pytest.raises(EventHubConnectionError) as info:
        hub.connect(timeout=10)
    message = str(info.value)
    assert "401" in message and "API user and key" in message
    assert secret not in message
    assert secret not in repr(hub)
    assert not hub.connected


def test_hub_publishers_on_many_threads(event_server, make_hub):
    receiver = make_hub(event_server)
    received = []
    receiver.subscribe("topic=studio.many", lambda e: received.append(e["data"]["key"]))
    receiver.connect(timeout=10)
    publisher = make_hub(event_server)
    publisher.connect(timeout=10)

    def publish(thread_index):
        for n in range(300):
            publisher.publish(Event("studio.many", data={"key": f"{thread_index}-{n}"}))

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wait_for(lambda: len(received) >= 2400, timeout=30, message="2400 events")
    assert sorted(received) == sorted(f"{i}-{n}" for i in range(8) for n in range(300))
    assert publisher.stats()["dropped"] == 0


def test_hub_subscribe_and_unsubscribe_while_connected_reach_the_server(event_server, make_hub):
    hub = make_hub(event_server)
    hub.connect(timeout=10)
    seen = []
    subscriber_id = hub.subscribe("topic=studio.late", seen.append)
    wait_for(lambda: subscriber_id in event_server.subscriber_ids(), message="registration")
    event_server.emit("studio.late")
    wait_for(lambda: seen, message="event to the late subscriber")
    hub.unsubscribe(subscriber_id)
    wait_for(lambda: subscriber_id not in event_server.subscriber_ids(), message="removal")
    assert hub.id in event_server.subscriber_ids()  # the hub's own reply subscriber stays


def test_hub_queues_while_the_server_is_not_there_yet(make_hub):
    port = free_port()
    server = EventOnlyServer(heartbeat_interval=0.5, heartbeat_timeout=3.0, port=port)
    hub = make_hub(server, reconnect_cap=1.0)
    got = []
    # The hub hears its own events: on connect its subscriptions are sent ahead of the
    # queued events, so the server routes every flushed event back to it.
    hub.subscribe("topic=studio.early", lambda e: got.append(e["data"]["n"]))
    hub.connect(wait=False)
    assert not hub.connected
    for n in range(5):
        assert hub.publish(Event("studio.early", data={"n": n})) is None  # never blocks
    assert hub.stats()["outgoing_queue"] == 5
    wait_for(lambda: len(hub.connection_attempts) >= 1, message="a failed attempt")
    assert not hub.connected
    with server:
        wait_for(lambda: len(got) == 5, timeout=10, message="the queued events")
        assert got == [0, 1, 2, 3, 4]
        assert hub.stats()["outgoing_queue"] == 0
        assert hub.stats()["dropped"] == 0


def test_hub_bounded_queue_drops_oldest_and_counts(make_hub):
    port = free_port()
    server = EventOnlyServer(heartbeat_interval=0.5, heartbeat_timeout=3.0, port=port)
    hub = make_hub(server, publish_queue_size=5, reconnect_cap=1.0)
    got = []
    hub.subscribe("topic=studio.bounded", lambda e: got.append(e["data"]["n"]))
    hub.connect(wait=False)
    for n in range(20):
        hub.publish(Event("studio.bounded", data={"n": n}))
    stats = hub.stats()
    assert stats["outgoing_queue"] == 5 and stats["dropped"] == 15
    with server:
        wait_for(lambda: len(got) == 5, timeout=10, message="the 5 kept events")
    assert got == [15, 16, 17, 18, 19]  # the oldest were dropped, the rest kept in order


def test_hub_reply_callbacks_expire(event_server, make_hub):
    hub = make_hub(event_server, reply_ttl=0.3)
    hub.connect(timeout=10)
    for _ in range(50):
        hub.publish(Event("studio.unanswered"), on_reply=lambda e: None)
    assert hub.stats()["reply_callbacks"] == 50
    # Heartbeats (every 0.5 s) drive the housekeeping that drops expired callbacks.
    wait_for(lambda: hub.stats()["reply_callbacks"] == 0, timeout=5, message="expiry")
    assert hub.stats()["replies_expired"] == 50


def test_hub_reply_callbacks_are_capped(event_server, make_hub):
    hub = make_hub(event_server, max_reply_callbacks=10)
    hub.connect(timeout=10)
    for _ in range(25):
        hub.publish(Event("studio.unanswered"), on_reply=lambda e: None)
    assert hub.stats()["reply_callbacks"] == 10


def test_hub_publish_of_unserialisable_data_fails_clearly_and_queues_nothing(
    event_server, make_hub
):
    from reviewd.api.exception import EventHubError

    hub = make_hub(event_server)
    hub.connect(timeout=10)
    before = hub.stats()["published"]
    with pytest.raises(EventHubError, match="JSON"):
        hub.publish(Event("studio.bad", data={"when": object()}))
    assert hub.stats()["published"] == before
    assert hub.stats()["reply_callbacks"] == 0


def test_hub_disconnect_stops_threads_and_leaves_the_server(event_server):
    before = {t.ident for t in threading.enumerate()}
    hub = EventHub(
        event_server.url, event_server.api_user, event_server.api_key, dispatch_thread=True
    )
    hub.subscribe("topic=a", lambda e: None)
    hub.connect(timeout=10)
    wait_for(lambda: event_server.events.connections(), message="server sees the hub")
    hub.disconnect()
    assert not hub.connected
    wait_for(lambda: not event_server.events.connections(), message="server forgets the hub")
    leftover = [
        t
        for t in threading.enumerate()
        if t.ident not in before and t.name.startswith("reviewd-hub")
    ]
    assert leftover == []
    with pytest.raises(EventHubConnectionError):
        hub.wait(5)  # disconnected for good: nothing can arrive (ftrack_api raises too)
    # And it can connect again.
    hub.connect(timeout=10)
    assert hub.subscribed
    hub.disconnect()


def test_hub_wait_returns_after_duration(event_server, make_hub):
    hub = make_hub(event_server)
    hub.connect(timeout=10)
    start = time.monotonic()
    hub.wait(0.2)
    assert time.monotonic() - start >= 0.2
    assert hub.connected


def test_hub_inline_dispatch_runs_on_the_reader_thread_when_asked(event_server, make_hub):
    hub = make_hub(event_server, inline_dispatch=True)
    names = []
    hub.subscribe("topic=studio.inline", lambda e: names.append(threading.current_thread().name))
    hub.connect(timeout=10)
    event_server.emit("studio.inline")
    wait_for(lambda: names, message="inline event")
    assert names[0].startswith("reviewd-hub-conn")


def test_hub_never_logs_the_api_key(event_server, caplog):
    wrong = "wrong-key-that-must-stay-hidden"
    with caplog.at_level(logging.DEBUG):
        refused = EventHub(event_server.url, event_server.api_user, wrong)
        with pytest.raises(EventHubConnectionError) as info:
            refused.connect(timeout=5)
        hub = EventHub(
            event_server.url, event_server.api_user, event_server.api_key, dispatch_thread=True
        )
        hub.subscribe("topic=studio.secret", lambda e: {"ok": 1})
        hub.connect(timeout=10)
        event_server.emit("studio.secret", wait_reply=5)
        event_server.faults.drop_all()
        wait_for(
            lambda: any(a.outcome.startswith("lost") for a in hub.connection_attempts),
            message="the drop",
        )
        wait_for(lambda: hub.subscribed, timeout=10, message="reconnect")
        hub.disconnect()
    text = caplog.text + str(info.value) + repr(hub) + repr(refused) + str(hub.stats())
    # The logs did record the refusal, the connection and the drop (so the check bites).
    assert "401" in caplog.text and "connected to the event server" in caplog.text
    assert "connection lost" in caplog.text
    assert wrong not in text
    assert event_server.api_key not in text
