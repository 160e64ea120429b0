"""What each frame from the event server means, decided on the socket reader thread.

Events go to the inbox (or straight to dispatch with ``inline_dispatch``), replies also
to the callback waiting for them, heartbeats are answered, acknowledgements settled,
server errors logged; a malformed frame is counted, logged and skipped, so a server
that sends garbage costs a log line, not the connection.  At most once a second, on a
frame other than a plain event (heartbeats come regularly), expired acknowledgements
and reply callbacks are forgotten.

The common frame — an event that wants no acknowledgement — is recognised by its
prefix and never goes through the general packet decoder: this is the receive hot path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from reviewd.api.event import packet as _packet
from reviewd.api.event.acks import PendingAcks
from reviewd.api.event.base import Event
from reviewd.api.event.connection import Connection, ConnectionLost
from reviewd.api.event.dispatch import call_safely
from reviewd.api.event.envelope import EVENT_NAME, REPLY_TOPIC
from reviewd.api.event.inbox import Inbox
from reviewd.api.event.replies import ReplyCallbacks
from reviewd.api.exception import redact

__all__ = ["FrameHandler"]

# The hub's logger: operators configure and filter "reviewd.api.event.hub", whichever
# module of the hub a line comes from.
log = logging.getLogger("reviewd.api.event.hub")

_HOUSEKEEPING_INTERVAL = 1.0
_parse_ftrack_event = _packet.parse_ftrack_event


class FrameHandler:
    """Acts on frames from one connection after another; counts ``received`` events
    and ``malformed`` frames.

    *deliver* takes each received event: ``Inbox.put``, or ``Dispatcher.dispatch``
    when callbacks run on the reader thread.
    """

    def __init__(
        self,
        deliver: Callable[[Event], None],
        inbox: Inbox,
        acks: PendingAcks,
        replies: ReplyCallbacks,
    ) -> None:
        self._deliver = deliver
        self._inbox_put = inbox.put
        self._acks = acks
        self._replies = replies
        self._next_housekeeping = 0.0
        self.received = 0
        self.malformed = 0

    def read(self, connection: Connection, stop_reading: Callable[[], bool]) -> None:
        """Handle frames from *connection* until it ends (:class:`ConnectionLost`) or
        *stop_reading* says so."""
        recv = connection.recv
        on_frame = self.on_frame
        while not stop_reading():
            on_frame(connection, recv())

    def on_frame(self, connection: Connection, text: str) -> None:
        if text.startswith("5:::"):  # the hot path: an event that wants no ack
            self._on_event_payload(text[4:])
            return
        try:
            packet = _packet.decode(text)
        except _packet.PacketError as error:
            self._malformed(error)
            return
        kind = packet.type
        if kind == _packet.PacketType.EVENT:
            self._on_event_packet(connection, packet)
        elif kind == _packet.PacketType.HEARTBEAT:
            connection.send("2::")
        elif kind == _packet.PacketType.ACK:
            try:
                self._acks.acknowledged(packet)
            except _packet.PacketError as error:
                self._malformed(error)
        elif kind == _packet.PacketType.DISCONNECT:
            raise ConnectionLost("the server closed the socket.io session")
        elif kind == _packet.PacketType.ERROR:
            log.error("event server reported an error: %s", redact(packet.data[:500]))
        else:
            log.debug("ignoring socket.io packet of type %s", kind.name)
        now = time.monotonic()
        if now >= self._next_housekeeping:
            self._next_housekeeping = now + _HOUSEKEEPING_INTERVAL
            self._acks.expire(now)
            self._replies.expire(now)

    def _malformed(self, error: Exception) -> None:
        self.malformed += 1
        log.warning("skipped a malformed frame from the event server: %s", redact(str(error)))

    def _on_event_packet(self, connection: Connection, packet: _packet.Packet) -> None:
        try:
            self._on_event_payload(packet.data)
        finally:
            if packet.ack_requested:
                connection.send(_packet.encode(_packet.ack(packet.id)))

    def _on_event_payload(self, data: str) -> None:
        try:
            compact = _parse_ftrack_event(data)
            if compact is not None:
                event = Event.from_wire(compact[0], wire_text=compact[1])
            else:
                name, args = _packet.parse_event_data(data)
                if name != EVENT_NAME:
                    log.debug("ignoring socket.io event %r", name)
                    return
                if len(args) != 1:
                    raise ValueError(f"expected one event argument, got {len(args)}")
                event = Event.from_wire(args[0])
        except (ValueError, _packet.PacketError) as error:
            self._malformed(error)
            return
        self.received += 1
        if event["topic"] == REPLY_TOPIC:
            reply_to = event.get("in_reply_to_event")
            entry = self._replies.get(reply_to) if isinstance(reply_to, str) else None
            if entry is not None:
                if entry.inline:
                    call_safely(entry.callback, event)
                else:
                    self._inbox_put((entry.callback, event))
        self._deliver(event)
