"""The event hub: subscriptions, local dispatch, replies, and a connection that never quits.

Three threads, each with one job, so that no party can stall another:

* the **connection thread** handshakes, reads frames, answers heartbeats and, when the
  socket dies (closed, reset, or silent past the heartbeat timeout), reconnects forever
  with capped exponential backoff and full jitter, re-subscribing everything each time;
* the **writer thread** drains the outgoing queues to the socket, so a publisher only
  appends to a bounded queue and never waits for the network (when the queue is full,
  the oldest event is dropped and counted);
* the **dispatch thread** runs subscriber callbacks (or hands events to the daemon's
  dispatch hook), so a slow handler delays other handlers, never the socket.

Names and behaviour follow ``ftrack_api.event.hub.EventHub`` so that plugins written for
ftrack run unchanged; the differences are the robustness guarantees above, reply
callbacks that expire, and the public hooks the daemon builds on.
"""

from __future__ import annotations

import itertools
import logging
import platform
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from reviewd.event import expression as _expression
from reviewd.event import packet as _packet
from reviewd.event.backoff import Backoff
from reviewd.event.base import Event
from reviewd.event.connection import Connection, ConnectionLost, HandshakeRefused
from reviewd.event.subscriber import Subscriber
from reviewd.exception import (
    EventHubConnectionError,
    EventHubError,
    NotFoundError,
    NotUniqueError,
    ReplyTimeoutError,
    redact,
    register_secret,
)

__all__ = ["EventHub", "Attempt"]

log = logging.getLogger("reviewd.event.hub")

EVENT_NAME = "ftrack.event"
REPLY_TOPIC = "ftrack.meta.reply"
SUBSCRIBE_TOPIC = "ftrack.meta.subscribe"
UNSUBSCRIBE_TOPIC = "ftrack.meta.unsubscribe"
CONNECTED_TOPIC = "ftrack.meta.connected"
DISCONNECTED_TOPIC = "ftrack.meta.disconnected"

#: A connection that lived this long counts as healthy: the backoff starts over.
HEALTHY_AFTER = 2.0
#: How long the server has to acknowledge a frame before the hub forgets it asked.
ACK_TTL = 60.0
#: At most this many unacknowledged frames are remembered (a server that stops acking
#: must not grow the hub's memory).
MAX_PENDING_ACKS = 100000
#: Frames the writer takes from the queue per lock acquisition.
WRITE_BATCH = 256
_HOUSEKEEPING_INTERVAL = 1.0
_TOPIC_CACHE_LIMIT = 4096


class Attempt(NamedTuple):
    """One connection attempt: when, how it went, and the wait scheduled after it."""

    time: float
    outcome: str
    delay: float | None = None
    ceiling: float | None = None


class _Stop:
    """Marker that ends the dispatch thread."""


class _Reply:
    __slots__ = ("callback", "expires", "inline")

    def __init__(self, callback: Callable[[Event], Any], expires: float, inline: bool) -> None:
        self.callback = callback
        self.expires = expires
        self.inline = inline


class EventHub:
    """Connect to an ftrack event server, subscribe callbacks, publish events.

    ``connect()`` must be called before events flow; ``publish`` never blocks on the
    network; callbacks run on the hub's dispatch thread (``inline_dispatch=True`` runs
    them on the socket reader thread instead, for the lowest latency when every
    handler is trivial).
    """

    def __init__(
        self,
        server_url: str,
        api_user: str,
        api_key: str,
        *,
        headers: Mapping[str, str] | None = None,
        cookies: Mapping[str, str] | None = None,
        verify: bool | str = True,
        auth: Any = None,
        reconnect_cap: float = 60.0,
        reply_ttl: float = 600.0,
        publish_queue_size: int = 10000,
        reconnect_base: float = 1.0,
        incoming_queue_size: int = 100000,
        max_reply_callbacks: int = 100000,
        inline_dispatch: bool = False,
        connect_timeout: float = 10.0,
    ) -> None:
        if not server_url:
            raise TypeError("EventHub needs server_url (the ftrack server, e.g. https://x.ftrackapp.com)")
        parts = urlsplit(server_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"server_url must look like https://host[:port], got {server_url!r}")
        register_secret(api_key)
        self.id: str = uuid.uuid4().hex
        self.server_url = server_url.rstrip("/")
        self._api_user = api_user
        self._api_key = api_key
        self._headers = dict(headers or {})
        self._cookies = dict(cookies or {})
        self._verify = verify
        self._auth = auth
        self._connect_timeout = connect_timeout
        self._reconnect_base = reconnect_base
        self._reconnect_cap = reconnect_cap
        self._reply_ttl = reply_ttl
        self._publish_queue_size = max(1, int(publish_queue_size))
        self._incoming_queue_size = max(1, int(incoming_queue_size))
        self._max_replies = max(1, int(max_reply_callbacks))
        self._inline_dispatch = inline_dispatch
        self._host = platform.node()

        # Subscribers (guarded by _lock; dispatch reads immutable snapshots).
        self._lock = threading.RLock()
        self._subscribers: list[Subscriber] = []
        self._by_id: dict[str, Subscriber] = {}
        self._order = itertools.count()
        self._topic_cache: dict[str | None, tuple] = {}
        self._reply_subscriber = Subscriber(
            f"topic={REPLY_TOPIC}", _ignore, {"id": self.id}, priority=100
        )

        # Outgoing frames (guarded by _out_cond).
        self._out_cond = threading.Condition(threading.Lock())
        self._control: deque[tuple[str, int | None, Any]] = deque()
        self._outgoing: deque[tuple[str, int | None, Any]] = deque()
        self._live: Connection | None = None  # the connection the writer may use

        # Acknowledgements the server owes us, oldest first (guarded by _ack_lock).
        self._ack_ids = itertools.count(1)
        self._ack_lock = threading.Lock()
        self._pending_acks: OrderedDict[int, tuple[float, Any]] = OrderedDict()

        # Reply callbacks by published event id, oldest first (guarded by _reply_lock).
        self._reply_lock = threading.Lock()
        self._replies: OrderedDict[str, _Reply] = OrderedDict()

        # Received events waiting for the dispatch thread (guarded by _in_cond).
        self._in_cond = threading.Condition(threading.Lock())
        self._incoming: deque = deque()

        # Lifecycle.
        self._running = False
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()
        self._connection: Connection | None = None
        self._connected_event = threading.Event()
        self._ready_event = threading.Event()
        self._fatal: BaseException | None = None
        self._threads: list[threading.Thread] = []
        self._previous_threads: list[threading.Thread] = []
        self._ever_started = False
        self._listeners: list[tuple[Callable | None, Callable | None]] = []
        self._dispatch_hook: Callable[[Event, list[Subscriber]], Any] | None = None
        self._next_housekeeping = 0.0
        #: The latest connection attempts (:class:`Attempt`), for diagnosis and tests.
        self.connection_attempts: deque[Attempt] = deque(maxlen=200)
        self._counters = {
            "published": 0,
            "dropped": 0,
            "received": 0,
            "malformed": 0,
            "handler_errors": 0,
            "reconnects": 0,
            "acks_lost": 0,
            "replies_expired": 0,
            "server_refusals": 0,
        }

    # ================================================================== public state
    def __repr__(self) -> str:
        state = "connected" if self.connected else ("connecting" if self._running else "idle")
        return f"<EventHub {self.server_url} user={self._api_user!r} id={self.id} {state}>"

    @property
    def connected(self) -> bool:
        """Whether a socket to the event server is open right now."""
        return self._connected_event.is_set()

    @property
    def subscribed(self) -> bool:
        """Whether the server has confirmed every subscription sent on this connection
        (readiness: events matching them will now be delivered)."""
        return self._connected_event.is_set() and self._ready_event.is_set()

    @property
    def subscribers(self) -> list[Subscriber]:
        """The user's subscribers in dispatch order (priority, then subscription order)."""
        with self._lock:
            return list(self._subscribers)

    def get_subscriber_by_identifier(self, identifier: str) -> Subscriber | None:
        with self._lock:
            return self._by_id.get(identifier)

    def stats(self) -> dict[str, int]:
        """Counters and queue sizes, for metrics and health checks."""
        with self._out_cond:
            outgoing = len(self._outgoing) + len(self._control)
        counters = dict(self._counters)
        counters.update(
            outgoing_queue=outgoing,
            incoming_queue=len(self._incoming),
            pending_acks=len(self._pending_acks),
            reply_callbacks=len(self._replies),
            subscribers=len(self._subscribers),
        )
        return counters

    # ================================================================== lifecycle
    def connect(self, wait: bool = True, timeout: float | None = None) -> None:
        """Start connecting; with *wait*, return once connected and subscribed.

        With ``wait=False`` this returns at once: the hub keeps trying in the background
        forever, and publishes queue until it gets through.  With ``wait=True`` it
        raises :class:`EventHubConnectionError` (and stops trying) if no connection is
        made within *timeout* seconds (default 30) or the server refuses the credentials.
        """
        with self._lock:
            if self._running:
                if not wait:
                    return
            else:
                self._start()
        if not wait:
            return
        deadline = time.monotonic() + (30.0 if timeout is None else timeout)
        while not self._connected_event.wait(0.05):
            fatal = self._fatal
            if fatal is not None or time.monotonic() >= deadline:
                self.disconnect(unsubscribe=False)
                if fatal is not None:
                    raise EventHubConnectionError(str(fatal)) from None
                last = self.connection_attempts[-1].outcome if self.connection_attempts else "none"
                raise EventHubConnectionError(
                    redact(
                        f"could not connect to the event server at {self.server_url} within "
                        f"{timeout if timeout is not None else 30.0:g}s (last attempt: {last})"
                    )
                )
        # Connected: give the server a moment to confirm the subscriptions so that an
        # event published right after connect() reaches them.
        self._ready_event.wait(max(0.0, min(deadline - time.monotonic(), 10.0)))

    def _start(self) -> None:
        # Threads of a previous run that outlived disconnect()'s timeout (stuck in a
        # handshake) must end before the stop flag is cleared for the new run.
        for thread in self._previous_threads:
            thread.join(self._connect_timeout + 5.0)
        self._previous_threads = []
        self._running = True
        self._ever_started = True
        self._fatal = None
        self._incoming.clear()
        self._stop.clear()
        self._stopped.clear()
        self._threads = [
            threading.Thread(target=self._run_connection, name=f"reviewd-hub-conn-{self.id[:8]}",
                             daemon=True),
            threading.Thread(target=self._run_writer, name=f"reviewd-hub-write-{self.id[:8]}",
                             daemon=True),
        ]
        if not self._inline_dispatch:
            self._threads.append(
                threading.Thread(target=self._run_dispatch,
                                 name=f"reviewd-hub-dispatch-{self.id[:8]}", daemon=True)
            )
        for thread in self._threads:
            thread.start()

    def init_connection(self) -> None:
        """ftrack compatibility: start connecting in the background."""
        self.connect(wait=False)

    def disconnect(self, unsubscribe: bool = True, timeout: float = 5.0) -> None:
        """Stop for good: optionally unsubscribe on the server, close, join the threads.

        Events still queued for sending get up to *timeout* seconds to go out first.
        """
        with self._lock:
            if not self._running:
                return
            self._running = False
            subscriber_ids = [s.id for s in self._subscribers] if unsubscribe else []
        deadline = time.monotonic() + timeout
        if self.connected:
            with self._out_cond:
                for subscriber_id in subscriber_ids:
                    self._control.append(self._frame(self._meta_event(
                        UNSUBSCRIBE_TOPIC, {"subscriber": {"id": subscriber_id}}), None))
                self._out_cond.notify_all()
            self._drain_outgoing(deadline)
        self._stop.set()
        with self._out_cond:
            self._out_cond.notify_all()
        connection = self._connection
        if connection is not None:
            try:
                connection.send(_packet.encode(_packet.Packet(_packet.PacketType.DISCONNECT)))
            except ConnectionLost:
                pass
            connection.close()
        current = threading.current_thread()
        network_threads, dispatch_threads = self._threads[:2], self._threads[2:]
        for thread in network_threads:
            if thread is not current:
                thread.join(max(0.1, deadline - time.monotonic()))
        # Only now stop the dispatch thread, so that ftrack.meta.disconnected and the
        # events read before the socket closed are still dispatched.
        with self._in_cond:
            self._incoming.append(_Stop)
            self._in_cond.notify_all()
        for thread in dispatch_threads:
            if thread is not current:
                thread.join(max(0.1, deadline - time.monotonic()))
        self._previous_threads = [t for t in self._threads if t.is_alive() and t is not current]
        self._threads = []
        self._stopped.set()

    def _drain_outgoing(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            with self._out_cond:
                if not (self._control or self._outgoing) or self._live is None:
                    return
                self._out_cond.wait(0.05)

    def wait(self, duration: float | None = None) -> None:
        """Block while events are processed, for *duration* seconds or until disconnected.

        Callbacks run on the hub's dispatch thread whether or not anyone waits; this
        keeps an ftrack-style ``session.event_hub.wait()`` script alive.
        """
        if not self._running and not self._ever_started:
            raise EventHubConnectionError(
                "the event hub was never connected, so no events can arrive; call "
                "connect() first (or publish with synchronous=True for local events)"
            )
        if duration is not None and duration <= 0:
            return
        self._stopped.wait(duration)

    def add_connection_listener(
        self,
        on_connected: Callable[[], Any] | None = None,
        on_disconnected: Callable[[str], Any] | None = None,
    ) -> Callable[[], None]:
        """Call *on_connected()* after every (re)connect and *on_disconnected(reason)*
        after every loss of the connection; return a function that removes them.

        They run on the connection thread and must return quickly.  There is no
        "gave up" callback: the hub never gives up.
        """
        entry = (on_connected, on_disconnected)
        with self._lock:
            self._listeners.append(entry)

        def remove() -> None:
            with self._lock:
                if entry in self._listeners:
                    self._listeners.remove(entry)

        return remove

    def set_dispatch_hook(self, fn: Callable[[Event, list[Subscriber]], Any] | None) -> None:
        """Receive every event *instead of* the hub calling the callbacks:
        ``fn(event, subscribers)`` with the subscribers it matched in priority order
        (possibly none, e.g. ``ftrack.meta.connected`` with no listener), on the
        dispatch thread.  The daemon journals the event and later calls
        :meth:`deliver` for each subscriber.  ``None`` restores inline dispatch.
        Synchronous (local) publishing is not affected.
        """
        self._dispatch_hook = fn

    def deliver(self, event: Event, subscriber: Subscriber) -> Any:
        """Run *subscriber*'s callback for *event* and publish a non-None result as a
        reply.  Exceptions propagate to the caller (the daemon counts and retries)."""
        result = subscriber.callback(event)
        if result is not None:
            # The handler succeeded; failing to send its reply must not make the daemon
            # run it again, so the error is logged rather than raised.
            try:
                self.publish_reply(event, result, source=subscriber.metadata)
            except Exception:
                log.exception("could not publish the reply of subscriber %s to event %s",
                              subscriber.id, event.get("id"))
        return result

    # ================================================================== subscriptions
    def subscribe(
        self,
        subscription: str,
        callback: Callable[[Event], Any],
        subscriber: Mapping | None = None,
        priority: int = 100,
    ) -> str:
        """Subscribe *callback* to events matching *subscription*; return the subscriber id.

        Raises :class:`~reviewd.event.expression.ParseError` for a malformed subscription
        and :class:`~reviewd.exception.NotUniqueError` (an :class:`EventHubError`) if the
        subscriber id is already in use.
        """
        metadata = dict(subscriber or {})
        metadata.setdefault("id", uuid.uuid4().hex)
        with self._lock:
            if metadata["id"] in self._by_id or metadata["id"] == self.id:
                raise NotUniqueError(f"a subscriber with id {metadata['id']!r} already exists")
            entry = Subscriber(subscription, callback, metadata, priority, next(self._order))
            self._subscribers.append(entry)
            self._subscribers.sort(key=Subscriber.sort_key)
            self._by_id[entry.id] = entry
            self._topic_cache = {}
            self._send_control(self._subscribe_frame(entry))
        return entry.id

    def unsubscribe(self, subscriber_identifier: str) -> None:
        """Remove a subscriber; raise :class:`NotFoundError` if there is none by that id."""
        with self._lock:
            entry = self._by_id.pop(subscriber_identifier, None)
            if entry is None:
                raise NotFoundError(f"no subscriber with id {subscriber_identifier!r}")
            self._subscribers.remove(entry)
            self._topic_cache = {}
            self._send_control(self._frame(self._meta_event(
                UNSUBSCRIBE_TOPIC, {"subscriber": {"id": subscriber_identifier}}), None))

    @contextmanager
    def subscription(
        self,
        subscription: str,
        callback: Callable[[Event], Any],
        subscriber: Mapping | None = None,
        priority: int = 100,
    ) -> Iterator[str]:
        """Subscribe for the duration of a ``with`` block."""
        subscriber_id = self.subscribe(subscription, callback, subscriber, priority)
        try:
            yield subscriber_id
        finally:
            try:
                self.unsubscribe(subscriber_id)
            except NotFoundError:
                pass

    def _send_control(self, item: tuple) -> None:
        """Queue a (un)subscribe frame if connected; on reconnect all are re-sent anyway."""
        with self._out_cond:
            if self._live is not None:
                self._control.append(item)
                self._out_cond.notify()

    def _subscribe_frame(self, entry: Subscriber, on_ack: Any = None) -> tuple:
        event = self._meta_event(
            SUBSCRIBE_TOPIC, {"subscriber": entry.metadata, "subscription": entry.subscription}
        )
        return self._frame(event, on_ack or ("subscribe", f"subscriber {entry.id}", None))

    def _meta_event(self, topic: str, data: dict) -> Event:
        event = Event(topic, data=data)
        self._prepare_event(event)
        return event

    # ================================================================== publishing
    def _prepare_event(self, event: Event) -> None:
        source = event.get("source")
        if source.__class__ is not dict:
            source = event["source"] = dict(source) if isinstance(source, Mapping) else {}
        if "id" not in source:
            source["id"] = self.id
        if "user" not in source:
            source["user"] = {"username": self._api_user}
        if "host" not in source:
            source["host"] = self._host

    def _frame(self, event: Event, on_ack: Any) -> tuple[str, int, Any]:
        """Encode *event* as an event packet that asks for an acknowledgement."""
        ack_id = next(self._ack_ids)
        try:
            built = _packet.event(EVENT_NAME, [event.to_wire()], id=f"{ack_id}+")
        except (TypeError, ValueError) as error:
            raise EventHubError(
                f"cannot publish event {event.get('topic')!r}: its content is not "
                f"JSON-serialisable ({error})"
            ) from None
        return _packet.encode(built), ack_id, on_ack

    def publish(
        self,
        event: Event | Mapping,
        synchronous: bool = False,
        on_reply: Callable[[Event], Any] | None = None,
        on_error: str = "raise",
    ) -> list | None:
        """Publish *event*.

        With *synchronous* the event is only dispatched locally, in this thread, and the
        list of handler results is returned (no replies are published).  Otherwise it
        is queued for the server and this returns at once; *on_reply* is called (on the
        dispatch thread) with every reply until ``reply_ttl`` expires.  ``on_error=
        "ignore"`` swallows errors such as content that cannot be serialised.
        """
        try:
            if synchronous and event.__class__ is Event:  # the local hot path
                self._prepare_event(event)
                return self._handle(event, synchronous=True)
            return self._publish(event, synchronous, on_reply)
        except Exception:
            if on_error == "ignore":
                log.debug("ignored error while publishing", exc_info=True)
                return None
            raise

    def _publish(self, event, synchronous, on_reply, inline_reply=False):
        if not isinstance(event, Event):
            if not isinstance(event, Mapping):
                raise TypeError(f"publish needs an Event, not {type(event).__name__}")
            event = Event.from_wire(event)
        self._prepare_event(event)
        if synchronous:
            return self._handle(event, synchronous=True)
        if not self._running:
            raise EventHubConnectionError(
                "cannot publish: the event hub is not connected; call connect() first"
            )
        item = self._frame(event, ("publish", f"event {event['id']} ({event['topic']})", None))
        if on_reply is not None:
            self._add_reply_callback(event["id"], on_reply, inline_reply)
        with self._out_cond:
            if len(self._outgoing) >= self._publish_queue_size:
                dropped = self._outgoing.popleft()
                self._counters["dropped"] += 1
                if self._counters["dropped"] in (1, 10, 100) or self._counters["dropped"] % 1000 == 0:
                    log.warning(
                        "outgoing event queue full (%d); dropped the oldest event (%d dropped so far)",
                        self._publish_queue_size, self._counters["dropped"],
                        extra={"dropped_frame_ack": dropped[1]},
                    )
            self._outgoing.append(item)
            self._counters["published"] += 1
            self._out_cond.notify()
        return None

    def publish_reply(self, source_event: Mapping, data: Any, source: Mapping | None = None) -> None:
        """Publish *data* as a reply to *source_event* (targeted at its publisher)."""
        origin = source_event.get("source") if isinstance(source_event, Mapping) else None
        origin_id = origin.get("id") if isinstance(origin, Mapping) else None
        if not origin_id:
            raise EventHubError(
                f"cannot reply to event {source_event.get('id')!r}: it has no source id to "
                "target the reply at"
            )
        reply = Event(REPLY_TOPIC, data=None)
        reply["data"] = data
        reply["target"] = f"id={origin_id}"
        reply["in_reply_to_event"] = source_event["id"]
        if source is not None:
            reply["source"] = dict(source)
        self.publish(reply)

    def publish_and_wait(self, event: Event | Mapping, timeout: float = 30.0) -> Event:
        """Publish *event* and return the first reply; raise :class:`ReplyTimeoutError`.

        The reply is taken straight off the socket, so this may be called from inside a
        handler without waiting for the dispatch thread it is running on.
        """
        arrived = threading.Event()
        replies: list[Event] = []

        def first_reply(reply: Event) -> None:
            if not replies:
                replies.append(reply)
                arrived.set()

        if not isinstance(event, Event):
            event = Event.from_wire(event)
        self._publish(event, False, first_reply, inline_reply=True)
        try:
            if not arrived.wait(timeout):
                raise ReplyTimeoutError(
                    f"no reply to event {event['id']} ({event['topic']}) within {timeout:g}s"
                )
            return replies[0]
        finally:
            with self._reply_lock:
                self._replies.pop(event["id"], None)

    def _add_reply_callback(self, event_id: str, callback, inline: bool) -> None:
        with self._reply_lock:
            self._replies[event_id] = _Reply(callback, time.monotonic() + self._reply_ttl, inline)
            while len(self._replies) > self._max_replies:
                self._replies.popitem(last=False)
                self._counters["replies_expired"] += 1

    # ================================================================== connection thread
    def _run_connection(self) -> None:
        backoff = Backoff(self._reconnect_base, self._reconnect_cap)
        first = True
        while not self._stop.is_set():
            connection = Connection(
                self.server_url, self._api_user, self._api_key, headers=self._headers,
                cookies=self._cookies, verify=self._verify, auth=self._auth,
                connect_timeout=self._connect_timeout,
            )
            self._connection = connection
            try:
                connection.open()
            except EventHubConnectionError as error:
                if first and isinstance(error, HandshakeRefused) and error.credentials_refused:
                    self._fatal = error
                ceiling = backoff.ceiling()
                delay = backoff.next_delay()
                self.connection_attempts.append(
                    Attempt(time.monotonic(), f"failed: {redact(str(error))}", delay, ceiling))
                log.warning("event server connection failed (%s); retrying in %.2fs",
                            redact(str(error)), delay)
                self._stop.wait(delay)
                continue
            except Exception as error:  # a bug or an exotic failure: log, keep going
                ceiling = backoff.ceiling()
                delay = backoff.next_delay()
                self.connection_attempts.append(
                    Attempt(time.monotonic(), f"failed: {redact(repr(error))}", delay, ceiling))
                log.exception("unexpected error while connecting to the event server")
                self._stop.wait(delay)
                continue
            if self._stop.is_set():
                connection.close()
                break
            first = False
            self.connection_attempts.append(Attempt(time.monotonic(), "connected"))
            opened = time.monotonic()
            reason = "closed"
            self._on_open(connection)
            try:
                self._read(connection)
            except ConnectionLost as error:
                reason = str(error)
            except Exception as error:  # never let the reader die silently
                reason = f"reader failed: {error!r}"
                log.exception("event hub reader failed; reconnecting")
            finally:
                connection.close()
                self._on_close(connection, reason)
            if time.monotonic() - opened >= HEALTHY_AFTER:
                backoff.reset()
            if self._stop.is_set():
                break
            self._counters["reconnects"] += 1
            ceiling = backoff.ceiling()
            delay = backoff.next_delay()
            self.connection_attempts.append(
                Attempt(time.monotonic(), f"lost: {redact(reason)}", delay, ceiling))
            log.warning("event server connection lost (%s); reconnecting in %.2fs",
                        redact(reason), delay)
            self._stop.wait(delay)

    def _on_open(self, connection: Connection) -> None:
        """Queue every subscription ahead of everything else, then let the writer go."""
        with self._lock:
            entries = [self._reply_subscriber, *self._subscribers]
            waiting = {"count": len(entries)}
            ready = self._ready_event
            ready.clear()

            def confirmed(args: list) -> None:
                waiting["count"] -= 1
                if waiting["count"] <= 0:
                    ready.set()

            frames = []
            for entry in entries:
                text, ack_id, _ = self._subscribe_frame(entry)
                frames.append((text, ack_id, ("subscribe", f"subscriber {entry.id}", confirmed)))
            with self._out_cond:
                self._control.clear()
                self._control.extend(frames)
                self._live = connection
                self._out_cond.notify_all()
            listeners = list(self._listeners)
        self._connected_event.set()
        log.info("connected to the event server at %s", self.server_url)
        for on_connected, _ in listeners:
            if on_connected is not None:
                _call_safely(on_connected)
        self._enqueue_local(CONNECTED_TOPIC)

    def _on_close(self, connection: Connection, reason: str) -> None:
        with self._out_cond:
            if self._live is connection:
                self._live = None
            self._control.clear()
        self._connected_event.clear()
        self._ready_event.clear()
        with self._ack_lock:
            lost = len(self._pending_acks)
            self._pending_acks.clear()
        self._counters["acks_lost"] += lost
        with self._lock:
            listeners = list(self._listeners)
        intentional = self._stop.is_set()
        if not intentional:
            log.warning("disconnected from the event server: %s", redact(reason))
        for _, on_disconnected in listeners:
            if on_disconnected is not None:
                _call_safely(on_disconnected, reason)
        self._enqueue_local(DISCONNECTED_TOPIC)

    def _enqueue_local(self, topic: str) -> None:
        event = Event(topic)
        self._prepare_event(event)
        self._incoming_put(event)

    # ------------------------------------------------------------------ reading
    def _read(self, connection: Connection) -> None:
        recv = connection.recv
        on_frame = self._on_frame
        while not self._stop.is_set():
            on_frame(connection, recv())

    def _on_frame(self, connection: Connection, text: str) -> None:
        if text.startswith("5:::"):  # the hot path: an event that wants no ack
            self._on_event_payload(text[4:])
            return
        try:
            packet = _packet.decode(text)
        except _packet.PacketError as error:
            self._malformed(error)
            return
        kind = packet.type
        if kind == _packet.PacketType.EVENT:
            self._on_event_packet(connection, packet)
        elif kind == _packet.PacketType.HEARTBEAT:
            connection.send("2::")
        elif kind == _packet.PacketType.ACK:
            self._on_ack(packet)
        elif kind == _packet.PacketType.DISCONNECT:
            raise ConnectionLost("the server closed the socket.io session")
        elif kind == _packet.PacketType.ERROR:
            log.error("event server reported an error: %s", redact(packet.data[:500]))
        else:
            log.debug("ignoring socket.io packet of type %s", kind.name)
        now = time.monotonic()
        if now >= self._next_housekeeping:
            self._next_housekeeping = now + _HOUSEKEEPING_INTERVAL
            self._expire(now)

    def _malformed(self, error: Exception) -> None:
        self._counters["malformed"] += 1
        log.warning("skipped a malformed frame from the event server: %s", redact(str(error)))

    def _on_event_packet(self, connection: Connection, packet: _packet.Packet) -> None:
        try:
            self._on_event_payload(packet.data)
        finally:
            if packet.ack_requested:
                connection.send(_packet.encode(_packet.ack(packet.id)))

    def _on_event_payload(self, data: str) -> None:
        try:
            name, args = _packet.parse_event_data(data)
            if name != EVENT_NAME:
                log.debug("ignoring socket.io event %r", name)
                return
            if len(args) != 1:
                raise ValueError(f"expected one event argument, got {len(args)}")
            event = Event.from_wire(args[0])
        except (ValueError, _packet.PacketError) as error:
            self._malformed(error)
            return
        self._counters["received"] += 1
        if event["topic"] == REPLY_TOPIC:
            reply_to = event.get("in_reply_to_event")
            entry = self._replies.get(reply_to) if isinstance(reply_to, str) else None
            if entry is not None:
                if entry.inline:
                    _call_safely(entry.callback, event)
                else:
                    self._incoming_put((entry.callback, event))
        if self._inline_dispatch:
            self._dispatch(event)
        else:
            self._incoming_put(event)

    def _on_ack(self, packet: _packet.Packet) -> None:
        try:
            ack_id, args = _packet.parse_ack(packet)
        except _packet.PacketError as error:
            self._malformed(error)
            return
        with self._ack_lock:
            entry = self._pending_acks.pop(int(ack_id), None)
        if entry is None:
            return
        info = entry[1]
        response = args[0] if args and isinstance(args[0], dict) else {}
        if response.get("success") is False:
            self._counters["server_refusals"] += 1
            log.error("event server refused %s of %s: %s", info[0], info[1],
                      redact(str(response.get("message"))))
        if info[2] is not None:
            _call_safely(info[2], args)

    def _expire(self, now: float) -> None:
        """Forget acknowledgements and reply callbacks that are past their time."""
        with self._ack_lock:
            while self._pending_acks:
                ack_id, (deadline, _) = next(iter(self._pending_acks.items()))
                if deadline > now:
                    break
                del self._pending_acks[ack_id]
                self._counters["acks_lost"] += 1
        with self._reply_lock:
            while self._replies:
                event_id, entry = next(iter(self._replies.items()))
                if entry.expires > now:
                    break
                del self._replies[event_id]
                self._counters["replies_expired"] += 1

    # ================================================================== writer thread
    def _run_writer(self) -> None:
        cond = self._out_cond
        while True:
            with cond:
                while not self._stop.is_set() and (
                    self._live is None or not (self._control or self._outgoing)
                ):
                    cond.wait()
                if self._stop.is_set():
                    return
                connection = self._live
                batch = []
                while self._control and len(batch) < WRITE_BATCH:
                    batch.append((True, self._control.popleft()))
                while self._outgoing and len(batch) < WRITE_BATCH:
                    batch.append((False, self._outgoing.popleft()))
            self._write_batch(connection, batch)
            with cond:
                cond.notify_all()  # wake a disconnect() draining the queue

    def _write_batch(self, connection: Connection, batch: list) -> None:
        deadline = time.monotonic() + ACK_TTL
        for index, (_control, (text, ack_id, info)) in enumerate(batch):
            if ack_id is not None and info is not None:
                with self._ack_lock:
                    self._pending_acks[ack_id] = (deadline, info)
                    if len(self._pending_acks) > MAX_PENDING_ACKS:
                        self._pending_acks.popitem(last=False)
                        self._counters["acks_lost"] += 1
            try:
                connection.send(text)
            except ConnectionLost as error:
                with self._ack_lock:
                    self._pending_acks.pop(ack_id, None)
                log.info("sending to the event server failed (%s); will resend after reconnect",
                         error)
                connection.close()  # the reader notices and reconnects
                # Published events go back to the front, in order; subscriptions are
                # re-sent in full on reconnect, so control frames are not kept.
                unsent = [item for control, item in batch[index:] if not control]
                with self._out_cond:
                    if self._live is connection:
                        self._live = None
                    self._outgoing.extendleft(reversed(unsent))
                    while len(self._outgoing) > self._publish_queue_size:
                        self._outgoing.popleft()
                        self._counters["dropped"] += 1
                return

    # ================================================================== dispatch thread
    def _incoming_put(self, item: Any) -> None:
        if self._inline_dispatch:
            self._dispatch_item(item)
            return
        cond = self._in_cond
        with cond:
            # Back-pressure instead of unbounded memory: the reader waits (and TCP
            # pushes back on the server) while the dispatch thread catches up.
            while len(self._incoming) >= self._incoming_queue_size and not self._stop.is_set():
                cond.wait(0.5)
            self._incoming.append(item)
            if len(self._incoming) == 1:
                cond.notify_all()

    def _run_dispatch(self) -> None:
        cond = self._in_cond
        while True:
            with cond:
                while not self._incoming:
                    cond.wait()
                batch = list(self._incoming)
                self._incoming.clear()
                cond.notify_all()
            for item in batch:
                if item is _Stop:
                    return
                self._dispatch_item(item)

    def _dispatch_item(self, item: Any) -> None:
        if item.__class__ is tuple:  # (reply callback, reply event)
            _call_safely(item[0], item[1])
            return
        try:
            self._dispatch(item)
        except Exception:  # the dispatch thread must survive anything
            log.exception("event dispatch failed for %r", item)

    def _dispatch(self, event: Event) -> None:
        hook = self._dispatch_hook
        if hook is None:
            self._handle(event)
            return
        matched = self._matching(event)
        try:
            hook(event, matched)
        except Exception:
            log.exception("dispatch hook failed for event %s (%s)", event.get("id"),
                          event.get("topic"))

    def _candidates(self, topic: Any) -> tuple:
        """Subscribers that may match events of *topic*, each with what is left to check.

        Built once per topic (and again after every subscribe/unsubscribe): each
        subscription is partially evaluated with the topic known, so a subscription to
        exactly this topic needs no check per event (``None``), one that can never
        match is left out, and the rest keep only their non-topic conditions.
        """
        if topic.__class__ is not str:
            with self._lock:
                return tuple((entry, entry.expression.match) for entry in self._subscribers)
        cached = self._topic_cache.get(topic)
        if cached is not None:
            return cached
        with self._lock:
            candidates = []
            for entry in self._subscribers:
                topics = entry.expression.topics
                if topics is not None and topic not in topics:
                    continue
                remainder = entry.expression.bind("topic", topic)
                if remainder is False:
                    continue
                candidates.append((entry, None if remainder is True else remainder))
            if len(self._topic_cache) >= _TOPIC_CACHE_LIMIT:
                self._topic_cache = {}
            self._topic_cache[topic] = cached = tuple(candidates)
        return cached

    def _matching(self, event: Event) -> list[Subscriber]:
        candidates = self._candidates(event.get("topic"))
        if not candidates:
            return []
        target = event.get("target")
        if target:
            try:
                target_match = _expression.parse(target).match
            except _expression.ParseError as error:
                log.error("dropping event %s: its target cannot be parsed: %s",
                          event.get("id"), error)
                return []
            return [entry for entry, match in candidates
                    if (match is None or match(event)) and target_match(entry.metadata)]
        return [entry for entry, match in candidates if match is None or match(event)]

    def _handle(self, event: Event, synchronous: bool = False) -> list:
        """Call matching callbacks in priority order; return their results."""
        results = []
        for entry in self._matching(event):
            try:
                result = entry.callback(event)
            except Exception:
                self._counters["handler_errors"] += 1
                log.exception("subscriber %s failed on event %s (%s)", entry.id,
                              event.get("id"), event.get("topic"))
            else:
                results.append(result)
                if result is not None and not synchronous:
                    try:
                        self.publish_reply(event, result, source=entry.metadata)
                    except Exception:
                        log.exception("could not publish the reply of subscriber %s to event %s",
                                      entry.id, event.get("id"))
            if event._stopped:  # is_stopped() without a method call on the hot path
                break
        return results


def _ignore(event: Event) -> None:
    """Callback of the hub's own reply subscriber: replies are routed by event id."""


def _call_safely(callback: Callable, *args: Any) -> None:
    try:
        callback(*args)
    except Exception:
        log.exception("callback %r failed", callback)
