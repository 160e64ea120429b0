"""The hub's subscribers: who listens to what, in dispatch order, found fast per event.

Matching every subscription against every event is the dispatch hot path, so the
registry pre-filters by topic: for each topic seen it keeps the subscribers that may
match, each reduced to what is left to check once the topic is known (nothing at all
for a subscription to exactly that topic).  That table is rebuilt lazily after every
subscribe and unsubscribe, and bounded so that a flood of made-up topics cannot grow it.
"""

from __future__ import annotations

import itertools
import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from reviewd.api.event import expression as _expression
from reviewd.api.event.base import Event
from reviewd.api.event.subscriber import Subscriber
from reviewd.api.exception import NotFoundError, NotUniqueError

__all__ = ["Subscriptions"]

# The hub's logger: operators configure and filter "reviewd.api.event.hub", whichever
# module of the hub a line comes from.
log = logging.getLogger("reviewd.api.event.hub")

_TOPIC_CACHE_LIMIT = 4096


class Subscriptions:
    """Subscribers in dispatch order (priority, then subscription order).

    ``lock`` guards the registry; the hub also holds it while it re-subscribes on a new
    connection, so that a concurrent :meth:`add` is either in that snapshot or sent on
    its own, never lost.  Readers on the dispatch path take immutable snapshots.
    """

    def __init__(self, reserved_id: str) -> None:
        self.lock = threading.RLock()
        self._reserved_id = reserved_id  # the hub's own id (its reply subscriber)
        self._subscribers: list[Subscriber] = []
        self._by_id: dict[str, Subscriber] = {}
        self._order = itertools.count()
        self._topic_cache: dict[str | None, tuple[Any, ...]] = {}

    def __len__(self) -> int:
        return len(self._subscribers)

    def snapshot(self) -> list[Subscriber]:
        """A copy of the subscribers in dispatch order."""
        with self.lock:
            return list(self._subscribers)

    def get(self, identifier: str) -> Subscriber | None:
        with self.lock:
            return self._by_id.get(identifier)

    def add(
        self,
        subscription: str,
        callback: Callable[[Event], Any],
        subscriber: Mapping[str, Any] | None,
        priority: int,
    ) -> Subscriber:
        """Register a subscriber; its id is taken from *subscriber* or made up.

        Raises :class:`~reviewd.api.event.expression.ParseError` for a malformed subscription
        and :class:`NotUniqueError` if the id is in use.
        """
        metadata = dict(subscriber or {})
        metadata.setdefault("id", uuid.uuid4().hex)
        with self.lock:
            if metadata["id"] in self._by_id or metadata["id"] == self._reserved_id:
                raise NotUniqueError(f"subscriber with identifier {metadata['id']} already exists")
            entry = Subscriber(subscription, callback, metadata, priority, next(self._order))
            self._subscribers.append(entry)
            self._subscribers.sort(key=Subscriber.sort_key)
            self._by_id[metadata["id"]] = entry
            self._topic_cache = {}
        return entry

    def clear(self) -> list[Subscriber]:
        """Unregister every subscriber; return them."""
        with self.lock:
            removed, self._subscribers = self._subscribers, []
            self._by_id = {}
            self._topic_cache = {}
        return removed

    def remove(self, identifier: str) -> Subscriber:
        """Unregister a subscriber; raise :class:`NotFoundError` if there is none."""
        with self.lock:
            entry = self._by_id.pop(identifier, None)
            if entry is None:
                raise NotFoundError(f"missing subscriber with identifier {identifier}")
            self._subscribers.remove(entry)
            self._topic_cache = {}
        return entry

    def candidates(self, topic: Any) -> tuple[Any, ...]:
        """Subscribers that may match events of *topic*, each with what is left to check.

        Built once per topic (and again after every subscribe/unsubscribe): each
        subscription is partially evaluated with the topic known, so a subscription to
        exactly this topic needs no check per event (``None``), one that can never
        match is left out, and the rest keep only their non-topic conditions.
        """
        if topic.__class__ is not str:
            with self.lock:
                return tuple((entry, entry.expression.match) for entry in self._subscribers)
        cached = self._topic_cache.get(topic)
        if cached is not None:
            return cached
        with self.lock:
            candidates = []
            for entry in self._subscribers:
                topics = entry.expression.topics
                if topics is not None and topic not in topics:
                    continue
                remainder = entry.expression.bind("topic", topic)
                if remainder is False:
                    continue
                candidates.append((entry, None if remainder is True else remainder))
            if len(self._topic_cache) >= _TOPIC_CACHE_LIMIT:
                self._topic_cache = {}
            self._topic_cache[topic] = cached = tuple(candidates)
        return cached

    def matching(self, event: Event) -> list[Subscriber]:
        """The subscribers *event* reaches, in dispatch order.

        A targeted event reaches only the subscribers whose metadata its target matches;
        one whose target cannot be parsed reaches nobody (and is logged).
        """
        candidates = self.candidates(event.get("topic"))
        if not candidates:
            return []
        target = event.get("target")
        if target:
            try:
                target_match = _expression.parse(target).match
            except _expression.ParseError as error:
                log.error(
                    "dropping event %s: its target cannot be parsed: %s", event.get("id"), error
                )
                return []
            return [
                entry
                for entry, match in candidates
                if (match is None or match(event)) and target_match(entry.metadata)
            ]
        return [entry for entry, match in candidates if match is None or match(event)]
