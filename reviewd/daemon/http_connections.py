"""The HTTP listener's connection handling: bounded, deadlined, one thread for all idle sockets.

Why not ``ThreadingHTTPServer``: it gives every accepted connection a thread and waits
on its socket with no timeout, so any local user who opens a few hundred idle
connections (slowloris) exhausts the daemon's descriptors — ``/healthz`` stops
answering, plugin handlers fail with ``EMFILE`` and the hub cannot reconnect.

Here one asyncio loop, on the listener's own thread, owns every connection while it is
only *waiting* for a request: an idle socket costs a descriptor, not a thread.  Three
rules keep that bounded:

- **a deadline per request**: the request line and headers must arrive within
  ``header_timeout`` seconds of the accept (a client dribbling a byte a second is cut
  off), and a response must be taken within ``write_timeout`` (a client that never
  reads cannot hold a worker);
- **a bound on connections**: at most ``max_connections`` are open; a new one pushes
  out the *oldest connection still waiting for its request* (it had its chance), so a
  flood of idle sockets can never lock out a health probe that sends its request at
  once.  Only when every open connection is being answered is the newcomer refused;
- **one request per connection** (``Connection: close``): no keep-alive socket can
  linger between requests.

Answering a request is the route's business (:mod:`reviewd.daemon.http`): routes marked
``inline`` (``/healthz``) run on the loop itself, so a probe is answered even while
every worker thread is busy with slow ``/status`` or ``/metrics`` requests; the others
run on a small worker pool.
"""

from __future__ import annotations

import asyncio
import fcntl
import socket
import termios
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import structlog

log = structlog.get_logger("reviewd.http")

#: Seconds a client has, from its connection, to send the request line and headers.
HEADER_TIMEOUT = 5.0
#: Seconds a client has to take the response.
WRITE_TIMEOUT = 5.0
#: Open connections at most; the oldest still-idle one is closed to admit a new one.
MAX_CONNECTIONS = 128
#: A connection younger than this is evicted only when no older idle one is left: a
#: probe accepted in the same burst as a flood gets the moment it needs to be read.
EVICTION_GRACE = 0.5
#: Largest request head (request line + headers) accepted.
MAX_HEAD_BYTES = 16384
#: Connections asyncio accepts per wake-up, and the kernel's accept queue.
ACCEPT_BATCH = 32
ACCEPT_QUEUE = 1024
#: Worker threads for routes that may block (``/status`` reads the journal).
WORKERS = 4


@dataclass
class Request:
    """A parsed request head; bodies are not read (the listener serves GET and HEAD)."""

    method: str
    target: str
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0].rstrip("/") or "/"


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"


_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def parse_head(head: bytes) -> Request:
    """Parse ``METHOD TARGET HTTP/x.y`` and header lines; ValueError when malformed."""
    text = head.decode("latin-1")
    lines = text.split("\r\n")
    parts = lines[0].split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise ValueError("malformed request line")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError("malformed header line")
        headers[name.strip().lower()] = value.strip()
    return Request(parts[0].upper(), parts[1], headers)


def render(response: Response, head_only: bool = False) -> bytes:
    reason = _REASONS.get(response.status, "Unknown")
    head = (
        f"HTTP/1.1 {response.status} {reason}\r\n"
        f"Server: reviewd\r\n"
        f"Content-Type: {response.content_type}\r\n"
        f"Content-Length: {len(response.body)}\r\n"
        "Cache-Control: no-store\r\n"
        "Connection: close\r\n\r\n"
    ).encode("latin-1")
    return head if head_only else head + response.body


@dataclass
class _Slot:
    writer: asyncio.StreamWriter
    opened: float
    waiting: bool = True  # still reading its request (evictable)


Answer = Callable[[Request], Response]


def _unread_bytes(writer: asyncio.StreamWriter) -> int:
    """Bytes the kernel holds for this connection that the loop has not read yet.

    A connection with a request waiting there is about to be served, not idle: a health
    probe accepted in the same burst as a flood must not be evicted for being slow to be
    *read*.  (Idle and dribbling clients have nothing unread: the loop reads promptly.)
    """
    sock = writer.get_extra_info("socket")
    if sock is None:
        return 0
    try:
        buffer = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
    except OSError:
        return 0
    return int.from_bytes(buffer, "little")


class ConnectionServer:
    """Serve a bound listening socket from a thread of its own with an asyncio loop.

    *answer(request)* produces the response; *is_inline(request)* says whether it may
    run on the loop (cheap, never blocks) rather than on the worker pool.
    """

    def __init__(
        self,
        sock: socket.socket,
        answer: Answer,
        is_inline: Callable[[Request], bool],
        *,
        max_connections: int = MAX_CONNECTIONS,
        header_timeout: float = HEADER_TIMEOUT,
        write_timeout: float = WRITE_TIMEOUT,
        workers: int = WORKERS,
    ) -> None:
        self._sock = sock
        self._answer = answer
        self._is_inline = is_inline
        self.max_connections = max_connections
        self._header_timeout = header_timeout
        self._write_timeout = write_timeout
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="reviewd-http")
        self._loop = asyncio.new_event_loop()
        self._slots: OrderedDict[int, _Slot] = OrderedDict()
        self._next_id = 0
        self._started = threading.Event()
        self._server: asyncio.AbstractServer | None = None
        #: Counters for /status and tests: connections closed for each reason.
        self.evicted = 0
        self.refused = 0
        self.timed_out = 0
        self.thread = threading.Thread(target=self._run, name="reviewd-http", daemon=True)

    @property
    def open_connections(self) -> int:
        return len(self._slots)

    def start(self) -> None:
        self.thread.start()
        self._started.wait(10)

    def stop(self) -> None:
        if self.thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self.thread.join(5)
        elif self.thread.ident is None:  # never started: release the bound socket
            self._sock.close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ loop thread
    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._server = self._loop.run_until_complete(
                asyncio.start_server(
                    self._serve, sock=self._sock, limit=MAX_HEAD_BYTES, backlog=ACCEPT_BATCH
                )
            )
            # asyncio accepts up to its backlog argument per wake-up (each accepted socket
            # is a descriptor until served), so that stays small; the kernel's queue is
            # deepened afterwards, so that a probe's SYN is not dropped during a flood.
            self._sock.listen(ACCEPT_QUEUE)
            self._started.set()
            self._loop.run_forever()
        finally:
            self._started.set()
            self._shutdown()

    def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for slot in list(self._slots.values()):
            slot.writer.transport.abort()
        self._slots.clear()
        tasks = asyncio.all_tasks(self._loop)
        for task in tasks:
            task.cancel()
        if tasks:
            self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        self._loop.close()
        try:
            self._sock.close()
        except OSError:
            pass

    def _admit(self, writer: asyncio.StreamWriter) -> int | None:
        """Make room for a new connection (evicting the oldest idle one) or refuse it."""
        now = time.monotonic()
        if len(self._slots) >= self.max_connections:
            idle = [
                key
                for key, slot in self._slots.items()
                if slot.waiting and not _unread_bytes(slot.writer)
            ]
            victim = next(
                (key for key in idle if now - self._slots[key].opened >= EVICTION_GRACE),
                idle[0] if idle else None,
            )
            if victim is None:
                self.refused += 1
                writer.transport.abort()
                return None
            self._slots.pop(victim).writer.transport.abort()
            self.evicted += 1
        self._next_id += 1
        self._slots[self._next_id] = _Slot(writer, now)
        return self._next_id

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        key = self._admit(writer)
        if key is None:
            return
        try:
            await self._serve_one(key, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass  # the client went away (or was evicted): nothing to answer
        finally:
            self._slots.pop(key, None)
            writer.transport.abort()

    async def _serve_one(
        self, key: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self._header_timeout)
        except asyncio.TimeoutError:
            self.timed_out += 1
            return
        except asyncio.LimitOverrunError:
            await self._write(writer, Response(431, b'{"error": "request head too large"}\n'))
            return
        slot = self._slots.get(key)
        if slot is None:  # evicted meanwhile
            return
        slot.waiting = False
        try:
            request = parse_head(head)
        except ValueError as exc:
            await self._write(writer, Response(400, f'{{"error": "{exc}"}}\n'.encode()))
            return
        if request.method not in ("GET", "HEAD"):
            await self._write(writer, Response(405, b'{"error": "only GET and HEAD"}\n'))
            return
        if self._is_inline(request):
            response = self._answer(request)
        else:
            response = await self._loop.run_in_executor(self._pool, self._answer, request)
        await self._write(writer, response, head_only=request.method == "HEAD")

    async def _write(
        self, writer: asyncio.StreamWriter, response: Response, head_only: bool = False
    ) -> None:
        writer.write(render(response, head_only))
        try:
            await asyncio.wait_for(writer.drain(), self._write_timeout)
        except asyncio.TimeoutError:
            self.timed_out += 1
