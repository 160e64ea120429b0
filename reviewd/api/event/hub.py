"""The event hub: subscriptions, local dispatch, replies, and a connection that never quits.

Three threads, each with one job, so that no party can stall another:

* the **connection thread** handshakes, reads frames, answers heartbeats and, when the
  socket dies (closed, reset, or silent past the heartbeat timeout), reconnects forever
  with capped exponential backoff and full jitter, re-subscribing everything each time;
* the **writer thread** drains the outgoing queues to the socket, so a publisher only
  appends to a bounded queue and never waits for the network (when the queue is full,
  the oldest event is dropped and counted);
* the **dispatch thread**, when there is one, runs subscriber callbacks (or hands
  events to the daemon's dispatch hook), so a slow handler delays other handlers, never
  the socket.

Names and behaviour follow ``ftrack_api.event.hub.EventHub`` so that plugins written for
ftrack run unchanged; the differences are the robustness guarantees above, reply
callbacks that expire, and the public hooks the daemon builds on.

Where the callbacks run is the hub's **dispatch mode**, chosen when it is built:

* ``"wait"`` (the default, ftrack_api's model): received events queue until someone
  calls :meth:`EventHub.wait`, which runs the callbacks in the calling thread; a
  published event is sent in the publisher's thread when nothing is queued ahead of it.
* ``"thread"`` (``dispatch_thread=True``, and whenever a dispatch hook is installed, as
  the daemon does): the dispatch thread runs them as events arrive, and publishing only
  queues (the writer thread sends), so no caller ever waits for the network.
* ``"inline"`` (``inline_dispatch=True``): on the socket reader thread.

:class:`EventHub` is the façade; each job behind it is a module of its own:
``subscriptions`` (the registry and its topic pre-filter), ``dispatch`` (callbacks in
priority order, replies, the dispatch hook), ``inbox`` (received events and the
dispatch thread), ``outbox`` and ``writer`` (the bounded send queue and the thread
draining it), ``envelope`` (stamping and framing outgoing events), ``acks`` and
``replies`` (what the server and peers still owe, bounded and expiring), ``frames``
(what each received frame means) and ``supervision`` (the reconnect-forever loop).
What stays here is the public API and what a new or lost connection means for all of
them together.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from reviewd.api.event import packet as _packet
from reviewd.api.event.acks import ACK_TTL as ACK_TTL
from reviewd.api.event.acks import MAX_PENDING_ACKS as MAX_PENDING_ACKS
from reviewd.api.event.acks import PendingAcks
from reviewd.api.event.backoff import Backoff as Backoff
from reviewd.api.event.base import Event
from reviewd.api.event.connection import Connection, ConnectionLost
from reviewd.api.event.connection import HandshakeRefused as HandshakeRefused
from reviewd.api.event.dispatch import Dispatcher
from reviewd.api.event.envelope import CONNECTED_TOPIC, DISCONNECTED_TOPIC, REPLY_TOPIC, Envelope
from reviewd.api.event.envelope import EVENT_NAME as EVENT_NAME
from reviewd.api.event.envelope import SUBSCRIBE_TOPIC as SUBSCRIBE_TOPIC
from reviewd.api.event.envelope import UNSUBSCRIBE_TOPIC as UNSUBSCRIBE_TOPIC
from reviewd.api.event.frames import FrameHandler
from reviewd.api.event.inbox import EMPTY, STOP, Inbox
from reviewd.api.event.outbox import WRITE_BATCH as WRITE_BATCH
from reviewd.api.event.outbox import Outbox
from reviewd.api.event.replies import ReplyCallbacks
from reviewd.api.event.subscriber import Subscriber
from reviewd.api.event.subscriptions import Subscriptions
from reviewd.api.event.supervision import HEALTHY_AFTER as HEALTHY_AFTER
from reviewd.api.event.supervision import Attempt, ConnectionListeners, Supervisor
from reviewd.api.event.writer import Writer
from reviewd.api.exception import (
    EventHubConnectionError,
    EventHubError,
    NotFoundError,
    ReplyTimeoutError,
    redact,
    register_secret,
)
from reviewd.api.exception import NotUniqueError as NotUniqueError

__all__ = ["EventHub", "Attempt", "SocketIoSession"]
# The names imported ``as`` themselves above (constants, Backoff, HandshakeRefused,
# NotUniqueError) were defined or imported here before the hub was split into modules;
# they stay importable from here, as ``ftrack_api.event.hub`` resolves to this module.

log = logging.getLogger("reviewd.api.event.hub")


class SocketIoSession(NamedTuple):
    """The server's answer to the socket.io handshake (ftrack_api's names)."""

    id: str
    heartbeatTimeout: float  # noqa: N815 - ftrack_api's field name
    supportedTransports: list[str]  # noqa: N815 - ftrack_api's field name


class _SendQueue:
    """ftrack_api's ``_event_send_queue``: published events waiting for a connection.

    A view of the hub's outbox (reviewd keeps one queue); only ``qsize``/``empty``.
    """

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox

    def qsize(self) -> int:
        return self._outbox.waiting_events

    def empty(self) -> bool:
        return self.qsize() == 0


class EventHub:
    """Connect to an ftrack event server, subscribe callbacks, publish events.

    ``connect()`` must be called before events flow.  Callbacks run inside
    :meth:`wait`, in the calling thread, as in ftrack_api; ``dispatch_thread=True`` (or a
    dispatch hook) runs them on the hub's dispatch thread as events arrive instead, and
    makes ``publish`` never touch the network (``inline_dispatch=True`` runs them on the
    socket reader thread, for the lowest latency when every handler is trivial).
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
        dispatch_thread: bool = False,
    ) -> None:
        if not server_url:
            raise TypeError(
                "EventHub needs server_url (the ftrack server, e.g. https://x.ftrackapp.com)"
            )
        parts = urlsplit(server_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"server_url must look like https://host[:port], got {server_url!r}")
        register_secret(api_key)
        self._id: str = uuid.uuid4().hex
        self.server_url = server_url.rstrip("/")
        self._api_user = api_user
        self._api_key = api_key
        self._headers = dict(headers or {})
        self._cookies = dict(cookies or {})
        self._verify = verify
        self._auth = auth
        self._connect_timeout = connect_timeout
        self._inline_dispatch = inline_dispatch
        self._dispatch_thread = dispatch_thread

        # Lifecycle.
        self._running = False
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()
        self._connected_event = threading.Event()
        self._ready_event = threading.Event()
        self._threads: list[threading.Thread] = []
        self._previous_threads: list[threading.Thread] = []
        self._ever_started = False
        # ftrack_api's flags, with its meaning: connect() or init_connection() was
        # called (publishes queue until connected) and not undone by disconnect().
        self._connection_initialised = False
        self._intentional_disconnect = False
        #: The open connection, or None (ftrack_api's name).
        self._connection: Any = None
        # Whether the hub's own reply subscriber is registered (from connect() until
        # disconnect() unsubscribes everything), as ftrack_api lists it.
        self._reply_registered = False

        # The parts, each with one job.
        self._subscriptions = Subscriptions(reserved_id=self.id)
        self._lock = self._subscriptions.lock  # also guards _running
        self._reply_subscriber = Subscriber(
            f"topic={REPLY_TOPIC}", _ignore, {"id": self.id}, priority=100
        )
        self._envelope = Envelope(self.id, api_user)
        self._replies = ReplyCallbacks(reply_ttl, max_reply_callbacks)
        self._acks = PendingAcks()
        self._outbox = Outbox(publish_queue_size)
        self._writer = Writer(self._outbox, self._acks, self._stop)
        # publish_reply is looked up per reply, so that an override is honoured.
        self._dispatcher = Dispatcher(
            self._subscriptions,
            lambda event, data, source=None: self.publish_reply(event, data, source=source),
        )
        self._inbox = Inbox(
            self._dispatcher.dispatch, incoming_queue_size, self._stop, inline=inline_dispatch
        )
        self._frames = FrameHandler(
            self._dispatcher.dispatch if inline_dispatch else self._inbox.put,
            self._inbox,
            self._acks,
            self._replies,
        )
        self._listeners = ConnectionListeners()
        self._supervisor = Supervisor(
            self._new_connection,
            self._on_open,
            self._read,
            self._on_close,
            self._stop,
            reconnect_base,
            reconnect_cap,
        )
        #: The latest connection attempts (:class:`Attempt`), for diagnosis and tests.
        self.connection_attempts = self._supervisor.attempts
        # ftrack_api's names for the queues: received events waiting for wait(), and
        # published events waiting for a connection.
        self._event_queue = self._inbox
        self._event_send_queue = _SendQueue(self._outbox)
        # Bound once: the local dispatch hot path (publish(synchronous=True)).
        self._prepare_event = self._envelope.prepare
        self._handle = self._dispatcher.handle

    # ================================================================== public state
    @property
    def id(self) -> str:
        """This hub's id: the ``source.id`` of what it publishes, the target of replies."""
        return self._id

    @id.setter
    def id(self, value: str) -> None:
        self._id = value
        envelope = self.__dict__.get("_envelope")
        if envelope is not None:
            envelope._hub_id = value  # events published from now on carry the new id

    def __repr__(self) -> str:
        state = "connected" if self.connected else ("connecting" if self._running else "idle")
        return f"<EventHub {self.server_url} user={self._api_user!r} id={self.id} {state}>"

    @property
    def connected(self) -> bool:
        """Whether a socket to the event server is open right now."""
        return self._connected_event.is_set()

    @property
    def refused_subscriptions(self) -> dict[str, str]:
        """Subscriber id -> reason, for subscriptions the server refused (for example
        past its per-connection limit): events they match are not being received."""
        return dict(self._acks.refused_subscribers)

    @property
    def last_heard(self) -> float | None:
        """Wall-clock time (``time.time()``) of the last frame heard from the server, on
        this or an earlier connection: where a gap in the event stream started."""
        connection = self._supervisor.connection
        heard = connection.last_heard if connection is not None else None
        return heard or self._supervisor.last_heard

    @property
    def subscribed(self) -> bool:
        """Whether the server has confirmed every subscription sent on this connection
        (readiness: events matching them will now be delivered)."""
        return self._connected_event.is_set() and self._ready_event.is_set()

    @property
    def subscribers(self) -> list[Subscriber]:
        """The user's subscribers in dispatch order (priority, then subscription order)."""
        return self._subscriptions.snapshot()

    @property
    def _subscribers(self) -> list[Subscriber]:
        """ftrack_api's view of the subscribers: the hub's own reply subscriber first
        (from connect() until disconnect() unsubscribes everything), then
        :attr:`subscribers` (a copy; changing it changes nothing)."""
        own = [self._reply_subscriber] if self._reply_registered else []
        return [*own, *self._subscriptions.snapshot()]

    @property
    def running(self) -> bool:
        """Whether the hub is connected or trying to connect (connect() was called and
        disconnect() was not)."""
        return self._running

    @property
    def dispatch_mode(self) -> str:
        """Where callbacks run: ``"wait"`` (inside :meth:`wait`, ftrack_api's model),
        ``"thread"`` (the hub's dispatch thread) or ``"inline"`` (the reader thread)."""
        if self._inline_dispatch:
            return "inline"
        if self._dispatch_thread or self._dispatcher.hook is not None:
            return "thread"
        return "wait"

    def get_server_url(self) -> str:
        """``scheme://host[:port]`` of the server this hub talks to."""
        parts = urlsplit(self.server_url)
        return f"{parts.scheme}://{parts.netloc}"

    def get_network_location(self) -> str:
        """``host[:port]`` of the server."""
        return urlsplit(self.server_url).netloc

    @property
    def secure(self) -> bool:
        """Whether the connection uses TLS (an ``https`` server URL)."""
        return urlsplit(self.server_url).scheme == "https"

    def reconnect(self, attempts: int = 10, delay: float = 5.0) -> None:
        """Drop the connection (keeping the subscribers) and connect again.

        Tries *attempts* times, *delay* seconds apart; raises
        :class:`EventHubConnectionError` when none succeeds.  Works when not
        connected too.  Events published meanwhile are sent once connected.
        """
        if self._running:
            self.disconnect(unsubscribe=False, reconnect=True)
        last_error: Exception | None = None
        for attempt in range(max(1, attempts)):
            if attempt:
                time.sleep(delay)  # the caller asked for this spacing between attempts
            try:
                self._connect(True, max(delay, self._connect_timeout), once=True)
                return
            except EventHubConnectionError as error:
                last_error = error
        raise EventHubConnectionError(
            redact(
                f"Failed to reconnect to event server {self.get_server_url()} after "
                f"{attempts} attempts: {last_error}"
            )
        )

    def get_subscriber_by_identifier(self, identifier: str) -> Subscriber | None:
        return self._subscriptions.get(identifier)

    def stats(self) -> dict[str, int]:
        """Counters and queue sizes, for metrics and health checks."""
        outgoing = len(self._outbox)
        return {
            "published": self._outbox.published,
            "dropped": self._outbox.dropped,
            "received": self._frames.received,
            "malformed": self._frames.malformed,
            "handler_errors": self._dispatcher.handler_errors,
            "reconnects": self._supervisor.reconnects,
            "acks_lost": self._acks.lost,
            "replies_expired": self._replies.expired,
            "server_refusals": self._acks.refusals,
            "outgoing_queue": outgoing,
            "incoming_queue": len(self._inbox),
            "pending_acks": len(self._acks),
            "reply_callbacks": len(self._replies),
            "subscribers": len(self._subscriptions),
        }

    # ================================================================== lifecycle
    def connect(self, wait: bool = True, timeout: float | None = None) -> None:
        """Start connecting; with *wait*, return once connected and subscribed.

        With ``wait=False`` this returns at once: the hub keeps trying in the background
        forever, and publishes queue until it gets through.  With ``wait=True`` it
        raises :class:`EventHubConnectionError` (and stops trying) when the connection
        attempt fails, as ftrack_api's ``connect()`` does; given a *timeout*, it keeps
        trying for that many seconds instead, unless the server refuses the credentials
        or the websocket transport.  Raises ``EventHubConnectionError("Already
        connected.")`` when connected, as ftrack_api does; while the hub is still trying
        in the background, ``connect()`` waits for its next attempt.
        """
        self._connect(wait, timeout, once=timeout is None)

    def _connect(self, wait: bool, timeout: float | None, once: bool) -> None:
        """:meth:`connect`; *once*: give up after the first failed attempt."""
        with self._lock:
            if self.connected:
                raise EventHubConnectionError("Already connected.")
            self._connection_initialised = True
            self._intentional_disconnect = False
            if self._running:
                if not wait:
                    return
            else:
                self._start()
        if not wait:
            return
        deadline = time.monotonic() + (30.0 if timeout is None else timeout)
        failed_before = self._supervisor.failed_attempts
        while not self._connected_event.wait(0.05):
            fatal = self._supervisor.fatal
            gave_up = once and self._supervisor.failed_attempts > failed_before
            if fatal is not None or gave_up or time.monotonic() >= deadline:
                # As in ftrack_api, a failed connect leaves the hub initialised: what is
                # published meanwhile is sent by the next successful connect().
                if self._running:
                    self.disconnect(unsubscribe=False, reconnect=True)
                if fatal is not None:
                    raise EventHubConnectionError(str(fatal)) from None
                last = self.connection_attempts[-1].outcome if self.connection_attempts else "none"
                within = "" if gave_up else f" within {30.0 if timeout is None else timeout:g}s"
                raise EventHubConnectionError(
                    redact(
                        f"could not connect to the event server at {self.server_url}{within} "
                        f"(last attempt: {last})"
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
        self._reply_registered = True
        self._supervisor.fatal = None
        # A previous run's "disconnected" is about a connection that is gone: it must
        # not end the first wait() of this one.
        self._inbox.clear(stale=_is_disconnected_event)
        self._stop.clear()
        self._stopped.clear()
        self._threads = [
            threading.Thread(
                target=self._supervisor.run, name=f"reviewd-hub-conn-{self.id[:8]}", daemon=True
            ),
            threading.Thread(
                target=self._writer.run, name=f"reviewd-hub-write-{self.id[:8]}", daemon=True
            ),
        ]
        for thread in self._threads:
            thread.start()
        if self.dispatch_mode == "thread":
            self._start_dispatch_thread()

    def _start_dispatch_thread(self) -> None:
        thread = threading.Thread(
            target=self._inbox.run, name=f"reviewd-hub-dispatch-{self.id[:8]}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def init_connection(self) -> None:
        """Mark the connection as on its way (ftrack_api): from now on events published
        before :meth:`connect` are queued and sent once connected, instead of raising."""
        self._connection_initialised = True

    def disconnect(
        self, unsubscribe: bool = True, reconnect: bool = False, timeout: float = 5.0
    ) -> None:
        """Stop: optionally unsubscribe everything, close, join the threads.

        As in ftrack_api: *unsubscribe* (the default) tells the server and forgets every
        subscriber locally, so a later :meth:`connect` starts with none (``False`` keeps
        them, to be re-subscribed by the next connect); *reconnect* keeps the hub
        initialised, so events published until the next :meth:`connect` are queued
        rather than refused; and a hub that is neither connected nor trying to connect
        raises ``EventHubConnectionError("Not currently connected.")``.  Events still
        queued for sending get up to *timeout* seconds to go out first.
        """
        with self._lock:
            if not self._running:
                raise EventHubConnectionError("Not currently connected.")
            self._running = False
            self._intentional_disconnect = True
            if not reconnect:
                self._connection_initialised = False
            subscriber_ids = (
                [s.id for s in self._subscriptions.snapshot() if s.id is not None]
                if unsubscribe
                else []
            )
        deadline = time.monotonic() + timeout
        if self.connected:
            self._outbox.queue_control(
                [
                    self._envelope.unsubscribe_frame(subscriber_id)
                    for subscriber_id in subscriber_ids
                ]
            )
            self._outbox.drain(deadline)
        self._stop.set()
        self._outbox.wake()
        connection = self._supervisor.connection
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
        # events read before the socket closed are still dispatched (to the daemon's
        # hook with the subscribers they matched).  In the wait() mode they stay queued.
        if dispatch_threads:
            self._inbox.close()
        for thread in dispatch_threads:
            if thread is not current:
                thread.join(max(0.1, deadline - time.monotonic()))
        self._previous_threads = [t for t in self._threads if t.is_alive() and t is not current]
        self._threads = []
        if unsubscribe:
            self._subscriptions.clear()
            self._reply_registered = False
        self._stopped.set()

    def wait(self, duration: float | None = None) -> None:
        """Handle events as they arrive, for *duration* seconds (None: for ever) or
        until the hub disconnects.

        In the default ``"wait"`` dispatch mode this is where callbacks (and reply
        callbacks) run, in the calling thread, as in ftrack_api; it returns early on an
        ``ftrack.meta.disconnected`` event, except the ones the hub publishes while it
        reconnects, by itself or through :meth:`reconnect` (``data.reconnecting``),
        through which it keeps waiting.
        In the ``"thread"`` and ``"inline"`` modes the callbacks run elsewhere and this
        only blocks, keeping an ftrack-style ``session.event_hub.wait()`` script alive.
        """
        if not self._connection_initialised and not self._running:
            raise EventHubConnectionError(
                "the event hub is not connected, so no events can arrive; call "
                "connect() first (or publish with synchronous=True for local events)"
            )
        if duration is not None and duration <= 0:
            return
        if self.dispatch_mode != "wait":
            self._stopped.wait(duration)
            return
        ends = None if duration is None else time.monotonic() + duration
        while True:
            timeout = 0.1 if ends is None else min(0.1, ends - time.monotonic())
            if timeout <= 0:
                return
            item = self._inbox.take(timeout)
            if item is EMPTY:
                continue
            if item is STOP:
                return
            self._inbox.dispatch_item(item)
            if (
                item.__class__ is not tuple
                and item.get("topic") == DISCONNECTED_TOPIC
                and not (item.get("data") or {}).get("reconnecting")
            ):
                return

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
        return self._listeners.add(on_connected, on_disconnected)

    def set_dispatch_hook(self, fn: Callable[[Event, list[Subscriber]], Any] | None) -> None:
        """Receive every event *instead of* the hub calling the callbacks:
        ``fn(event, subscribers)`` with the subscribers it matched in priority order
        (possibly none, e.g. ``ftrack.meta.connected`` with no listener), on the
        dispatch thread (a hook puts the hub in the ``"thread"`` dispatch mode).  The
        daemon journals the event and later calls :meth:`deliver` for each subscriber.
        ``None`` restores calling the callbacks.  Synchronous (local) publishing is not
        affected.
        """
        with self._lock:
            self._dispatcher.hook = fn
            has_thread = len(self._threads) > 2
            if fn is not None and self._running and not has_thread and not self._inline_dispatch:
                self._start_dispatch_thread()

    def set_incoming_queue_size(self, size: int) -> None:
        """Bound the received events waiting for the dispatch thread to *size* (the
        constructor's ``incoming_queue_size``); beyond it the reader waits and TCP
        pushes back on the server.  The daemon keeps it small: its intake holds
        events in its own byte-bounded spool, and decoded events cost memory here."""
        self._inbox.set_capacity(size)

    def deliver(self, event: Event, subscriber: Subscriber) -> Any:
        """Run *subscriber*'s callback for *event* and publish a non-None result as a
        reply.  Exceptions propagate to the caller (the daemon counts and retries)."""
        return self._dispatcher.deliver(event, subscriber)

    # ================================================================== subscriptions
    def subscribe(
        self,
        subscription: str,
        callback: Callable[[Event], Any],
        subscriber: Mapping[str, Any] | None = None,
        priority: int = 100,
    ) -> str:
        """Subscribe *callback* to events matching *subscription*; return the subscriber id.

        Raises :class:`~reviewd.api.event.expression.ParseError` for a malformed subscription
        and :class:`~reviewd.api.exception.NotUniqueError` (an :class:`EventHubError`) if the
        subscriber id is already in use.
        """
        with self._lock:
            entry = self._subscriptions.add(subscription, callback, subscriber, priority)
            self._outbox.send_control(self._envelope.subscribe_frame(entry))
        assert entry.id is not None, "the registry gives every subscriber an id"
        return entry.id

    def unsubscribe(self, subscriber_identifier: str) -> None:
        """Remove a subscriber; raise :class:`NotFoundError` if there is none by that id."""
        with self._lock:
            self._subscriptions.remove(subscriber_identifier)
            self._outbox.send_control(self._envelope.unsubscribe_frame(subscriber_identifier))

    @contextmanager
    def subscription(
        self,
        subscription: str,
        callback: Callable[[Event], Any],
        subscriber: Mapping[str, Any] | None = None,
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

    # ================================================================== publishing
    def publish(
        self,
        event: Event | Mapping[str, Any],
        synchronous: bool = False,
        on_reply: Callable[[Event], Any] | None = None,
        on_error: str = "raise",
    ) -> list[Any] | None:
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

    def _publish(
        self, event: Any, synchronous: Any, on_reply: Any, inline_reply: Any = False
    ) -> list[Any] | None:
        if not isinstance(event, Event):
            if not isinstance(event, Mapping):
                raise TypeError(f"publish needs an Event, not {type(event).__name__}")
            event = Event.from_wire(event)
        self._prepare_event(event)
        if synchronous:
            return self._handle(event, synchronous=True)
        if not self._running and not self._connection_initialised:
            raise EventHubConnectionError(
                "Cannot publish event asynchronously as not connected to server "
                "(call connect() first)."
            )
        item = self._envelope.frame(
            event, ("publish", f"event {event['id']} ({event['topic']})", None)
        )
        if on_reply is not None:
            self._replies.add(event["id"], on_reply, inline_reply)
        if self._connection is not None and self.dispatch_mode == "wait":
            try:
                if self._outbox.send_now(item, self._send_in_caller_thread):
                    return None
            except ConnectionLost:
                pass  # queued below: sent after the reconnect
            except Exception:
                # As ftrack_api: failing to send must not make the publisher fail.
                log.exception("Error sending event %s.", event)
                return None
        self._outbox.publish(item)
        return None

    def _send_in_caller_thread(self, item: tuple[str, int | None, Any]) -> None:
        """Send one framed event on :attr:`_connection` now (the ``"wait"`` mode)."""
        text, ack_id, info = item
        if ack_id is not None and info is not None:
            self._acks.expect(ack_id, time.monotonic() + ACK_TTL, info)
        connection = self._connection
        try:
            connection.send(text)
        except ConnectionLost as error:
            self._acks.forget(ack_id)
            if isinstance(connection, Connection):
                connection.close(str(error))  # the reader notices and reconnects
            raise
        except BaseException:
            self._acks.forget(ack_id)
            raise

    def publish_reply(
        self, source_event: Mapping[str, Any], data: Any, source: Mapping[str, Any] | None = None
    ) -> None:
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
        self._prepare_reply_event(reply, source_event, source)
        self.publish(reply)

    # ftrack_api's helper names; plugins and tests written for it call them.
    def _prepare_reply_event(
        self, reply: Event, source_event: Mapping[str, Any], source: Mapping[str, Any] | None = None
    ) -> None:
        """Target *reply* at *source_event*'s publisher and mark what it answers."""
        reply["target"] = f"id={source_event['source']['id']}"
        reply["in_reply_to_event"] = source_event["id"]
        if source is not None:
            reply["source"] = dict(source)

    @staticmethod
    def _encode(data: Any) -> str:
        """JSON for a packet payload, events in wire form (``inReplyToEvent``)."""
        import json

        def wire(value: Any) -> Any:
            # Events are dicts, which json would write as they are: convert first.
            if isinstance(value, Event):
                return wire(value.to_wire())
            if isinstance(value, dict):
                return {key: wire(item) for key, item in value.items()}
            if isinstance(value, (list, tuple)):
                return [wire(item) for item in value]
            return value

        return json.dumps(wire(data))

    @staticmethod
    def _decode(text: str) -> Any:
        """Parsed packet payload with ``inReplyToEvent`` spelled ``in_reply_to_event``."""
        import json

        def local(mapping: dict[str, Any]) -> dict[str, Any]:
            if "inReplyToEvent" in mapping:
                mapping["in_reply_to_event"] = mapping.pop("inReplyToEvent")
            return mapping

        return json.loads(text, object_hook=local)

    def publish_and_wait(self, event: Event | Mapping[str, Any], timeout: float = 30.0) -> Event:
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
            self._replies.discard(event["id"])

    # ================================================================== each connection
    def _get_socket_io_session(self) -> SocketIoSession:
        """Ask the server for a socket.io session (``GET /socket.io/1/``), ftrack_api's
        name; every connection attempt's handshake goes through here."""
        handshake = self._new_connection(handshake=None).request_handshake()
        return SocketIoSession(
            handshake.session_id, handshake.heartbeat_timeout, list(handshake.transports)
        )

    def _handshake(self) -> _packet.Handshake:
        session = self._get_socket_io_session()  # looked up per call: may be replaced
        # ftrack_api's tuple has no close timeout; the client never uses it.
        return _packet.Handshake(
            session.id,
            float(session.heartbeatTimeout or 0),
            0.0,
            tuple(session.supportedTransports),
        )

    def _new_connection(self, handshake: Any = True) -> Connection:
        return Connection(
            self.server_url,
            self._api_user,
            self._api_key,
            headers=self._headers,
            cookies=self._cookies,
            verify=self._verify,
            auth=self._auth,
            connect_timeout=self._connect_timeout,
            handshake=self._handshake if handshake is True else handshake,
        )

    def _read(self, connection: Connection) -> None:
        self._frames.read(connection, self._stop.is_set)

    def _on_open(self, connection: Connection) -> None:
        """Queue every subscription ahead of everything else, then let the writer go."""
        with self._lock:
            entries = [self._reply_subscriber, *self._subscriptions.snapshot()]
            waiting = {"count": len(entries)}
            ready = self._ready_event
            ready.clear()

            def confirmed(args: list[Any]) -> None:
                waiting["count"] -= 1
                if waiting["count"] <= 0:
                    ready.set()

            frames = []
            for entry in entries:
                text, ack_id, _ = self._envelope.subscribe_frame(entry)
                frames.append((text, ack_id, ("subscribe", f"subscriber {entry.id}", confirmed)))
            self._connection = connection
            self._outbox.go_live(connection, frames)
        self._connected_event.set()
        log.info("connected to the event server at %s", self.server_url)
        self._listeners.connected()
        self._enqueue_local(CONNECTED_TOPIC)

    def _on_close(self, connection: Connection, reason: str) -> None:
        self._outbox.go_offline(connection)
        if self._connection is connection:
            self._connection = None
        self._connected_event.clear()
        self._ready_event.clear()
        self._acks.clear()
        intentional = self._stop.is_set()
        # Final only when disconnect() ended it for good; a loss the hub recovers from
        # by itself, or disconnect(reconnect=True), is followed by a new connection.
        final = intentional and not self._connection_initialised
        if not intentional:
            log.warning("disconnected from the event server: %s", redact(reason))
        self._listeners.disconnected(reason)
        # A disconnection that is not final says so: wait() keeps waiting through it.
        self._enqueue_local(DISCONNECTED_TOPIC, None if final else {"reconnecting": True})

    def _enqueue_local(self, topic: str, data: dict[str, Any] | None = None) -> None:
        self._inbox.put(self._envelope.meta_event(topic, data))


def _is_disconnected_event(item: Any) -> bool:
    return item.__class__ is not tuple and item.get("topic") == DISCONNECTED_TOPIC


def _ignore(event: Event) -> None:
    """Callback of the hub's own reply subscriber: replies are routed by event id."""
