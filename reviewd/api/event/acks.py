"""Acknowledgements the event server owes the hub, and what to do when they come.

Every frame the hub sends asks for a socket.io acknowledgement, which is how the hub
learns that the server refused a subscription or a publish.  The table of frames still
waiting is bounded twice over — by age (``ACK_TTL``) and by size
(``MAX_PENDING_ACKS``) — so a server that stops acknowledging cannot grow the hub's
memory; what falls out is counted as ``lost``.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any

from reviewd.api.event import packet as _packet
from reviewd.api.event.dispatch import call_safely
from reviewd.api.exception import redact

__all__ = ["PendingAcks", "ACK_TTL", "MAX_PENDING_ACKS"]

# The hub's logger: operators configure and filter "reviewd.api.event.hub", whichever
# module of the hub a line comes from.
log = logging.getLogger("reviewd.api.event.hub")

#: How long the server has to acknowledge a frame before the hub forgets it asked.
ACK_TTL = 60.0
#: At most this many unacknowledged frames are remembered (a server that stops acking
#: must not grow the hub's memory).
MAX_PENDING_ACKS = 100000


class PendingAcks:
    """Frames sent and not yet acknowledged, oldest first.

    Each entry holds ``info = (what, which, on_ack)``: what was sent ("subscribe",
    "publish"), a description for the log, and an optional callback given the ack's
    arguments.  ``lost`` counts frames never acknowledged; ``refusals`` the ones the
    server answered with ``success: false``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: OrderedDict[int, tuple[float, Any]] = OrderedDict()
        self.lost = 0
        self.refusals = 0
        #: Subscriber id -> the server's reason, for subscriptions it refused (past its
        #: limit, a bad expression): the owner must be told it is not hearing them.
        self.refused_subscribers: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def expect(self, ack_id: int, deadline: float, info: Any) -> None:
        """Remember that *ack_id* is owed until *deadline* (dropping the oldest if full)."""
        with self._lock:
            self._pending[ack_id] = (deadline, info)
            if len(self._pending) > MAX_PENDING_ACKS:
                self._pending.popitem(last=False)
                self.lost += 1

    def forget(self, ack_id: int | None) -> None:
        """The frame was never sent: no acknowledgement will come."""
        if ack_id is None:
            return
        with self._lock:
            self._pending.pop(ack_id, None)

    def clear(self) -> None:
        """The connection ended: every acknowledgement still owed is lost."""
        with self._lock:
            lost = len(self._pending)
            self._pending.clear()
        self.lost += lost

    def acknowledged(self, packet: _packet.Packet) -> None:
        """Settle the acknowledgement in *packet*: log a refusal, run its callback.

        Raises :class:`~reviewd.api.event.packet.PacketError` for a malformed packet.
        """
        ack_id, args = _packet.parse_ack(packet)
        with self._lock:
            entry = self._pending.pop(int(ack_id), None)
        if entry is None:
            return
        info = entry[1]
        response = args[0] if args and isinstance(args[0], dict) else {}
        subscriber = (
            info[1].split(" ", 1)[1]
            if info[0] == "subscribe" and str(info[1]).startswith("subscriber ")
            else None
        )
        if response.get("success") is False:
            self.refusals += 1
            log.error(
                "event server refused %s of %s: %s",
                info[0],
                info[1],
                redact(str(response.get("message"))),
            )
            if subscriber is not None and len(self.refused_subscribers) < MAX_PENDING_ACKS:
                self.refused_subscribers[subscriber] = redact(str(response.get("message")))
        elif subscriber is not None:
            self.refused_subscribers.pop(subscriber, None)
        if info[2] is not None:
            call_safely(info[2], args)

    def expire(self, now: float) -> None:
        """Forget acknowledgements that are past their deadline."""
        with self._lock:
            pending = self._pending
            while pending:
                ack_id, (deadline, _) = next(iter(pending.items()))
                if deadline > now:
                    break
                del pending[ack_id]
                self.lost += 1
