"""Which subscribers may want an event of a given topic, without asking all of them.

Nearly every subscription pins its topic (``topic=ftrack.update and ...``), and an
event server with many hubs holds hundreds of them for dozens of topics.  Matching each
event against every subscription would spend most of its time proving that
``topic=ftrack.action.launch`` does not match an ``ftrack.update``.  This index files a
subscription under the exact topics it can match (``Expression.topics``) or, when the
expression does not pin the topic (wildcards, ``not``, an ``or`` with another key), with
the few that must always be asked.

For one topic the candidates are computed once and kept until a subscription that could
match that topic comes or goes.  Each candidate carries what is left of its expression
once the topic is known (``Expression.bind``): ``None`` when the topic alone decides
(nothing to call per event), else a smaller matcher; a subscription whose rest can never
hold is not a candidate at all.

Binding compiles a matcher and costs as much as some dozens of matches.  A pinned
subscription is bound only for its own few topics, so it is bound at once.  One that
pins no topic would be bound for every topic any client cares to publish — a flood of
made-up topics would then cost far more than matching ever did — so it keeps its whole
matcher until its topic has been routed :data:`BIND_AFTER` times, and is bound then.
Bound matchers are remembered by (subscription text, topic), so rebuilding a topic's
list after a subscription comes or goes (a reconnecting hub's, say) binds nothing anew.

The index only knows keys and objects it is given; the event server owns connections
and subscribers and tells the index about every change.  It is used from one event loop
and is not thread-safe.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any

#: Topics whose candidate lists are kept at once; topics are chosen by clients, so the
#: cache starts afresh rather than grow without bound.
TOPIC_CACHE_LIMIT = 1024
#: Partially evaluated expressions kept, by (subscription text, topic).
BOUND_CACHE_LIMIT = 16384
#: Events of one topic routed before subscriptions that pin no topic are bound for it.
BIND_AFTER = 64

#: A candidate: (owner, subscriber, remaining matcher or None when the topic decides).
Candidate = tuple[Any, Any, "Callable[[Mapping], bool] | None"]


class SubscriptionIndex:
    """Subscribers filed by the exact topics their expressions can match.

    Each entry is keyed by a hashable *key* (the event server uses ``(sid, subscriber
    id)``), belongs to an *owner* (its connection) and has a *subscriber* whose
    ``expression`` is a :class:`reviewd.api.event.expression.Expression`.  Candidates come
    out pinned subscriptions first, then the others, each group in the order added.
    """

    def __init__(self) -> None:
        self._entries: dict[Hashable, tuple[Any, Any]] = {}
        self._by_topic: dict[str, dict[Hashable, None]] = {}
        self._any_topic: dict[Hashable, None] = {}
        self._candidates: dict[str, tuple[Candidate, ...]] = {}
        # Topics whose cached list still holds unbound matchers -> routes left until
        # they are bound; topics not here have nothing left to bind.
        self._unbound: dict[str, int] = {}
        self._bound: dict[tuple[str, str], Any] = {}
        # Topics the subscriptions that pin no topic were bound for (their results may be
        # in _bound); for any other topic there is nothing of theirs to look up.
        self._bound_topics: set[str] = set()
        # Every subscription that pins no topic with its whole matcher, built on demand.
        self._any_unbound: tuple[Candidate, ...] | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, key: Hashable, owner: Any, subscriber: Any) -> None:
        """File *subscriber* (replacing an entry with the same *key*)."""
        self.discard(key)
        topics = subscriber.expression.topics
        self._entries[key] = (owner, subscriber)
        if topics is None:
            self._any_topic[key] = None
            self._forget_all()
            return
        for topic in topics:
            self._by_topic.setdefault(topic, {})[key] = None
            self._forget(topic)

    def discard(self, key: Hashable) -> None:
        """Forget the entry *key*, if there is one."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        topics = entry[1].expression.topics
        if topics is None:
            del self._any_topic[key]
            self._forget_all()
            return
        for topic in topics:
            keys = self._by_topic.get(topic)
            if keys is not None:
                keys.pop(key, None)
                if not keys:
                    del self._by_topic[topic]
            self._forget(topic)

    def candidates(self, topic: str) -> tuple[Candidate, ...]:
        """Entries that may match an event whose ``topic`` is the string *topic*."""
        cached = self._candidates.get(topic)
        if cached is not None:
            if topic not in self._unbound:
                return cached
            left = self._unbound[topic] - 1
            if left > 0:
                self._unbound[topic] = left
                return cached
            del self._unbound[topic]  # a busy topic: worth binding everything for it
            return self._build(topic, bind_all=True)
        return self._build(topic, bind_all=False)

    def _build(self, topic: str, bind_all: bool) -> tuple[Candidate, ...]:
        entries = self._entries
        found: list[Candidate] = []
        for key in self._by_topic.get(topic, ()):
            owner, subscriber = entries[key]
            remainder = self._bind(subscriber.expression, topic)
            if remainder is not False:
                found.append((owner, subscriber, None if remainder is True else remainder))
        unbound = False
        if not bind_all and self._any_topic and topic not in self._bound_topics:
            # A topic never seen before (the common case in a flood): nothing to look up.
            if self._any_unbound is None:
                self._any_unbound = tuple(
                    (owner, subscriber, subscriber.expression.match)
                    for owner, subscriber in map(entries.__getitem__, self._any_topic)
                )
            found.extend(self._any_unbound)
            unbound = True
        else:
            unbound = self._add_any_topic(topic, bind_all, found)
        if len(self._candidates) >= TOPIC_CACHE_LIMIT:
            self._forget_all()
        self._candidates[topic] = result = tuple(found)
        if unbound:
            self._unbound[topic] = BIND_AFTER
        return result

    def _add_any_topic(self, topic: str, bind_all: bool, found: list[Candidate]) -> bool:
        """Append the subscriptions that pin no topic; True when some stay unbound."""
        entries = self._entries
        unbound = False
        if bind_all:
            self._bound_topics.add(topic)
        for key in self._any_topic:
            owner, subscriber = entries[key]
            expression = subscriber.expression
            if bind_all:
                remainder = self._bind(expression, topic)
            else:
                remainder = self._bound.get((expression.text, topic))
                if remainder is None:
                    unbound = True
                    found.append((owner, subscriber, expression.match))
                    continue
            if remainder is not False:
                found.append((owner, subscriber, None if remainder is True else remainder))
        return unbound

    def _forget(self, topic: str) -> None:
        self._candidates.pop(topic, None)
        self._unbound.pop(topic, None)

    def _forget_all(self) -> None:
        self._candidates.clear()
        self._unbound.clear()
        self._any_unbound = None

    def _bind(self, expression: Any, topic: str) -> Any:
        """``expression.bind("topic", topic)``, remembered: binding compiles a matcher."""
        key = (expression.text, topic)
        bound = self._bound.get(key)
        if bound is None:
            if len(self._bound) >= BOUND_CACHE_LIMIT:
                self._bound.clear()
                self._bound_topics.clear()
            self._bound[key] = bound = expression.bind("topic", topic)
        return bound


__all__ = [
    "BIND_AFTER",
    "BOUND_CACHE_LIMIT",
    "Candidate",
    "SubscriptionIndex",
    "TOPIC_CACHE_LIMIT",
]
