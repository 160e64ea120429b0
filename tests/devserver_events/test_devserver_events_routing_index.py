"""The topic index on its own: its candidates, checked with what each leaves to match,
are exactly the subscriptions whose expressions match — for fresh topics, busy ones,
and while subscriptions come and go.  Subscriptions are real parsed expressions."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from reviewd.api.event import expression
from reviewd.devserver.routing import BIND_AFTER, TOPIC_CACHE_LIMIT, SubscriptionIndex

TEXTS = [
    "topic=a",
    "topic=a and data.k=1",
    "topic=a or topic=b",
    "topic=b and not data.k=1",
    "topic=a and topic=b",
    "topic=*",
    "topic=a* and data.k=2",
    "not topic=a",
    "not (topic=a or topic=b) or data.k=1",
    "topic=a or data.k=2",
    "",
    "data.k=1",
]
TOPICS = ["a", "b", "ab", "c"]
EVENTS = [{"topic": topic, "data": {"k": k}} for topic in TOPICS for k in ("1", "2", "3")]


@dataclass
class Sub:
    """What the index needs of a subscriber: an id and a parsed expression."""

    id: str
    expression: expression.Expression


def matched(index: SubscriptionIndex, event: dict) -> set[str]:
    return {
        subscriber.id
        for _owner, subscriber, remainder in index.candidates(event["topic"])
        if remainder is None or remainder(event)
    }


def reference(subscribers: dict[str, Sub], event: dict) -> set[str]:
    return {sid for sid, sub in subscribers.items() if sub.expression.match(event)}


def test_candidates_equal_matching_every_expression_fresh_and_busy():
    index = SubscriptionIndex()
    subscribers = {f"s{i}": Sub(f"s{i}", expression.parse(text)) for i, text in enumerate(TEXTS)}
    for sid, sub in subscribers.items():
        index.add(sid, "owner", sub)
    assert len(index) == len(TEXTS)
    # Route each event often enough that every topic is promoted to fully bound.
    for _round in range(BIND_AFTER + 2):
        for event in EVENTS:
            assert matched(index, event) == reference(subscribers, event), event


def test_candidates_follow_adds_discards_and_replacements():
    index = SubscriptionIndex()
    subscribers: dict[str, Sub] = {}
    texts = itertools.cycle(TEXTS)
    for step in range(3 * len(TEXTS)):
        sid = f"s{step % 7}"  # the same keys come back with other expressions
        if step % 3 == 2:
            index.discard(sid)
            subscribers.pop(sid, None)
        else:
            sub = Sub(sid, expression.parse(next(texts)))
            index.add(sid, "owner", sub)
            subscribers[sid] = sub
        for _ in range(BIND_AFTER // 8):  # some topics become busy between changes
            for event in EVENTS:
                assert matched(index, event) == reference(subscribers, event), (step, event)
    index.discard("not-there")  # harmless
    for sid in list(subscribers):
        index.discard(sid)
    assert len(index) == 0
    assert all(index.candidates(event["topic"]) == () for event in EVENTS)


def test_a_flood_of_new_topics_stays_right_past_the_cache_limit():
    index = SubscriptionIndex()
    subscribers = {f"s{i}": Sub(f"s{i}", expression.parse(text)) for i, text in enumerate(TEXTS)}
    for sid, sub in subscribers.items():
        index.add(sid, "owner", sub)
    for n in range(TOPIC_CACHE_LIMIT + 50):
        event = {"topic": f"made.up.{n}", "data": {"k": str(n % 3)}}
        assert matched(index, event) == reference(subscribers, event)
    for event in EVENTS:  # the real topics still route right afterwards
        assert matched(index, event) == reference(subscribers, event)
