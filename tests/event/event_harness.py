"""Test helpers for the hub tests: servers to connect to and polling with deadlines.

``EventOnlyServer`` mounts the real :class:`reviewd.devserver.events.EventServer` (the
socket.io part of the embedded server, fault switches included) on its own aiohttp
application, without the HTTP API and store.  It starts in milliseconds, which keeps
the many fault tests fast; tests that need the HTTP API (the official client builds a
Session) use the full ``DevServer`` instead.  Its public surface mirrors DevServer's:
``url``, ``api_user``, ``api_key``, ``events``, ``faults``, ``emit``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from aiohttp import web

from tests.support import free_port, wait_until

API_USER = "hub.tester"
API_KEY = "hub-tester-secret-key-0123456789"


def wait_for(
    condition: Callable[[], object],
    timeout: float = 10.0,
    interval: float = 0.01,
    message: str = "",
) -> object:
    """:func:`tests.support.wait_until`, polling every 10 ms: the hub tests wait on an
    in-process server whose state changes within milliseconds."""
    return wait_until(condition, timeout, interval, message)


class EventOnlyServer:
    """The real event server on 127.0.0.1 in a background thread."""

    def __init__(
        self,
        heartbeat_interval: float = 10.0,
        heartbeat_timeout: float = 25.0,
        port: int = 0,
        ssl_context=None,
        middlewares=(),
    ) -> None:
        """*middlewares* (aiohttp middlewares) may answer in the server's place, e.g. to
        lie to the hub; requests they pass on reach the real event server."""
        from reviewd.devserver.events import EventServer

        self.api_user = API_USER
        self.api_key = API_KEY
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self._ssl_context = ssl_context
        self._middlewares = list(middlewares)
        scheme = "https" if ssl_context is not None else "http"
        self.url = f"{scheme}://{self.host}:{self.port}"
        self.events = EventServer(
            lambda user, key: user == API_USER and key == API_KEY,
            heartbeat_interval=heartbeat_interval,
            heartbeat_timeout=heartbeat_timeout,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    @property
    def faults(self):
        return self.events.faults

    def start(self) -> EventOnlyServer:
        self._thread = threading.Thread(target=self._serve, name="event-only-server", daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("event server did not start")
        if self._error is not None:
            raise self._error
        return self

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            app = web.Application(middlewares=self._middlewares)
            self.events.add_routes(app)
            self._runner = web.AppRunner(app, handle_signals=False)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(
                self._runner,
                self.host,
                self.port,
                reuse_address=True,
                ssl_context=self._ssl_context,
            )
            loop.run_until_complete(site.start())
        except BaseException as error:  # reported to start()
            self._error = error
            self._started.set()
            return
        self._started.set()
        loop.run_forever()
        loop.run_until_complete(self._runner.cleanup())
        loop.close()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> EventOnlyServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def emit(self, topic, data=None, target="", source=None, wait_reply=None):
        future = asyncio.run_coroutine_threadsafe(
            self.events.emit(topic, data, target=target, source=source, wait_reply=wait_reply),
            self._loop,
        )
        return future.result((wait_reply or 0) + 10)

    def publish(self, event: dict) -> None:
        asyncio.run_coroutine_threadsafe(self.events.publish(event), self._loop).result(10)

    def subscriber_ids(self) -> set[str]:
        """Ids of every subscriber registered on any open connection."""
        return {s["id"] for conn in self.events.connections() for s in conn["subscribers"]}


def burst(server, events: list[dict]) -> None:
    """Publish *events* from the server's own loop, as fast as it can route them."""

    async def run() -> None:
        for event in events:
            await server.events.publish(event)

    loop = server.events.loop
    asyncio.run_coroutine_threadsafe(run(), loop).result(60)
