"""Acceptance 7: a soak of many events through the hub with 50 subscriptions.

20,000 events by default (about a few seconds); 100,000 with ``REVIEWD_SOAK=1``.
Reply callbacks, queues and pending acknowledgements must stay bounded throughout.
"""

from __future__ import annotations

import collections
import threading

import pytest

from reviewd.api.event.base import Event
from tests.conftest import SOAK
from tests.event.event_harness import burst, wait_for

EXACT_TOPICS = 40
KINDS = 5
CHUNK = 2000


@pytest.mark.soak
def test_hub_soak_many_events_fifty_subscriptions(event_server, make_hub):
    total = 100_000 if SOAK else 20_000
    hub = make_hub(
        event_server,
        reply_ttl=0.5,
        max_reply_callbacks=1000,
        incoming_queue_size=2000,
        publish_queue_size=5000,
    )
    counts: collections.Counter = collections.Counter()
    for j in range(EXACT_TOPICS):

        def exact(event, j=j):
            counts[f"exact{j}"] += 1
            assert event["topic"] == f"soak.t{j}"
            return {"seen": event["data"]["i"]} if j == 0 else None  # some replies go out

        hub.subscribe(f"topic=soak.t{j}", exact)
    for m in range(KINDS):

        def kind(event, m=m):
            counts[f"kind{m}"] += 1
            assert event["data"]["k"] == str(m)

        hub.subscribe(f"topic=soak.* and data.k={m}", kind)
    for m in range(KINDS):
        hub.subscribe(f"topic=other.{m}", lambda e: counts.update(["never"]))
    assert len(hub.subscribers) == 50
    hub.connect(timeout=10)

    peaks: collections.Counter = collections.Counter()
    sampling = threading.Event()

    def sample():
        while not sampling.wait(0.01):
            for key, value in hub.stats().items():
                peaks[key] = max(peaks[key], value)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    source = {"id": "soak-source", "user": {"username": "soak"}}
    try:
        for start in range(0, total, CHUNK):
            events = [
                {
                    "topic": f"soak.t{i % EXACT_TOPICS}",
                    "data": {"i": i, "k": str(i % KINDS)},
                    "source": source,
                }
                for i in range(start, min(total, start + CHUNK))
            ]
            burst(event_server, events)
            # Unanswered questions with reply callbacks, to show those stay bounded too.
            for _ in range(100):
                hub.publish(Event("soak.question"), on_reply=lambda e: None)
            done = min(total, start + CHUNK)
            wait_for(
                lambda done=done: sum(counts.values()) >= 2 * done,
                timeout=60,
                message=f"{done} events handled",
            )
    finally:
        sampling.set()
        sampler.join()

    assert counts["never"] == 0
    assert sum(counts.values()) == 2 * total
    assert all(counts[f"exact{j}"] == total // EXACT_TOPICS for j in range(EXACT_TOPICS))
    assert all(counts[f"kind{m}"] == total // KINDS for m in range(KINDS))
    stats = hub.stats()
    assert stats["handler_errors"] == 0 and stats["malformed"] == 0 and stats["dropped"] == 0
    assert stats["received"] >= total
    assert peaks["reply_callbacks"] <= 1000
    assert peaks["incoming_queue"] <= 2000
    assert peaks["outgoing_queue"] <= 5000
    assert peaks["pending_acks"] <= 5000
    wait_for(lambda: hub.stats()["reply_callbacks"] == 0, timeout=5, message="expiry")
