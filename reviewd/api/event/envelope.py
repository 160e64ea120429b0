"""What the hub puts on every event it sends: its source, and a frame asking for an ack.

ftrack's server and peers expect ``source`` to name the sending hub (``id``), its user
and host, and the hub needs every frame acknowledged to learn about refusals, so both
are added here, in one place, for published events and the hub's own meta events
(subscribe, unsubscribe, ``ftrack.meta.connected``…) alike.
"""

from __future__ import annotations

import itertools
import platform
from collections.abc import Mapping
from typing import Any

from reviewd.api.event import packet as _packet
from reviewd.api.event.base import Event
from reviewd.api.event.subscriber import Subscriber
from reviewd.api.exception import EventHubError

__all__ = [
    "Envelope",
    "EVENT_NAME",
    "REPLY_TOPIC",
    "SUBSCRIBE_TOPIC",
    "UNSUBSCRIBE_TOPIC",
    "CONNECTED_TOPIC",
    "DISCONNECTED_TOPIC",
]

EVENT_NAME = "ftrack.event"
REPLY_TOPIC = "ftrack.meta.reply"
SUBSCRIBE_TOPIC = "ftrack.meta.subscribe"
UNSUBSCRIBE_TOPIC = "ftrack.meta.unsubscribe"
CONNECTED_TOPIC = "ftrack.meta.connected"
DISCONNECTED_TOPIC = "ftrack.meta.disconnected"


class Envelope:
    """Stamps events as sent by hub *hub_id* for *api_user* and frames them."""

    def __init__(self, hub_id: str, api_user: str) -> None:
        self._hub_id = hub_id
        self._api_user = api_user
        self._host = platform.node()
        self._ack_ids = itertools.count(1)

    def prepare(self, event: Event) -> None:
        """Fill in ``source.id``, ``source.user`` and ``source.host`` where missing."""
        source = event.get("source")
        if source.__class__ is not dict:
            source = event["source"] = dict(source) if isinstance(source, Mapping) else {}
        if "id" not in source:
            source["id"] = self._hub_id
        if "user" not in source:
            source["user"] = {"username": self._api_user}
        if "host" not in source:
            source["host"] = self._host

    def frame(self, event: Event, on_ack: Any) -> tuple[str, int, Any]:
        """Encode *event* as an event packet that asks for an acknowledgement."""
        ack_id = next(self._ack_ids)
        try:
            built = _packet.event(EVENT_NAME, [event.to_wire()], id=f"{ack_id}+")
        except (TypeError, ValueError) as error:
            raise EventHubError(
                f"cannot publish event {event.get('topic')!r}: its content is not "
                f"JSON-serialisable ({error})"
            ) from None
        return _packet.encode(built), ack_id, on_ack

    def meta_event(self, topic: str, data: dict[str, Any] | None = None) -> Event:
        """A prepared event of the hub's own (``ftrack.meta.*``)."""
        event = Event(topic) if data is None else Event(topic, data=data)
        self.prepare(event)
        return event

    def subscribe_frame(self, entry: Subscriber, on_ack: Any = None) -> tuple[str, int, Any]:
        event = self.meta_event(
            SUBSCRIBE_TOPIC, {"subscriber": entry.metadata, "subscription": entry.subscription}
        )
        return self.frame(event, on_ack or ("subscribe", f"subscriber {entry.id}", None))

    def unsubscribe_frame(self, subscriber_id: str) -> tuple[str, int, Any]:
        event = self.meta_event(UNSUBSCRIBE_TOPIC, {"subscriber": {"id": subscriber_id}})
        return self.frame(event, None)
