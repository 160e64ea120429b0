"""The event mapping handed to subscribers, with ftrack's familiar keys and methods.

``Event`` is a ``dict`` subclass rather than a wrapper around one: expressions match it
and the codec serialises it with plain dictionary lookups, which keeps the hot dispatch
path free of Python-level ``__getitem__`` calls.  Keys use ftrack's Python names
(``in_reply_to_event``); :meth:`Event.to_wire` / :meth:`Event.from_wire` translate to
and from the server's camelCase ``inReplyToEvent``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

__all__ = ["Event"]

_WIRE_TO_LOCAL = {"inReplyToEvent": "in_reply_to_event"}
_LOCAL_TO_WIRE = {local: wire for wire, local in _WIRE_TO_LOCAL.items()}


class Event(dict[str, Any]):
    """One event: ``id``, ``topic``, ``data``, ``source``, ``target``, ``sent``,
    ``in_reply_to_event``; ``stop()`` ends local dispatch to lower-priority handlers."""

    __slots__ = ("_stopped", "_wire_text")

    def __init__(
        self,
        topic: str,
        id: str | None = None,  # noqa: A002 - ftrack's public argument name
        data: Mapping[str, Any] | None = None,
        sent: Any = None,
        source: Mapping[str, Any] | None = None,
        target: str = "",
        in_reply_to_event: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(
            id=id or uuid.uuid4().hex,
            # Kept as given (not copied), as ftrack does: callers may keep a reference.
            data=data if data is not None else {},
            topic=topic,
            sent=sent,
            source=source if source is not None else {},
            target=target or "",
            in_reply_to_event=in_reply_to_event,
        )
        if extra:
            self.update(extra)
        self._stopped = False
        self._wire_text: str | None = None

    # ----------------------------------------------------------------- control
    def stop(self) -> None:
        """Stop further local processing of this event (lower-priority handlers)."""
        self._stopped = True

    def is_stopped(self) -> bool:
        return self._stopped

    # ----------------------------------------------------------------- wire form
    @classmethod
    def from_wire(cls, payload: Mapping[str, Any], wire_text: str | None = None) -> Event:
        """Build an event from its wire form; raise ``ValueError`` if it is not one.

        *wire_text*: the JSON text *payload* was decoded from (kept as :attr:`wire_text`
        when it names the event's id, so that a store can keep the text as received)."""
        if not isinstance(payload, Mapping):
            raise ValueError(f"an event must be a JSON object, not {type(payload).__name__}")
        topic = payload.get("topic")
        if not isinstance(topic, str) or not topic:
            raise ValueError("an event needs a non-empty string 'topic'")
        event = cls.__new__(cls)
        dict.__init__(event, payload)  # one C-level copy; then fix up the few odd keys
        if "inReplyToEvent" in event:
            event["in_reply_to_event"] = event.pop("inReplyToEvent")
        else:
            event.setdefault("in_reply_to_event", None)
        if event.get("data") is None:
            event["data"] = {}
        if event.get("source").__class__ is not dict:
            event["source"] = {}
        if "id" not in event:
            event["id"] = uuid.uuid4().hex
            wire_text = None  # the text would not carry the id given here
        if "target" not in event:
            event["target"] = ""
        if "sent" not in event:
            event["sent"] = None
        event._stopped = False
        event._wire_text = wire_text
        return event

    @property
    def wire_text(self) -> str | None:
        """The JSON text this event arrived as from the event server (before any handler
        saw it), or None (built locally, or sent in a form not kept)."""
        return self._wire_text

    def to_wire(self) -> dict[str, Any]:
        """Return a plain dict in wire form (``inReplyToEvent``), ready for JSON."""
        return {_LOCAL_TO_WIRE.get(key, key): value for key, value in self.items()}

    # ----------------------------------------------------------------- display
    def __repr__(self) -> str:
        return f"<Event {self.get('topic')!r} id={self.get('id')!r}>"

    def __str__(self) -> str:
        # ftrack_api shows the whole mapping; scripts grep their logs for it.
        return f"<Event {dict.__repr__(self)}>"

    @property
    def _data(self) -> dict[str, Any]:
        """The mapping itself: ftrack_api keeps an event's values in ``_data``, and
        plugins written for it read them there."""
        return self

    def copy(self) -> Event:
        duplicate = Event.from_wire(self.to_wire())
        duplicate._stopped = self._stopped
        return duplicate

    def __reduce__(self) -> Any:
        return (Event.from_wire, (self.to_wire(),))
