"""Helpers for the plugin tests: writing plugin files, a local session, waiting."""

from __future__ import annotations

import os
import textwrap
import time
from collections.abc import Callable


def write_plugin(directory, name: str, source: str) -> str:
    """Write *source* (dedented) as ``directory/name``; return the path."""
    path = os.path.join(str(directory), name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(textwrap.dedent(source).lstrip())
    return path


def wait_until(condition: Callable[[], object], timeout: float = 10.0, interval: float = 0.02):
    """Poll *condition* until it is truthy; return its value or fail after *timeout*."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {condition}")
        time.sleep(interval)


class LocalSession:
    """The smallest real session a plugin can register against, without a server.

    It holds a real, unconnected ``reviewd.event.hub.EventHub`` — plugins subscribe
    on it exactly as in the daemon; tests publish synchronously to reach them.
    """

    def __init__(self) -> None:
        from reviewd.event.hub import EventHub

        self.event_hub = EventHub("http://127.0.0.1:9", "plugin-tests", "not-a-real-key")

    def deliver(self, topic: str, data: dict | None = None) -> list:
        """Publish an event locally and synchronously; return the handlers' results."""
        from reviewd.event.base import Event

        return self.event_hub.publish(Event(topic, data=data or {}), synchronous=True)

