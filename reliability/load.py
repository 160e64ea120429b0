"""A steady stream of events into the server, published by a real event hub client."""

from __future__ import annotations

import threading
import time

from reliability.processes import API_KEY, API_USER
from reviewd.api.event.base import Event
from reviewd.api.event.hub import EventHub


class Publisher:
    """Publish ``reliability.<topic>`` events at *rate* per second from a thread.

    The hub queues what it cannot send while the server is away and sends it after
    reconnecting, as a producing client would; ``sent`` counts publish calls.
    """

    def __init__(
        self, server_url: str, rate: float = 50.0, topic: str = "reliability.tick"
    ) -> None:
        self.hub = EventHub(server_url, API_USER, API_KEY, reconnect_cap=1.0, reconnect_base=0.2)
        self.rate = rate
        self.topic = topic
        self.sent = 0
        self.ids: list[str] = []  # what settle() waits for; appended by one thread only
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="publisher", daemon=True)

    def start(self) -> Publisher:
        self.hub.connect(wait=True, timeout=30)
        self._thread.start()
        return self

    def publish_one(self, data: dict | None = None, topic: str | None = None) -> str:
        event = Event(topic=topic or self.topic, data=data or {"n": self.sent})
        self.hub.publish(event)
        self.ids.append(event["id"])
        self.sent += 1
        return event["id"]

    def _run(self) -> None:
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.publish_one()
            next_at += interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def close(self) -> None:
        self.stop()
        self.hub.disconnect()
