"""Received events waiting for the dispatch thread, and that thread.

The socket reader only appends to this queue, so a slow handler delays other handlers,
never the socket.  Who empties it depends on the hub's dispatch mode: the dispatch
thread (:meth:`Inbox.run`), or, as in ftrack_api, whoever calls ``EventHub.wait()``
(:meth:`Inbox.take`, one item at a time in the caller's thread).  The queue is bounded: when it is full the reader waits (and TCP
pushes back on the server) instead of the hub's memory growing.  With
``inline_dispatch`` there is no queue and no thread: items are dispatched at once, on
the thread that receives them.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from reviewd.api.event.base import Event
from reviewd.api.event.dispatch import call_safely

__all__ = ["Inbox", "EMPTY", "STOP"]

# The hub's logger: operators configure and filter "reviewd.api.event.hub", whichever
# module of the hub a line comes from.
log = logging.getLogger("reviewd.api.event.hub")


class _Stop:
    """Marker that ends the dispatch thread."""


#: What :meth:`Inbox.take` returns when nothing arrived in time.
EMPTY = object()
#: What :meth:`Inbox.take` returns for the end marker queued by :meth:`Inbox.close`.
STOP = _Stop


class Inbox:
    """Items for the dispatch thread: events, or ``(reply callback, reply event)`` pairs.

    *dispatch* handles one event (``Dispatcher.dispatch``); *stop* is the hub's stop
    flag, which releases a reader waiting for room when the hub shuts down.
    """

    def __init__(
        self,
        dispatch: Callable[[Event], None],
        capacity: int,
        stop: threading.Event,
        inline: bool = False,
    ) -> None:
        self._dispatch = dispatch
        self._capacity = max(1, int(capacity))
        self._stop = stop
        self._inline = inline
        self._cond = threading.Condition(threading.Lock())
        self._items: deque[Any] = deque()

    def __len__(self) -> int:
        return len(self._items)

    def set_capacity(self, capacity: int) -> None:
        """Change the bound (events waiting beyond it make the reader wait)."""
        with self._cond:
            self._capacity = max(1, int(capacity))
            self._cond.notify_all()

    def clear(self, stale: Callable[[Any], bool] | None = None) -> None:
        """Forget the end markers a previous run left behind, and the items *stale* picks.

        A dispatch thread handled everything queued before its marker; events nobody
        waited for (the ``wait()`` mode) stay queued for the next ``wait()``, as in
        ftrack_api.
        """
        with self._cond:
            kept = [
                item
                for item in self._items
                if item is not _Stop and not (stale is not None and stale(item))
            ]
            self._items.clear()
            self._items.extend(kept)

    def put(self, item: Any) -> None:
        """Queue *item* for dispatch, waiting while the queue is full."""
        if self._inline:
            self.dispatch_item(item)
            return
        cond = self._cond
        with cond:
            # Back-pressure instead of unbounded memory: the reader waits (and TCP
            # pushes back on the server) while the dispatch thread catches up.
            while len(self._items) >= self._capacity and not self._stop.is_set():
                cond.wait(0.5)
            self._items.append(item)
            if len(self._items) == 1:
                cond.notify_all()

    def take(self, timeout: float) -> Any:
        """The oldest item, waiting up to *timeout* seconds; :data:`EMPTY` if none came.

        The end marker :meth:`close` queues is returned as :data:`STOP`.
        """
        cond = self._cond
        with cond:
            if not self._items:
                cond.wait(max(0.0, timeout))
                if not self._items:
                    return EMPTY
            item = self._items.popleft()
            cond.notify_all()  # a reader waiting for room
        return STOP if item is _Stop else item

    def close(self) -> None:
        """End the dispatch thread once everything queued before this is dispatched."""
        with self._cond:
            self._items.append(_Stop)
            self._cond.notify_all()

    def run(self) -> None:
        """The dispatch thread: take everything queued, dispatch it, repeat."""
        cond = self._cond
        while True:
            with cond:
                while not self._items:
                    cond.wait()
                batch = list(self._items)
                self._items.clear()
                cond.notify_all()
            for item in batch:
                if item is _Stop:
                    return
                self.dispatch_item(item)

    def dispatch_item(self, item: Any) -> None:
        if item.__class__ is tuple:  # (reply callback, reply event)
            call_safely(item[0], item[1])
            return
        try:
            self._dispatch(item)
        except Exception:  # the dispatch thread must survive anything
            log.exception("event dispatch failed for %r", item)
