"""Soak: connection churn, garbage and fault switches while a steady pair exchanges events.

Short by default; ``REVIEWD_SOAK=1`` runs it for a minute.  The steady pair must see
every event, in order, on a connection that none of the chaos targeted.
"""

from __future__ import annotations

import random
import threading
import time

import pytest

from tests.conftest import SOAK
from tests.devserver_events.devserver_events_support import RawClient, wait_until, wire_event

pytestmark = pytest.mark.soak
DURATION = 60.0 if SOAK else 3.0


def test_chaos_around_a_steady_pair(event_app):
    stop = threading.Event()
    failures: list[BaseException] = []

    def churn(seed: int) -> None:
        chance = random.Random(seed)
        while not stop.is_set():
            try:
                with RawClient(event_app) as client:
                    client.subscribe("topic=chaos.*")
                    for _ in range(chance.randint(1, 5)):
                        client.send(chance.choice(["garbage", "5:1+::{", "9::", "2::"]))
                    client.publish(wire_event("chaos.ping"))
            except Exception as error:  # only the steady pair's traffic is asserted
                if not stop.is_set() and "closed" not in str(error).lower():
                    failures.append(error)

    with RawClient(event_app) as subscriber, RawClient(event_app) as publisher:
        subscriber.subscribe("topic=steady")
        workers = [threading.Thread(target=churn, args=(n,), daemon=True) for n in range(2)]
        for worker in workers:
            worker.start()
        sent = 0
        deadline = time.monotonic() + DURATION
        while time.monotonic() < deadline:
            publisher.emit_packet(wire_event("steady", {"n": sent}))
            sent += 1
            if sent % 50 == 0:
                event_app.faults.send_malformed(sid=None)  # everyone, steady pair included
                event_app.faults.delay_acks(0.05)
            if sent % 75 == 0:
                event_app.faults.restore_acks()
            time.sleep(0.005)  # pacing the producer, not synchronising
        stop.set()
        for worker in workers:
            worker.join(30)
        event_app.faults.reset()
        wait_until(lambda: len(subscriber.events()) == sent, 30, message=f"{sent} events")
        assert [e["data"]["n"] for e in subscriber.events()] == list(range(sent))
        assert not subscriber.closed.is_set() and not publisher.closed.is_set()
    assert failures == []
