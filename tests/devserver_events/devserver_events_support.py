"""Test helpers for the event server: a real aiohttp app on a real port, and a raw
socket.io 0.9 client built on websocket-client that records every frame it receives.

``EventApp`` mounts only the :class:`EventServer` (no store), so the event server's own
behaviour can be tested without the HTTP part; acceptance tests that need data use the
real :class:`reviewd.devserver.DevServer`.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Callable

import requests
import websocket
from aiohttp import web

from reviewd.devserver.events import EventServer
from tests.support import wait_until  # noqa: F401 - re-exported to the tests

API_USER = "events.tester"
API_KEY = "k3y-for-event-tests-0123456789"


class EventApp:
    """An aiohttp application serving only the event server, in its own thread+loop."""

    def __init__(self, **options) -> None:
        self.api_user = API_USER
        self.api_key = API_KEY
        self.events = EventServer(self._authenticate, **options)
        self.faults = self.events.faults
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.port = 0

    def _authenticate(self, user: str, key: str) -> bool:
        return user == self.api_user and key == self.api_key

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> EventApp:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        app = web.Application()
        self.events.add_routes(app)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def run(self, coroutine, timeout: float = 30.0):
        """Run *coroutine* on the server loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def publish(self, event: dict) -> None:
        self.run(self.events.publish(event))

    def emit(self, topic, data=None, target="", source=None, wait_reply=None):
        return self.run(
            self.events.emit(topic, data, target, source, wait_reply),
            timeout=(wait_reply or 0) + 30,
        )

    def __enter__(self) -> EventApp:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def handshake(server, user: str | None = None, key: str | None = None) -> requests.Response:
    return requests.get(
        f"{server.url}/socket.io/1/",
        headers={"ftrack-user": user or server.api_user, "ftrack-api-key": key or server.api_key},
        timeout=10,
    )


def wire_event(topic: str, data: dict | None = None, target: str = "", **extra) -> dict:
    event = {
        "id": uuid.uuid4().hex,
        "topic": topic,
        "data": data or {},
        "source": {"id": "raw-" + uuid.uuid4().hex[:8], "user": {"username": API_USER}},
        "target": target,
        "sent": None,
        "inReplyToEvent": None,
    }
    event.update(extra)
    return event


def _wait_first(items: Callable[[], list], predicate: Callable, timeout: float, message: str):
    """Wait until one of *items()* (re-read on every poll) matches *predicate*; return it."""
    return wait_until(
        lambda: next((item for item in items() if predicate(item)), None), timeout, message=message
    )


class RawClient:
    """A socket.io 0.9 client speaking raw frames over websocket-client.

    A reader thread records every frame in ``frames`` (and a queue); heartbeats are
    answered automatically unless ``answer_heartbeats`` is false.
    """

    def __init__(self, server, answer_heartbeats: bool = True) -> None:
        self.server = server
        self.answer_heartbeats = answer_heartbeats
        response = handshake(server)
        assert response.status_code == 200, response.text
        self.handshake_body = response.text
        self.sid = response.text.split(":")[0]
        ws_url = server.url.replace("http://", "ws://") + f"/socket.io/1/websocket/{self.sid}"
        self.ws = websocket.create_connection(ws_url, timeout=10)
        self.frames: list[str] = []
        self.closed = threading.Event()
        self.close_reason: str | None = None
        self._lock = threading.Lock()
        self._next_id = 1000  # hand-written frames in tests use small ids
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            while True:
                opcode, data = self.ws.recv_data(control_frame=False)
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    self.close_reason = "close frame"
                    break
                text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
                with self._lock:
                    self.frames.append(text)
                if text == "2::" and self.answer_heartbeats:
                    try:
                        self.ws.send("2::")
                    except Exception:
                        pass
        except Exception as error:
            self.close_reason = f"{type(error).__name__}: {error}"
        finally:
            self.closed.set()

    # ---------------------------------------------------------------- frames
    def send(self, text: str) -> None:
        self.ws.send(text)

    def snapshot(self) -> list[str]:
        with self._lock:
            return list(self.frames)

    def wait_frame(
        self, predicate: Callable[[str], bool], timeout: float = 10.0, message: str = "a frame"
    ) -> str:
        return _wait_first(self.snapshot, predicate, timeout, message)

    def events(self) -> list[dict]:
        """Every ``ftrack.event`` received so far, as wire-form dicts."""
        found = []
        for frame in self.snapshot():
            if frame.startswith("5:"):
                try:
                    payload = json.loads(frame.split(":", 3)[3])
                except (ValueError, IndexError):
                    continue
                found.extend(payload.get("args", []))
        return found

    def wait_event(
        self, predicate: Callable[[dict], bool], timeout: float = 10.0, message: str = "an event"
    ) -> dict:
        return _wait_first(self.events, predicate, timeout, message)

    def acks(self) -> dict[str, list]:
        found = {}
        for frame in self.snapshot():
            if frame.startswith("6:::"):
                ack_id, _, args = frame[4:].partition("+")
                found[ack_id] = json.loads(args) if args else []
        return found

    def emit_packet(self, event: dict) -> str:
        """Send ``5:N+::{...}`` and return N."""
        with self._lock:
            self._next_id += 1
            ack_id = str(self._next_id)
        payload = json.dumps({"name": "ftrack.event", "args": [event]})
        self.send(f"5:{ack_id}+::{payload}")
        return ack_id

    def wait_ack(self, ack_id: str, timeout: float = 10.0) -> dict:
        args = wait_until(lambda: self.acks().get(ack_id), timeout, message=f"ack {ack_id}")
        return args[0]

    def publish(self, event: dict, timeout: float = 10.0) -> dict:
        return self.wait_ack(self.emit_packet(event), timeout)

    def subscribe(
        self, subscription: str, subscriber_id: str | None = None, timeout: float = 10.0, **metadata
    ) -> dict:
        subscriber = {"id": subscriber_id or uuid.uuid4().hex, **metadata}
        event = wire_event(
            "ftrack.meta.subscribe", {"subscriber": subscriber, "subscription": subscription}
        )
        return self.publish(event, timeout)

    def unsubscribe(self, subscriber_id: str) -> dict:
        event = wire_event("ftrack.meta.unsubscribe", {"subscriber": {"id": subscriber_id}})
        return self.publish(event)

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:
            pass
        self._reader.join(5)

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
