"""Unit tests of the pure pieces around the hub: Event, Subscriber, Backoff, dead_after."""

from __future__ import annotations

import json
import os
import pickle

import pytest

from reviewd.api.event.backoff import Backoff
from reviewd.api.event.base import Event
from reviewd.api.event.connection import _ssl_options, dead_after
from reviewd.api.event.expression import ParseError
from reviewd.api.event.subscriber import Subscriber


def test_event_defaults_follow_ftrack():
    event = Event("ftrack.update")
    assert set(event) == {"id", "data", "topic", "sent", "source", "target", "in_reply_to_event"}
    assert len(event["id"]) == 32
    assert event["data"] == {} and event["source"] == {} and event["target"] == ""
    assert event["in_reply_to_event"] is None
    assert Event("a")["id"] != Event("a")["id"]


def test_event_stop():
    event = Event("a")
    assert not event.is_stopped()
    event.stop()
    assert event.is_stopped()


def test_event_wire_translation_round_trip(fixtures_dir):
    with open(os.path.join(fixtures_dir, "events", "ftrack.action.discover.json")) as fh:
        wire = json.load(fh)
    event = Event.from_wire(wire)
    assert "inReplyToEvent" not in event
    assert event["in_reply_to_event"] is None
    assert event["source"]["applicationId"] == "ftrack.client.web"
    assert event.to_wire() == wire


def test_event_from_wire_keeps_reply_data_that_is_not_a_mapping():
    event = Event.from_wire({"topic": "ftrack.meta.reply", "data": [1, 2], "inReplyToEvent": "x"})
    assert event["data"] == [1, 2]
    assert event["in_reply_to_event"] == "x"


@pytest.mark.parametrize("payload", [None, [], "text", {}, {"topic": ""}, {"topic": 3}])
def test_event_from_wire_rejects_non_events(payload):
    with pytest.raises(ValueError):
        Event.from_wire(payload)


def test_event_is_json_serialisable_and_picklable():
    event = Event("a", data={"x": 1}, in_reply_to_event="e")
    assert json.loads(json.dumps(event.to_wire()))["inReplyToEvent"] == "e"
    clone = pickle.loads(pickle.dumps(event))
    assert clone == event and isinstance(clone, Event)


def test_event_repr_is_short_and_names_topic():
    event = Event("ftrack.update", data={"secret": "x" * 1000})
    assert "ftrack.update" in repr(event)
    assert len(repr(event)) < 100


def test_subscriber_compiles_its_expression_once():
    subscriber = Subscriber("topic=a", print, {"id": "s1"}, priority=5)
    assert subscriber.id == "s1"
    assert subscriber.interested_in({"topic": "a"})
    assert not subscriber.interested_in({"topic": "b"})
    assert subscriber.expression.text == "topic=a"


def test_subscriber_rejects_bad_input():
    with pytest.raises(ParseError):
        Subscriber("topic=", print, {"id": "s"})
    with pytest.raises(TypeError):
        Subscriber("topic=a", "not callable", {"id": "s"})
    with pytest.raises(ValueError):
        Subscriber("topic=a", print, {"id": ""})
    # ftrack_api's shapes are accepted: metadata without an id, no callback yet
    assert Subscriber("topic=a", None, {"meta": "info"}).id is None
    assert str(Subscriber("topic=a", print, {"meta": "info"})) == (
        "<Subscriber metadata={'meta': 'info'} subscription=\"topic=a\">"
    )


def test_backoff_is_capped_exponential_with_full_jitter():
    backoff = Backoff(base=1.0, cap=8.0, random_fraction=lambda: 1.0)
    assert [backoff.next_delay() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    backoff.reset()
    assert backoff.next_delay() == 1.0
    zero = Backoff(base=1.0, cap=8.0, random_fraction=lambda: 0.0)
    assert zero.next_delay() == 0.0


def test_backoff_real_jitter_stays_within_ceiling_and_varies():
    backoff = Backoff(base=0.5, cap=4.0)
    delays = []
    for attempt in range(200):
        ceiling = backoff.ceiling()
        delay = backoff.next_delay()
        assert 0.0 <= delay <= ceiling <= 4.0
        delays.append(delay)
        if attempt % 10 == 9:
            backoff.reset()
    assert len(set(delays)) > 150  # jittered, not a fixed schedule


def test_backoff_survives_a_very_long_outage():
    backoff = Backoff(base=1.0, cap=60.0)
    backoff.attempt = 10_000
    assert 0.0 <= backoff.next_delay() <= 60.0


def test_backoff_rejects_nonsense():
    with pytest.raises(ValueError):
        Backoff(base=0)


def test_dead_after_adds_a_margin():
    assert dead_after(0) is None
    assert dead_after(1.5) == 2.0
    assert dead_after(25) == 30.0
    assert dead_after(100) == 105.0


def test_tls_options_follow_verify_and_ca_bundle(monkeypatch, tmp_path):
    import ssl

    assert _ssl_options(False)["cert_reqs"] == ssl.CERT_NONE
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    assert _ssl_options(True) == {"cert_reqs": ssl.CERT_REQUIRED}
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    assert _ssl_options(True)["ca_certs"] == str(bundle)
    assert _ssl_options(str(tmp_path))["ca_cert_path"] == str(tmp_path)
