"""Reply callbacks: who wants the replies to which published event, and until when.

ftrack's own hub keeps a reply callback for ever, so a daemon that publishes with
``on_reply`` grows without end.  Here every callback expires ``reply_ttl`` seconds
after its event was published, and the table never holds more than a fixed number of
them (the oldest go first), so memory stays flat however many events are published.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from reviewd.api.event.base import Event

__all__ = ["ReplyCallbacks", "ReplyCallback"]


class ReplyCallback:
    """One registered callback; *inline* ones run on the socket reader thread."""

    __slots__ = ("callback", "expires", "inline")

    def __init__(self, callback: Callable[[Event], Any], expires: float, inline: bool) -> None:
        self.callback = callback
        self.expires = expires
        self.inline = inline


class ReplyCallbacks:
    """Reply callbacks by published event id, oldest first, bounded and expiring.

    ``expired`` counts callbacks dropped before their event was forgotten by the
    publisher: timed out, or pushed out by the size bound.
    """

    def __init__(self, ttl: float, limit: int) -> None:
        self._ttl = ttl
        self._limit = max(1, int(limit))
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, ReplyCallback] = OrderedDict()
        self.expired = 0

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, event_id: str, callback: Callable[[Event], Any], inline: bool) -> None:
        """Call *callback* with each reply to *event_id* until the TTL passes."""
        with self._lock:
            self._entries[event_id] = ReplyCallback(callback, time.monotonic() + self._ttl, inline)
            while len(self._entries) > self._limit:
                self._entries.popitem(last=False)
                self.expired += 1

    def get(self, event_id: str) -> ReplyCallback | None:
        """The callback waiting for replies to *event_id* (lock-free: the reader's path)."""
        return self._entries.get(event_id)

    def discard(self, event_id: str) -> None:
        """Stop waiting for replies to *event_id* (no error if nobody was)."""
        with self._lock:
            self._entries.pop(event_id, None)

    def expire(self, now: float) -> None:
        """Forget every callback whose time has passed."""
        with self._lock:
            entries = self._entries
            while entries:
                event_id, entry = next(iter(entries.items()))
                if entry.expires > now:
                    break
                del entries[event_id]
                self.expired += 1
