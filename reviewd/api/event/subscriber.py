"""A subscriber: a callback, the expression it listens to, its metadata and priority.

The expression is compiled once here, at subscribe time, so that a malformed
subscription fails in the caller's hands (with the position of the mistake) and
dispatch only ever calls an already-compiled matcher.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from reviewd.api.event import expression as _expression

__all__ = ["Subscriber"]


class Subscriber:
    """One subscription of an :class:`~reviewd.api.event.hub.EventHub`.

    ``metadata`` always holds an ``id``; a targeted event (``target: "id=..."``) reaches
    the subscriber only when the target expression matches this metadata.
    """

    __slots__ = ("subscription", "expression", "callback", "metadata", "priority", "order")

    def __init__(
        self,
        subscription: str,
        callback: Callable[[Any], Any],
        metadata: Mapping[str, Any],
        priority: int = 100,
        order: int = 0,
    ) -> None:
        # None is accepted, as ftrack_api does (a placeholder subscription); an event
        # reaching it is then a handler error like any other.
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable, not {type(callback).__name__}")
        identifier = metadata.get("id")
        if identifier is not None and (not isinstance(identifier, str) or not identifier):
            raise ValueError("a subscriber's metadata 'id' must be a non-empty string")
        self.subscription = subscription
        self.expression = _expression.parse(subscription)
        self.callback = callback
        self.metadata = dict(metadata)
        self.priority = priority
        #: Subscription sequence number: equal priorities run in subscription order.
        self.order = order

    @property
    def id(self) -> str | None:
        """The subscriber id (the hub always gives one; a bare Subscriber may lack it)."""
        return self.metadata.get("id")

    def interested_in(self, event: Mapping[str, Any]) -> bool:
        """Whether *event* matches this subscription (the target is checked separately)."""
        return self.expression.match(event)

    def sort_key(self) -> tuple[Any, ...]:
        return (self.priority, self.order)

    def __str__(self) -> str:
        return f'<Subscriber metadata={self.metadata!r} subscription="{self.subscription}">'

    def __repr__(self) -> str:
        name = getattr(self.callback, "__qualname__", type(self.callback).__name__)
        return (
            f"<Subscriber id={self.id!r} subscription={self.subscription!r} "
            f"priority={self.priority} callback={name}>"
        )
