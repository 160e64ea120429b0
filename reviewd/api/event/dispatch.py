"""Local dispatch: run the callbacks an event reaches, the way ftrack's hub does.

Callbacks run in priority order until one calls ``event.stop()``; a callback that
raises is logged (with the subscriber and event id) and counted, never allowed to stop
the others or the thread dispatching; a non-None result is published as a reply to the
event, except for synchronous (local) publishing, which returns the results instead.
When the daemon installs a dispatch hook, it receives each event with the subscribers
it matched *instead of* the callbacks being called here, and later calls
:meth:`Dispatcher.deliver` per subscriber on a thread of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from reviewd.api.event.base import Event
from reviewd.api.event.subscriber import Subscriber
from reviewd.api.event.subscriptions import Subscriptions

__all__ = ["Dispatcher", "call_safely"]

# The hub's logger: operators configure and filter "reviewd.api.event.hub", whichever
# module of the hub a line comes from.
log = logging.getLogger("reviewd.api.event.hub")


def call_safely(callback: Callable[..., Any], *args: Any) -> None:
    """Run a user or daemon callback; log what it raises instead of raising it."""
    try:
        callback(*args)
    except Exception:
        log.exception("callback %r failed", callback)


class Dispatcher:
    """Hands events to the subscribers they match; ``handler_errors`` counts failures.

    *publish_reply* is ``EventHub.publish_reply``: replies go out the way any
    published event does.
    """

    def __init__(
        self,
        subscriptions: Subscriptions,
        publish_reply: Callable[..., None],
    ) -> None:
        self._subscriptions = subscriptions
        self._publish_reply = publish_reply
        self.hook: Callable[[Event, list[Subscriber]], Any] | None = None
        self.handler_errors = 0

    def dispatch(self, event: Event) -> None:
        """Deliver a received event: to the dispatch hook if set, else to the callbacks."""
        hook = self.hook
        if hook is None:
            self.handle(event)
            return
        matched = self._subscriptions.matching(event)
        try:
            hook(event, matched)
        except Exception:
            log.exception(
                "dispatch hook failed for event %s (%s)", event.get("id"), event.get("topic")
            )

    def handle(self, event: Event, synchronous: bool = False) -> list[Any]:
        """Call matching callbacks in priority order; return their results."""
        results = []
        for entry in self._subscriptions.matching(event):
            try:
                result = entry.callback(event)
            except Exception:
                self.handler_errors += 1
                log.exception(
                    "subscriber %s failed on event %s (%s)",
                    entry.id,
                    event.get("id"),
                    event.get("topic"),
                )
            else:
                results.append(result)
                if result is not None and not synchronous:
                    try:
                        self._publish_reply(event, result, source=entry.metadata)
                    except Exception:
                        log.exception(
                            "could not publish the reply of subscriber %s to event %s",
                            entry.id,
                            event.get("id"),
                        )
            if event._stopped:  # is_stopped() without a method call on the hot path
                break
        return results

    def deliver(self, event: Event, subscriber: Subscriber) -> Any:
        """Run *subscriber*'s callback for *event* and publish a non-None result as a
        reply.  Exceptions propagate to the caller (the daemon counts and retries)."""
        result = subscriber.callback(event)
        if result is not None:
            # The handler succeeded; failing to send its reply must not make the daemon
            # run it again, so the error is logged rather than raised.
            try:
                self._publish_reply(event, result, source=subscriber.metadata)
            except Exception:
                log.exception(
                    "could not publish the reply of subscriber %s to event %s",
                    subscriber.id,
                    event.get("id"),
                )
        return result
