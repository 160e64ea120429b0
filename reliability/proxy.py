"""A fault-injecting TCP proxy between reviewd and the server, on loopback.

Every connection through it is classified by its first request line: the event
socket (``/socket.io/1/websocket/…``) or the API (everything else: ``POST /api``,
the socket.io handshake).  Faults act on one class at a time, on live connections:

- ``cut(kind)``: reset every connection of that kind at once;
- ``stall(kind, seconds)``: forward nothing either way for a while (a frozen link);
- ``slow(kind, bytes_per_second)``: trickle the server's answers;
- ``half_open(kind)``: keep the sockets open but drop everything from the server (a
  peer that vanished without FIN or RST — only heartbeats can tell);
- ``deafen(kind)``: drop everything the client sends (the server never acknowledges);
- ``answer_api(response)``: answer API requests with a canned response (a 500/502 HTML
  page, truncated JSON) instead of the server;
- ``refuse(True)``: reset new connections as soon as they arrive.

With *tls* (an ``ssl.SSLContext``) the proxy terminates TLS: the TLS tests use it to
put a self-signed certificate in front of the plain embedded server.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field

EVENT, API = "event", "api"


@dataclass
class _Link:
    kind: str
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter


@dataclass
class _Faults:
    stalled_until: dict[str, float] = field(default_factory=dict)
    rate: dict[str, float] = field(default_factory=dict)
    half_open: set[str] = field(default_factory=set)
    deaf: set[str] = field(default_factory=set)
    canned: bytes | None = None
    refusing: bool = False


class FaultProxy:
    """Forward 127.0.0.1:<port> to *upstream*, injecting faults on request."""

    def __init__(self, upstream: tuple[str, int], tls: ssl.SSLContext | None = None) -> None:
        self.upstream = upstream
        self._tls = tls
        self._faults = _Faults()
        self._links: list[_Link] = []
        self._loop = asyncio.new_event_loop()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)
        self.connections = {EVENT: 0, API: 0}
        self.faults_injected = 0

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    # ------------------------------------------------------------------ faults
    def _call(self, function, *args) -> None:
        done = threading.Event()

        def run() -> None:
            try:
                function(*args)
            finally:
                done.set()

        self._loop.call_soon_threadsafe(run)
        done.wait(5)

    def cut(self, kind: str) -> int:
        """Reset every live connection of *kind*; return how many."""
        cut = []

        def run() -> None:
            for link in [link for link in self._links if link.kind == kind]:
                cut.append(link)
                link.client.transport.abort()
                link.upstream.transport.abort()

        self._call(run)
        self.faults_injected += 1
        return len(cut)

    def stall(self, kind: str, seconds: float) -> None:
        self._faults.stalled_until[kind] = time.monotonic() + seconds
        self.faults_injected += 1

    def slow(self, kind: str, bytes_per_second: float | None) -> None:
        if bytes_per_second:
            self._faults.rate[kind] = bytes_per_second
            self.faults_injected += 1
        else:
            self._faults.rate.pop(kind, None)

    def half_open(self, kind: str, on: bool = True) -> None:
        if on:
            self._faults.half_open.add(kind)
            self.faults_injected += 1
        else:
            self._faults.half_open.discard(kind)

    def deafen(self, kind: str, on: bool = True) -> None:
        """Drop everything the client sends on *kind* (the server never acknowledges)."""
        if on:
            self._faults.deaf.add(kind)
            self.faults_injected += 1
        else:
            self._faults.deaf.discard(kind)

    def answer_api(self, response: bytes | None) -> None:
        """Answer every new API request with *response* (an error page, truncated JSON)
        instead of forwarding it; None forwards again.  Live API connections are cut so
        that clients' pooled connections meet the fault too."""
        self._faults.canned = response
        if response is not None:
            self.cut(API)

    def refuse(self, on: bool) -> None:
        self._faults.refusing = on
        if on:
            self.faults_injected += 1

    def live(self, kind: str) -> int:
        return sum(1 for link in list(self._links) if link.kind == kind)

    # ------------------------------------------------------------------ loop
    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._accept, sock=self._sock, ssl=self._tls)
        )
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            for link in self._links:
                link.client.transport.abort()
                link.upstream.transport.abort()
            tasks = asyncio.all_tasks(self._loop)
            for task in tasks:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self._loop.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._faults.refusing:
            writer.transport.abort()
            return
        try:
            first = await asyncio.wait_for(reader.readuntil(b"\r\n"), 30)
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except (
            OSError,
            asyncio.TimeoutError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
        ):
            writer.transport.abort()
            return
        kind = EVENT if b"/socket.io/1/websocket" in first else API
        if kind == API and self._faults.canned is not None:
            await self._answer_canned(reader, writer, self._faults.canned)
            return
        self.connections[kind] += 1
        link = _Link(kind, writer, up_writer)
        self._links.append(link)
        up_writer.write(first)
        try:
            await asyncio.gather(
                self._pump(reader, up_writer, kind, False),
                self._pump(up_reader, writer, kind, True),
            )
        finally:
            if link in self._links:
                self._links.remove(link)
            writer.transport.abort()
            up_writer.transport.abort()

    async def _answer_canned(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, response: bytes
    ) -> None:
        try:
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            writer.write(response)
            await asyncio.wait_for(writer.drain(), 10)
        except (
            OSError,
            asyncio.TimeoutError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
        ):
            pass
        finally:
            writer.transport.abort()

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        kind: str,
        from_server: bool,
    ) -> None:
        faults = self._faults
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    writer.transport.abort()
                    return
                while time.monotonic() < faults.stalled_until.get(kind, 0.0):
                    await asyncio.sleep(0.05)
                if from_server and kind in faults.half_open:
                    continue  # swallowed: the client hears nothing, no FIN, no RST
                if not from_server and kind in faults.deaf:
                    continue  # swallowed: the server never hears (nor acknowledges)
                rate = faults.rate.get(kind) if from_server else None
                if rate:
                    for start in range(0, len(data), 256):
                        writer.write(data[start : start + 256])
                        await writer.drain()
                        await asyncio.sleep(256 / rate)
                    continue
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.CancelledError):
            writer.transport.abort()
