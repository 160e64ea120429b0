"""Local dispatch of the hub (synchronous publishing): no server needed."""

from __future__ import annotations

import logging

import pytest

from reviewd.api.event.base import Event
from reviewd.api.event.expression import ParseError
from reviewd.api.event.hub import EventHub
from reviewd.api.exception import EventHubConnectionError, EventHubError, NotFoundError

SECRET = "local-hub-secret-key-abcdef"


@pytest.fixture
def hub():
    return EventHub("http://127.0.0.1:9", "tester", SECRET)


def test_hub_sync_publish_returns_results_in_priority_order(hub):
    calls = []
    hub.subscribe("topic=a", lambda e: calls.append("late") or "late", priority=200)
    hub.subscribe("topic=a", lambda e: calls.append("early") or "early", priority=10)
    hub.subscribe("topic=a", lambda e: calls.append("default") or None)
    hub.subscribe("topic=b", lambda e: calls.append("other") or "other")
    results = hub.publish(Event("a"), synchronous=True)
    assert calls == ["early", "default", "late"]
    assert results == ["early", None, "late"]


def test_hub_equal_priorities_run_in_subscription_order(hub):
    calls = []
    for name in "xyz":
        hub.subscribe("topic=a", lambda e, name=name: calls.append(name))
    hub.publish(Event("a"), synchronous=True)
    assert calls == ["x", "y", "z"]


def test_hub_stop_prevents_lower_priority_handlers(hub):
    calls = []

    def stopper(event):
        calls.append("stopper")
        event.stop()
        return "stopped"

    hub.subscribe("topic=a", stopper, priority=1)
    hub.subscribe("topic=a", lambda e: calls.append("never"), priority=2)
    assert hub.publish(Event("a"), synchronous=True) == ["stopped"]
    assert calls == ["stopper"]


def test_hub_handler_exception_is_logged_and_others_still_run(hub, caplog):
    def broken(event):
        raise RuntimeError("handler bug")

    broken_id = hub.subscribe("topic=a", broken, priority=1)
    hub.subscribe("topic=a", lambda e: "fine", priority=2)
    event = Event("a")
    with caplog.at_level(logging.ERROR, logger="reviewd.api.event.hub"):
        assert hub.publish(event, synchronous=True) == ["fine"]
    assert broken_id in caplog.text and event["id"] in caplog.text
    assert hub.stats()["handler_errors"] == 1


def test_hub_targeted_event_reaches_only_matching_metadata(hub):
    calls = []
    hub.subscribe("topic=a", lambda e: calls.append("one"), subscriber={"id": "one", "app": "x"})
    hub.subscribe("topic=a", lambda e: calls.append("two"), subscriber={"id": "two", "app": "y"})
    hub.publish(Event("a", target="app=y"), synchronous=True)
    assert calls == ["two"]
    calls.clear()
    hub.publish(Event("a", target="id=one or id=two"), synchronous=True)
    assert calls == ["one", "two"]


def test_hub_unparsable_target_reaches_nobody(hub, caplog):
    calls = []
    hub.subscribe("topic=a", calls.append)
    with caplog.at_level(logging.ERROR, logger="reviewd.api.event.hub"):
        assert hub.publish(Event("a", target="id="), synchronous=True) == []
    assert calls == [] and "target" in caplog.text


def test_hub_wildcard_and_topic_indexed_subscribers_mix(hub):
    calls = []
    hub.subscribe("topic=ftrack.*", lambda e: calls.append("wild"), priority=50)
    hub.subscribe("topic=ftrack.update", lambda e: calls.append("exact"), priority=10)
    hub.subscribe("data.any=1", lambda e: calls.append("data"), priority=60)
    hub.publish(Event("ftrack.update", data={"any": "1"}), synchronous=True)
    assert calls == ["exact", "wild", "data"]
    calls.clear()
    hub.publish(Event("ftrack.other"), synchronous=True)
    assert calls == ["wild"]


def test_hub_subscribe_returns_id_and_unsubscribe_removes(hub):
    calls = []
    subscriber_id = hub.subscribe("topic=a", calls.append, subscriber={"id": "mine", "x": 1})
    assert subscriber_id == "mine"
    assert [s.id for s in hub.subscribers] == ["mine"]
    assert hub.get_subscriber_by_identifier("mine").metadata == {"id": "mine", "x": 1}
    hub.unsubscribe("mine")
    hub.publish(Event("a"), synchronous=True)
    assert calls == [] and hub.subscribers == []
    with pytest.raises(NotFoundError):
        hub.unsubscribe("mine")


def test_hub_subscription_context_manager(hub):
    calls = []
    with hub.subscription("topic=a", calls.append) as subscriber_id:
        assert hub.get_subscriber_by_identifier(subscriber_id) is not None
        hub.publish(Event("a"), synchronous=True)
    hub.publish(Event("a"), synchronous=True)
    assert len(calls) == 1


def test_hub_bad_subscriptions_fail_clearly_and_change_nothing(hub):
    with pytest.raises(ParseError) as info:
        hub.subscribe("topic=a and", print)
    assert info.value.position == 11
    hub.subscribe("topic=a", print, subscriber={"id": "dup"})
    with pytest.raises(EventHubError, match="dup"):
        hub.subscribe("topic=b", print, subscriber={"id": "dup"})
    with pytest.raises(EventHubError):
        hub.subscribe("topic=b", print, subscriber={"id": hub.id})
    assert [s.subscription for s in hub.subscribers] == ["topic=a"]


def test_hub_sync_publish_sets_source(hub):
    seen = []
    hub.subscribe("topic=a", seen.append)
    hub.publish(Event("a"), synchronous=True)
    assert seen[0]["source"]["id"] == hub.id
    assert seen[0]["source"]["user"] == {"username": "tester"}


def test_hub_sync_publish_accepts_a_plain_mapping(hub):
    hub.subscribe("topic=a", lambda e: e["data"]["n"] * 2)
    assert hub.publish({"topic": "a", "data": {"n": 21}}, synchronous=True) == [42]


def test_hub_async_publish_before_connect_raises_unless_ignored(hub):
    with pytest.raises(EventHubConnectionError, match="connect"):
        hub.publish(Event("a"))
    assert hub.publish(Event("a"), on_error="ignore") is None
    assert hub.stats()["outgoing_queue"] == 0


def test_hub_secret_never_in_repr(hub):
    assert SECRET not in repr(hub)
    assert "tester" in repr(hub)


def test_hub_connect_to_nothing_fails_with_clear_error_and_stops():
    hub = EventHub("http://127.0.0.1:9", "tester", SECRET, reconnect_base=0.05)
    with pytest.raises(EventHubConnectionError) as info:
        hub.connect(timeout=0.5)
    message = str(info.value)
    assert "127.0.0.1:9" in message and SECRET not in message
    assert not hub.connected
    assert len(hub.connection_attempts) >= 2  # it retried within the timeout
    assert not hub.running  # it stopped trying
    # As with ftrack_api, a failed connect() leaves the hub initialised: what is
    # published now waits for the next successful connect() instead of raising.
    hub.publish(Event("a"))
    assert hub._event_send_queue.qsize() == 1


def test_hub_rejects_an_unusable_server_url():
    with pytest.raises(TypeError):
        EventHub("", "u", "k")


@pytest.mark.parametrize("url", ["ftp://host", "host:8080", "http://"])
def test_hub_rejects_a_malformed_server_url(url):
    with pytest.raises(ValueError, match="server_url"):
        EventHub(url, "u", "k")


def test_hub_reply_to_an_event_without_source_fails_clearly(hub):
    with pytest.raises(EventHubError, match="no source id"):
        hub.publish_reply({"id": "e1", "topic": "a", "source": {}}, {"x": 1})


def test_hub_topic_cache_follows_subscribe_and_unsubscribe(hub):
    calls = []
    hub.subscribe("topic=a", lambda e: calls.append("first"))
    hub.publish(Event("a"), synchronous=True)  # builds the cached candidates for "a"
    second = hub.subscribe("topic=a or topic=b", lambda e: calls.append("second"))
    hub.publish(Event("a"), synchronous=True)
    hub.unsubscribe(second)
    hub.publish(Event("a"), synchronous=True)
    assert calls == ["first", "first", "second", "first"]


def test_hub_event_with_odd_topic_is_matched_without_cache(hub):
    calls = []
    hub.subscribe("data.x=1", calls.append)
    hub.subscribe("topic=a", calls.append)
    event = Event("a", data={"x": "1"})
    event["topic"] = ["not", "a", "string"]
    assert len(hub.publish(event, synchronous=True)) == 1


def test_hub_wait_without_connect_explains_itself(hub):
    with pytest.raises(EventHubConnectionError, match="connect"):
        hub.wait(0.1)
