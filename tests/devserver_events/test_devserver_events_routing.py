"""Routing through the topic index gives exactly what matching every subscription gave.

The event server files subscriptions by the topics they pin and asks only those (plus
the ones that pin no topic).  These tests cover the subscriptions the index cannot file
by topic — wildcards, ``not``, an ``or`` over another key, the empty subscription — and
the index staying right while subscriptions come, go and move between connections.

Each client also subscribes to ``topic=test.end``; the publisher's events are routed in
the order their acks come back, so once a client holds the final ``test.end`` event it
holds everything it will ever get from the events before it.
"""

from __future__ import annotations

from reviewd.api.event import expression
from tests.devserver_events.devserver_events_support import RawClient, wait_until, wire_event

END = "test.end"


def received(client: RawClient) -> list[int]:
    """The ``n`` of every event *client* got before the end marker, in order."""
    client.wait_event(lambda e: e["topic"] == END, message="the end marker")
    numbers = []
    for event in client.events():
        if event["topic"] == END:
            break
        numbers.append(event["data"]["n"])
    return numbers


def test_subscriptions_that_pin_no_topic_get_what_they_match(event_app):
    subscriptions = {
        "wildcard": ("topic=test.route.*", {}),
        "wildcard_maya": ("topic=test.route.*", {"applicationId": "maya"}),
        "negated": ("not topic=test.route.a", {}),
        "negated_group": ("not (topic=test.route.a or topic=test.route.b)", {}),
        "either": ("topic=test.route.a or data.flag=yes", {}),
        "both": ("topic=test.route.b and data.flag=yes", {}),
        "never": ("topic=test.route.a and topic=test.route.b", {}),
        "everything": ("", {}),
    }
    events = [
        wire_event("test.route.a", {"n": 1, "flag": "no"}),
        wire_event("test.route.b", {"n": 2, "flag": "yes"}),
        wire_event("test.route.c", {"n": 3, "flag": "yes"}),
        wire_event("other.topic", {"n": 4, "flag": "yes"}),
        wire_event("test.route.c", {"n": 5}, target="applicationId=maya"),
        wire_event("test.route.b", {"n": 6, "flag": "no"}),
    ]
    expected = {
        "wildcard": [1, 2, 3, 6],
        "wildcard_maya": [1, 2, 3, 5, 6],
        "negated": [2, 3, 4, 6],
        "negated_group": [3, 4],
        "either": [1, 2, 3, 4],
        "both": [2],
        "never": [],
        "everything": [1, 2, 3, 4, 6],
    }
    clients = {name: RawClient(event_app) for name in subscriptions}
    try:
        with RawClient(event_app) as publisher:
            for name, (subscription, metadata) in subscriptions.items():
                assert clients[name].subscribe(subscription, **metadata)["success"]
                if name not in ("negated", "negated_group", "everything"):
                    assert clients[name].subscribe(f"topic={END}")["success"]
            # A second matching subscriber on one connection still means one delivery.
            assert clients["either"].subscribe("topic=test.route.a")["success"]
            for event in events:
                assert publisher.publish(event) == {"success": True}
            assert publisher.publish(wire_event(END, {"n": 0})) == {"success": True}
            got = {name: received(client) for name, client in clients.items()}
    finally:
        for client in clients.values():
            client.close()
    assert got == expected
    # The same answers as asking every expression directly (the matcher is the reference).
    for name, (subscription, metadata) in subscriptions.items():
        matcher = expression.parse(subscription)
        reference = [
            event["data"]["n"]
            for event in events
            if matcher.match(event)
            and (not event["target"] or expression.parse(event["target"]).match(metadata))
        ]
        assert reference == expected[name], name


def test_index_follows_subscribe_unsubscribe_and_moves(event_app):
    with (
        RawClient(event_app) as pinned,
        RawClient(event_app) as wild,
        RawClient(event_app) as mover,
        RawClient(event_app) as publisher,
    ):
        for client in (pinned, wild, mover):
            assert client.subscribe(f"topic={END}")["success"]

        def publish(n: int, **data) -> None:
            assert publisher.publish(wire_event("test.churn.x", {"n": n, **data}))["success"]

        assert pinned.subscribe("topic=test.churn.x", subscriber_id="pinned-x")["success"]
        publish(1)  # the topic's candidates are now worked out and kept
        # A subscription that pins no topic arrives after that: it is asked from now on.
        assert wild.subscribe("topic=test.churn.*", subscriber_id="wild")["success"]
        publish(2)
        assert pinned.unsubscribe("pinned-x")["success"]
        publish(3)
        assert pinned.subscribe("topic=test.churn.x and data.k=1")["success"]
        publish(4, k="1")
        publish(5, k="2")
        # The wildcard subscriber id re-subscribes on another connection: it moves there.
        assert mover.subscribe("topic=test.churn.*", subscriber_id="wild")["success"]
        publish(6)
        assert mover.unsubscribe("wild")["success"]
        publish(7)
        assert publisher.publish(wire_event(END, {"n": 0}))["success"]
        assert received(pinned) == [1, 2, 4]
        assert received(wild) == [2, 3, 4, 5]
        assert received(mover) == [6]


def test_subscriptions_leave_the_index_with_their_connection(event_app):
    with RawClient(event_app) as keeper, RawClient(event_app) as publisher:
        assert keeper.subscribe(f"topic={END}")["success"]
        assert keeper.subscribe("topic=test.gone")["success"]
        for subscription in ("topic=test.gone", "not topic=test.other"):
            leaver = RawClient(event_app)
            assert leaver.subscribe(subscription, subscriber_id="leaver")["success"]
            assert publisher.publish(wire_event("test.gone", {"n": 1}))["success"]
            leaver.wait_event(lambda e: e["topic"] == "test.gone")
            leaver.close()
            sid = leaver.sid
            wait_until(
                lambda sid=sid: all(c["sid"] != sid for c in event_app.events.connections()),
                message="the leaver's connection to go",
            )
            # Nothing left behind: routing still works and counts only live connections.
            delivered = event_app.events.call_in_loop(
                lambda: event_app.events._route(wire_event("test.gone", {"n": 2}))
            )
            assert delivered == 1  # the keeper alone
        assert len(event_app.events._index) == 2  # the keeper's two subscribers


def test_a_busy_topic_keeps_routing_right_once_every_subscription_is_bound(event_app):
    from reviewd.devserver.routing import BIND_AFTER

    subscriptions = {
        "wild": "topic=test.busy.*",
        "odd_or_elsewhere": "not topic=test.busy.x or data.odd=yes",
        "never": "not topic=test.busy.x and data.odd=yes",
        "even": "topic=test.other or data.odd=no",
    }
    clients = {name: RawClient(event_app) for name in subscriptions}
    count = 2 * BIND_AFTER + 5  # well past the point where the topic counts as busy
    try:
        with RawClient(event_app) as publisher:
            for name, subscription in subscriptions.items():
                assert clients[name].subscribe(subscription)["success"]
                assert clients[name].subscribe(f"topic={END}")["success"]
            for n in range(1, count + 1):
                event = wire_event("test.busy.x", {"n": n, "odd": "yes" if n % 2 else "no"})
                assert publisher.publish(event) == {"success": True}
            assert publisher.publish(wire_event(END, {"n": 0})) == {"success": True}
            got = {name: received(client) for name, client in clients.items()}
    finally:
        for client in clients.values():
            client.close()
    numbers = list(range(1, count + 1))
    assert got == {
        "wild": numbers,
        "odd_or_elsewhere": [n for n in numbers if n % 2],
        "never": [],
        "even": [n for n in numbers if not n % 2],
    }
