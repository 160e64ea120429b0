"""The embedded server's socket.io 0.9 event server.

An ftrack hub (reviewd's or the official ``ftrack_api`` one) talks to the event server in
three steps: an authenticated ``GET /socket.io/1/`` hands out a one-time session id, a
WebSocket at ``/socket.io/1/websocket/{sid}`` carries socket.io 0.9 text packets, and
``ftrack.event`` packets on it publish events, register subscribers
(``ftrack.meta.subscribe``) and carry replies.  PROTOCOL.md section 4 is the reference.

Routing is per *connection*, not per subscriber: a hub dispatches an event to all of its
own matching subscribers locally, so the server sends each event at most once to each
connection that holds at least one subscriber whose subscription matches the event and,
when the event has a ``target``, whose metadata matches the target.

Everything here runs on the aiohttp event loop of the embedding server.  Test code on
other threads reaches it only through :class:`reviewd.devserver.faults.Faults` and the
thread-safe helpers at the bottom of :class:`EventServer`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from reviewd.api.event import expression as expressions
from reviewd.api.event import packet as packets
from reviewd.devserver.faults import Faults
from reviewd.devserver.routing import SubscriptionIndex

log = logging.getLogger(__name__)

EVENT_NAME = "ftrack.event"
SUBSCRIBE_TOPIC = "ftrack.meta.subscribe"
UNSUBSCRIBE_TOPIC = "ftrack.meta.unsubscribe"
#: Characters a connection may have waiting to be written before it counts as a stalled
#: consumer and is cut off, so that one stuck client cannot make the server hoard memory.
DEFAULT_MAX_OUTBOX_BYTES = 32 << 20
#: Frames larger than this multiple of ``max_frame_bytes`` are not even read: aiohttp
#: closes the socket (code 1009).  Between the limit and this, the sender gets an error.
HARD_FRAME_FACTOR = 4
#: How long a handed-out session id may wait for its WebSocket before it expires.
SESSION_ID_TTL = 60.0
#: An ``emit`` may wait this long at most for a reply.
MAX_WAIT_REPLY = 600.0


@dataclass
class Subscriber:
    """One subscriber a hub registered on one connection."""

    id: str
    subscription: str
    expression: Any  # reviewd.api.event.expression.Expression
    metadata: dict


@dataclass(frozen=True)
class _Goodbye:
    """Outbox marker: close the socket once the frames before it are written."""

    reason: bytes


@dataclass
class _Connection:
    """The server's bookkeeping for one open socket.io WebSocket."""

    sid: str
    user: str
    request: web.Request
    ws: web.WebSocketResponse
    last_heard: float
    max_outbox_bytes: int = DEFAULT_MAX_OUTBOX_BYTES
    subscribers: dict[str, Subscriber] = field(default_factory=dict)
    outbox: asyncio.Queue = field(default_factory=asyncio.Queue)
    queued: int = 0  # characters in the outbox, written by the writer task
    tasks: list[asyncio.Task] = field(default_factory=list)
    closed: bool = False

    def send(self, text: str) -> bool:
        """Queue *text* for the writer task; cut off a consumer that stopped reading."""
        if self.closed:
            return False
        if self.queued + len(text) > self.max_outbox_bytes:
            log.warning(
                "event connection %s stopped reading (%d characters queued); cutting it off",
                self.sid,
                self.queued,
            )
            self.abort()
            return False
        self.queued += len(text)
        self.outbox.put_nowait(text)
        return True

    def say_goodbye(self, reason: bytes) -> None:
        """Send ``0::`` after whatever is queued, then close the WebSocket."""
        if self.closed:
            return
        if self.send(packets.encode(packets.Packet(packets.PacketType.DISCONNECT))):
            self.outbox.put_nowait(_Goodbye(reason))
        self.closed = True

    def abort(self) -> None:
        """Cut the TCP connection without a close frame, as a crashed proxy would."""
        self.closed = True
        transport = self.request.transport
        if transport is not None:
            transport.abort()


class EventRefused(ValueError):
    """A published event or meta request the server refuses; the ack carries the text."""


class EventServer:
    """socket.io 0.9 event server to mount on an aiohttp application.

    *authenticate(user, key)* is the same check the HTTP API uses.  Heartbeats are sent
    every *heartbeat_interval* seconds; a client heard from for no frame during
    *heartbeat_timeout* seconds is disconnected.  *max_frame_bytes* and
    *max_subscriptions_per_connection* keep one misbehaving client from hurting others;
    a client that stops reading is cut off once *max_outbox_bytes* wait for it.
    """

    def __init__(
        self,
        authenticate: Callable[[str, str], bool],
        *,
        heartbeat_interval: float = 10.0,
        heartbeat_timeout: float = 25.0,
        close_timeout: float = 60.0,
        max_frame_bytes: int = 1 << 20,
        max_subscriptions_per_connection: int = 1000,
        max_outbox_bytes: int = DEFAULT_MAX_OUTBOX_BYTES,
    ) -> None:
        if heartbeat_interval <= 0 or heartbeat_timeout <= 0:
            raise ValueError("heartbeat_interval and heartbeat_timeout must be positive")
        self._authenticate = authenticate
        self.heartbeat_interval = float(heartbeat_interval)
        self.heartbeat_timeout = float(heartbeat_timeout)
        self.close_timeout = float(close_timeout)
        self.max_frame_bytes = int(max_frame_bytes)
        self.max_subscriptions_per_connection = int(max_subscriptions_per_connection)
        self.max_outbox_bytes = int(max_outbox_bytes)
        self.faults = Faults(self)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending_sids: dict[str, tuple[str, float]] = {}
        self._connections: dict[str, _Connection] = {}
        #: Every subscriber of every connection, filed by topic; kept in step with
        #: ``_Connection.subscribers`` by _subscribe, _unsubscribe and _forget.
        self._index = SubscriptionIndex()
        self._reply_waiters: dict[str, asyncio.Future] = {}
        self._closing = False
        #: Server-originated events (``publish``/``emit``) use this as their source id,
        #: so replies to them (target ``id=<it>``) can be recognised.
        self.source_id = f"devserver-{uuid.uuid4().hex[:12]}"
        #: username -> user id (or None when unknown); set by the DevServer owning this.
        self.user_lookup: Callable[[str], str | None] | None = None
        self.published_count = 0

    # ------------------------------------------------------------------ mounting
    def add_routes(self, app: web.Application) -> None:
        """Mount the handshake, the WebSocket and ``POST /devserver/emit`` on *app*."""
        app.router.add_get("/socket.io/1/", self._handshake)
        app.router.add_get("/socket.io/1", self._handshake)
        app.router.add_get("/socket.io/1/websocket/{sid}", self._websocket)
        app.router.add_post("/devserver/emit", self._emit_endpoint)
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)

    async def _on_startup(self, app: web.Application) -> None:
        self._loop = asyncio.get_running_loop()
        self._closing = False

    async def _on_shutdown(self, app: web.Application) -> None:
        await self.close()

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop this server runs on, once the application has started."""
        return self._loop

    # ------------------------------------------------------------------ handshake
    def _credentials_ok(self, request: web.Request) -> str | None:
        user = request.headers.get("ftrack-user", "")
        key = request.headers.get("ftrack-api-key", "")
        if not user or not key:
            return None
        try:
            return user if self._authenticate(user, key) else None
        except Exception:  # a broken store must not take the event server down
            log.exception("authentication check failed for the event server")
            return None

    async def _handshake(self, request: web.Request) -> web.Response:
        self._loop = self._loop or asyncio.get_running_loop()
        refused = self._refusal()
        if refused is not None:
            return refused
        user = self._credentials_ok(request)
        if user is None:
            return web.Response(
                status=401,
                text="InvalidCredentialsError: the ftrack-user or ftrack-api-key header "
                "is missing or was refused.",
            )
        self._expire_session_ids()
        sid = uuid.uuid4().hex
        self._pending_sids[sid] = (user, time.monotonic())
        body = packets.format_handshake(
            packets.Handshake(
                session_id=sid,
                heartbeat_timeout=self.heartbeat_timeout,
                close_timeout=self.close_timeout,
                transports=("websocket",),
            )
        )
        return web.Response(text=body, content_type="text/plain")

    def _refusal(self) -> web.Response | None:
        remaining = self.faults.refusing_for()
        if self._closing:
            return web.Response(status=503, text="The event server is shutting down.")
        if remaining > 0:
            return web.Response(
                status=503,
                text="The event server is unavailable (fault switch); try again shortly.",
                headers={"Retry-After": str(max(1, round(remaining)))},
            )
        return None

    def _expire_session_ids(self) -> None:
        deadline = time.monotonic() - SESSION_ID_TTL
        for sid, (_user, created) in list(self._pending_sids.items()):
            if created < deadline:
                del self._pending_sids[sid]

    # ------------------------------------------------------------------ websocket
    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        refused = self._refusal()
        if refused is not None:
            return refused
        sid = request.match_info["sid"]
        self._expire_session_ids()
        pending = self._pending_sids.pop(sid, None)
        if pending is None:
            return web.Response(
                status=404,
                text="Unknown or already used socket.io session id; do the handshake "
                "GET /socket.io/1/ again.",
            )
        ws = web.WebSocketResponse(
            max_msg_size=self.max_frame_bytes * HARD_FRAME_FACTOR, autoping=True
        )
        await ws.prepare(request)
        loop = asyncio.get_running_loop()
        conn = _Connection(
            sid=sid,
            user=pending[0],
            request=request,
            ws=ws,
            last_heard=loop.time(),
            max_outbox_bytes=self.max_outbox_bytes,
        )
        self._connections[sid] = conn
        conn.tasks.append(asyncio.create_task(self._writer(conn)))
        conn.tasks.append(asyncio.create_task(self._ticker(conn)))
        conn.send(packets.encode(packets.Packet(packets.PacketType.CONNECT)))
        log.info("event connection %s opened for %s", sid, conn.user)
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    heartbeat = self._is_heartbeat(message.data)
                    if not (heartbeat and self.faults.ignoring_heartbeats()):
                        conn.last_heard = loop.time()
                    self._on_frame(conn, message.data)
                elif message.type == WSMsgType.BINARY:
                    self._send_error(conn, "binary frames are not socket.io 0.9 packets")
                elif message.type == WSMsgType.ERROR:
                    log.warning("event connection %s failed: %s", sid, ws.exception())
                    break
        except ConnectionError:
            pass
        finally:
            self._forget(conn)
            if not ws.closed:
                try:
                    await ws.close()
                except (ConnectionError, RuntimeError):
                    pass
            log.info("event connection %s closed", sid)
        return ws

    @staticmethod
    def _is_heartbeat(text: str) -> bool:
        return text == "2" or text.startswith("2:")

    async def _writer(self, conn: _Connection) -> None:
        """Write queued frames in order; the only task that writes to the socket."""
        try:
            while True:
                item = await conn.outbox.get()
                if conn.ws.closed:
                    return
                if isinstance(item, _Goodbye):
                    await conn.ws.close(code=1001, message=item.reason)
                    return
                try:
                    await conn.ws.send_str(item)
                except UnicodeEncodeError:  # a lone surrogate ("\ud800") in an event
                    await conn.ws.send_str(_escape_surrogates(item))
                conn.queued -= len(item)
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            return

    async def _ticker(self, conn: _Connection) -> None:
        """Send heartbeats and disconnect a client that went silent."""
        loop = asyncio.get_running_loop()
        tick = min(self.heartbeat_interval, self.heartbeat_timeout / 5, 1.0)
        next_beat = loop.time() + self.heartbeat_interval
        heartbeat = packets.encode(packets.Packet(packets.PacketType.HEARTBEAT))
        try:
            while not conn.closed:
                await asyncio.sleep(tick)
                now = loop.time()
                if self.faults.heartbeats_paused():
                    # A server that asks nothing cannot expect answers: while paused the
                    # socket is merely quiet, so the *client* must notice the silence.
                    conn.last_heard = now
                elif now - conn.last_heard > self.heartbeat_timeout:
                    log.info(
                        "event connection %s silent for %.1fs; disconnecting",
                        conn.sid,
                        now - conn.last_heard,
                    )
                    conn.say_goodbye(b"heartbeat timeout")
                    return
                if now >= next_beat:
                    next_beat = now + self.heartbeat_interval
                    if not self.faults.heartbeats_paused():
                        conn.send(heartbeat)
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            return

    def _forget(self, conn: _Connection) -> None:
        """Drop a connection and, with it, every subscriber it registered."""
        conn.closed = True
        self._connections.pop(conn.sid, None)
        for subscriber_id in conn.subscribers:
            self._index.discard((conn.sid, subscriber_id))
        conn.subscribers.clear()
        current = asyncio.current_task()
        for task in conn.tasks:
            if task is not current:
                task.cancel()

    # ------------------------------------------------------------------ packets
    def _send_error(self, conn: _Connection, reason: str) -> None:
        conn.send(packets.encode(packets.Packet(packets.PacketType.ERROR, data=reason)))

    def _on_frame(self, conn: _Connection, text: str) -> None:
        """Handle one text frame; bad input is answered, never raised."""
        if len(text.encode("utf-8", "surrogatepass")) > self.max_frame_bytes:
            self._refuse_oversized(conn, text)
            return
        try:
            packet = packets.decode(text)
        except packets.PacketError as error:
            log.info("event connection %s sent a malformed packet: %s", conn.sid, error)
            self._send_error(conn, f"malformed packet: {error}")
            return
        kind = packet.type
        if kind == packets.PacketType.EVENT:
            self._on_event_packet(conn, packet)
        elif kind == packets.PacketType.DISCONNECT:
            conn.say_goodbye(b"client disconnected")
        # HEARTBEAT only refreshes last_heard (done by the reader); CONNECT, MESSAGE,
        # JSON, ACK and NOOP from a client carry nothing the ftrack server acts on.

    def _refuse_oversized(self, conn: _Connection, text: str) -> None:
        message = (
            f"frame of {len(text)} characters exceeds the limit of {self.max_frame_bytes} bytes"
        )
        log.info("event connection %s: %s", conn.sid, message)
        head = text[:32].split(":")
        if len(head) >= 2 and head[0] == "5" and head[1].endswith("+") and head[1][:-1].isdigit():
            self._acknowledge(conn, head[1][:-1], False, message)
        else:
            self._send_error(conn, message)

    def _acknowledge(
        self, conn: _Connection, ack_id: str, success: bool, message: str | None = None
    ) -> None:
        body: dict[str, Any] = {"success": success}
        if message is not None:
            body["message"] = message
        text = packets.encode(packets.ack(ack_id, [body]))
        mode, delay = self.faults.ack_mode()
        if mode == "blackhole":
            return
        if mode == "delay" and delay > 0:
            asyncio.get_running_loop().call_later(delay, conn.send, text)
            return
        conn.send(text)

    def _on_event_packet(self, conn: _Connection, packet: Any) -> None:
        ack_id = packet.id[:-1] if packet.id.endswith("+") else ""
        try:
            name, args = packets.parse_event(packet)
            if name != EVENT_NAME:
                raise EventRefused(f"unknown event name {name!r}; expected {EVENT_NAME!r}")
            if len(args) != 1 or not isinstance(args[0], dict):
                raise EventRefused("an ftrack.event packet carries exactly one event object")
            event = self._normalise(args[0], conn)
            topic = event["topic"]
            if topic == SUBSCRIBE_TOPIC:
                self._subscribe(conn, event)
            elif topic == UNSUBSCRIBE_TOPIC:
                self._unsubscribe(conn, event)
            else:
                self._resolve_reply_waiter(event)
                self._route(event)
        except (EventRefused, packets.PacketError, expressions.ParseError) as error:
            log.info("event connection %s: refused event: %s", conn.sid, error)
            if ack_id:
                self._acknowledge(conn, ack_id, False, str(error))
            else:
                self._send_error(conn, str(error))
            return
        if ack_id:
            self._acknowledge(conn, ack_id, True)

    @staticmethod
    def _normalise(event: dict, conn: _Connection | None) -> dict:
        """Check an incoming event's shape and fill the fields a client may omit."""
        topic = event.get("topic")
        if not isinstance(topic, str) or not topic:
            raise EventRefused("the event has no topic")
        if "in_reply_to_event" in event and "inReplyToEvent" not in event:
            event["inReplyToEvent"] = event.pop("in_reply_to_event")
        event.setdefault("id", uuid.uuid4().hex)
        event.setdefault("data", {})
        event.setdefault("target", "")
        event.setdefault("sent", None)
        event.setdefault("inReplyToEvent", None)
        if event["inReplyToEvent"] is not None and not isinstance(event["inReplyToEvent"], str):
            raise EventRefused("inReplyToEvent must be an event id (a string) or null")
        source = event.setdefault("source", {})
        if not isinstance(source, dict):
            raise EventRefused("the event's source must be an object")
        if conn is not None:
            source.setdefault("user", {"username": conn.user})
        if event["target"] is None:
            event["target"] = ""
        if not isinstance(event["target"], str):
            raise EventRefused("the event's target must be an expression string")
        return event

    def _subscribe(self, conn: _Connection, event: dict) -> None:
        data = event.get("data")
        if not isinstance(data, dict):
            raise EventRefused("ftrack.meta.subscribe needs data {subscriber, subscription}")
        metadata = data.get("subscriber")
        subscription = data.get("subscription")
        if (
            not isinstance(metadata, dict)
            or not isinstance(metadata.get("id"), str)
            or not metadata["id"]
        ):
            raise EventRefused("ftrack.meta.subscribe needs data.subscriber.id")
        if not isinstance(subscription, str):
            raise EventRefused("ftrack.meta.subscribe needs data.subscription (a string)")
        subscriber_id = metadata["id"]
        if subscriber_id in conn.subscribers:
            raise EventRefused(f"subscriber {subscriber_id} is already subscribed")
        if len(conn.subscribers) >= self.max_subscriptions_per_connection:
            raise EventRefused(
                f"too many subscriptions on this connection (limit "
                f"{self.max_subscriptions_per_connection})"
            )
        compiled = expressions.parse(subscription)
        # A hub that reconnects re-subscribes its ids on a new connection, possibly before
        # the server has noticed the old one is dead: the newest registration wins.
        for other in list(self._connections.values()):
            if other is not conn and other.subscribers.pop(subscriber_id, None) is not None:
                self._index.discard((other.sid, subscriber_id))
                log.info(
                    "subscriber %s moved from connection %s to %s",
                    subscriber_id,
                    other.sid,
                    conn.sid,
                )
        subscriber = Subscriber(
            id=subscriber_id,
            subscription=subscription,
            expression=compiled,
            metadata=dict(metadata),
        )
        conn.subscribers[subscriber_id] = subscriber
        self._index.add((conn.sid, subscriber_id), conn, subscriber)

    def _unsubscribe(self, conn: _Connection, event: dict) -> None:
        data = event.get("data")
        metadata = data.get("subscriber") if isinstance(data, dict) else None
        if not isinstance(metadata, dict) or not isinstance(metadata.get("id"), str):
            raise EventRefused("ftrack.meta.unsubscribe needs data.subscriber.id")
        if conn.subscribers.pop(metadata["id"], None) is None:
            raise EventRefused(f"no subscriber {metadata['id']} on this connection")
        self._index.discard((conn.sid, metadata["id"]))

    # ------------------------------------------------------------------ routing
    def _route(self, event: dict) -> int:
        """Send *event* to every connection that wants it; return how many did.

        Only subscribers the topic index names are asked (see
        :mod:`reviewd.devserver.routing`), each with what its expression leaves to check
        once the topic is known; a connection is chosen by its first matching subscriber.
        """
        target = expressions.parse(event["target"]) if event["target"].strip() else None
        chosen: dict[str, _Connection] = {}
        failed: set[str] = set()
        for conn, subscriber, remainder in self._index.candidates(event["topic"]):
            sid = conn.sid
            if sid in chosen or sid in failed or conn.closed:
                continue
            try:
                if remainder is not None and not remainder(event):
                    continue
                if target is not None and not target.match(subscriber.metadata):
                    continue
            except Exception:  # one odd subscriber must not stop routing to the others
                log.exception("matching event %s for connection %s failed", event.get("id"), sid)
                failed.add(sid)
                continue
            chosen[sid] = conn
        if not chosen:
            return 0
        text = packets.encode(packets.event(EVENT_NAME, [event]))
        delivered = 0
        for conn in chosen.values():
            if conn.send(text):
                delivered += 1
        return delivered

    def _resolve_reply_waiter(self, event: dict) -> None:
        waiter = self._reply_waiters.get(event.get("inReplyToEvent") or "")
        if waiter is not None and not waiter.done():
            waiter.set_result(event)

    async def publish(self, event: dict) -> None:
        """Route a server-originated wire-form *event* (for example ``ftrack.update``).

        Fields a caller leaves out are filled as a real server would; the event's
        ``source`` is kept as given.
        """
        event = self._normalise(dict(event), None)
        if event["target"].strip():
            expressions.parse(event["target"])  # refuse a bad target loudly
        self.published_count += 1
        self._route(event)

    async def emit(
        self,
        topic: str,
        data: dict | None = None,
        target: str = "",
        source: dict | None = None,
        wait_reply: float | None = None,
    ) -> dict | None:
        """Publish a server-originated event, as the web UI does, optionally awaiting a reply.

        Returns the first reply event (wire form) when *wait_reply* is given and one
        arrives in time, else ``None``.
        """
        event = self.build_event(topic, data, target, source)
        if target.strip():
            expressions.parse(target)
        return await self._publish_and_wait(event, wait_reply)

    async def _publish_and_wait(self, event: dict, wait_reply: float | None) -> dict | None:
        if not wait_reply:
            await self.publish(event)
            return None
        waiter = asyncio.get_running_loop().create_future()
        self._reply_waiters[event["id"]] = waiter
        try:
            await self.publish(event)
            return await asyncio.wait_for(waiter, min(float(wait_reply), MAX_WAIT_REPLY))
        except asyncio.TimeoutError:
            return None
        finally:
            self._reply_waiters.pop(event["id"], None)

    def source_user(self, username: Any) -> dict:
        """``source.user`` naming *username* with its id, as real servers send it.

        Actions often check ``event['source']['user']['username']`` (or the id) against
        the people allowed to run them, so an emitted event must carry a real user.
        """
        if not isinstance(username, str) or not username.strip():
            raise ValueError("source_user must be a user name")
        lookup = self.user_lookup
        user_id = lookup(username) if lookup is not None else None
        if lookup is not None and user_id is None:
            raise ValueError(f"there is no user {username!r} on this server")
        return {"username": username, "id": user_id}

    def build_event(
        self, topic: str, data: dict | None = None, target: str = "", source: dict | None = None
    ) -> dict:
        """A wire-form event as the web UI would send it, sourced at this server."""
        if not isinstance(topic, str) or not topic.strip():
            raise ValueError("an event needs a non-empty topic")
        if data is not None and not isinstance(data, dict):
            raise ValueError("event data must be a JSON object")
        source = dict(source or {})
        source.setdefault("id", self.source_id)
        source.setdefault("applicationId", "ftrack.client.web")
        source.setdefault("user", {"username": "devserver"})
        return {
            "id": uuid.uuid4().hex,
            "topic": topic,
            "data": data or {},
            "source": source,
            "target": target or "",
            "sent": None,
            "inReplyToEvent": None,
        }

    async def close(self) -> None:
        """Say goodbye (``0::``) to every client and forget all connections."""
        self._closing = True
        connections = list(self._connections.values())
        for conn in connections:
            conn.say_goodbye(b"server shutdown")
        writers = [conn.tasks[0] for conn in connections if conn.tasks]
        if writers:
            await asyncio.wait(writers, timeout=2)
        for conn in connections:
            if not conn.ws.closed:
                conn.abort()
            self._forget(conn)
        for waiter in self._reply_waiters.values():
            if not waiter.done():
                waiter.cancel()
        self._pending_sids.clear()

    # ------------------------------------------------------------------ POST /devserver/emit
    async def _emit_endpoint(self, request: web.Request) -> web.Response:
        """Let ``reviewd devserver emit`` (another process) publish and await a reply."""
        if self._credentials_ok(request) is None:
            return _error(
                401,
                "InvalidCredentialsError",
                "The ftrack-user or ftrack-api-key header is missing or was refused.",
            )
        try:
            body = await request.json(loads=json.loads)
        except (ValueError, UnicodeDecodeError):
            return _error(400, "ValidationError", "The request body is not JSON.")
        if not isinstance(body, dict):
            return _error(400, "ValidationError", "The request body must be a JSON object.")
        topic: Any = body.get("topic")
        data = body.get("data")
        target = body.get("target") or ""
        source = body.get("source")
        wait_reply = body.get("wait_reply")
        try:
            if not isinstance(target, str):
                raise ValueError("target must be an expression string")
            if source is not None and not isinstance(source, dict):
                raise ValueError("source must be a JSON object")
            if body.get("source_user") is not None:
                # The lookup reads the store; keep it off the loop that carries heartbeats.
                user = await asyncio.get_running_loop().run_in_executor(
                    None, self.source_user, body["source_user"]
                )
                source = {**(source or {}), "user": user}
            if wait_reply is not None and (
                isinstance(wait_reply, bool)
                or not isinstance(wait_reply, (int, float))
                or wait_reply < 0
            ):
                raise ValueError("wait_reply must be a number of seconds >= 0")
            event = self.build_event(topic, data, target, source)
            if target.strip():
                expressions.parse(target)
        except (ValueError, expressions.ParseError) as error:
            return _error(400, "ValidationError", str(error))
        reply = await self._publish_and_wait(event, wait_reply)
        return web.json_response({"event": event, "reply": reply})

    # ------------------------------------------------------------------ thread-safe views
    def call_in_loop(self, function: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Run *function* on the server's loop and return its result, from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            raise RuntimeError("the event server is not running")
        if _running_loop() is loop:
            return function()
        future: concurrent.futures.Future = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(function())
            except BaseException as error:  # handed to the calling thread
                future.set_exception(error)

        loop.call_soon_threadsafe(run)
        return future.result(timeout)

    def connections(self) -> list[dict]:
        """A snapshot of open connections: sid, user and subscribers (thread-safe)."""

        def snapshot() -> list[dict]:
            return [
                {
                    "sid": conn.sid,
                    "user": conn.user,
                    "subscribers": [
                        {"id": s.id, "subscription": s.subscription, "metadata": s.metadata}
                        for s in conn.subscribers.values()
                    ],
                }
                for conn in self._connections.values()
                if not conn.closed
            ]

        if self._loop is None or self._loop.is_closed() or not self._loop.is_running():
            return []
        return self.call_in_loop(snapshot)

    def _open_connections(self) -> list[_Connection]:
        return [conn for conn in self._connections.values() if not conn.closed]


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _error(status: int, exception: str, content: str) -> web.Response:
    return web.json_response(
        {"exception": exception, "content": content, "error_code": None}, status=status
    )


__all__ = ["EventServer", "Subscriber", "EventRefused"]


def _escape_surrogates(text: str) -> str:
    """JSON text with each lone surrogate written as its ``\\uXXXX`` escape.

    Such text cannot be encoded as UTF-8 for a WebSocket frame, but the escape is valid
    JSON that decodes to the very same string: the event is delivered unchanged and
    the connection's writer lives on (it used to die, stalling every later event).
    """
    return "".join(f"\\u{ord(ch):04x}" if "\ud800" <= ch <= "\udfff" else ch for ch in text)
