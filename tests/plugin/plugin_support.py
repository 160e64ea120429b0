"""Helpers for the plugin tests: writing plugin files, a local session, waiting."""

from __future__ import annotations

import os

from tests.support import wait_until, write_source  # noqa: F401 - wait_until re-exported


def write_plugin(directory, name: str, source: str) -> str:
    """Write *source* (dedented) as ``directory/name``; return the path."""
    path = os.path.join(str(directory), name)
    write_source(path, source, lstrip=True)
    return path


class LocalSession:
    """The smallest real session a plugin can register against, without a server.

    It holds a real, unconnected ``reviewd.api.event.hub.EventHub`` — plugins subscribe
    on it exactly as in the daemon; tests publish synchronously to reach them.
    """

    def __init__(self) -> None:
        from reviewd.api.event.hub import EventHub

        self.event_hub = EventHub("http://127.0.0.1:9", "plugin-tests", "not-a-real-key")

    def deliver(self, topic: str, data: dict | None = None) -> list:
        """Publish an event locally and synchronously; return the handlers' results."""
        from reviewd.api.event.base import Event

        return self.event_hub.publish(Event(topic, data=data or {}), synchronous=True)
