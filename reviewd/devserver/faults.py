"""Fault switches for the embedded event server.

reviewd's promise to "never give up on the server" is only worth what the faults it
has been tested against are worth.  These switches break a *running* event server on
purpose, from test code on any thread::

    server.faults.drop_all()                 # cut every WebSocket (no close frame)
    server.faults.refuse_handshakes(3.0)     # event server "down" for 3 s, same port
    server.faults.pause_heartbeats()         # socket stays open but goes quiet
    server.faults.ignore_heartbeats()        # client's heartbeats no longer count
    server.faults.delay_acks(2.0)            # acknowledgements arrive 2 s late
    server.faults.blackhole_acks()           # acknowledgements never arrive
    server.faults.send_malformed()           # one garbage frame to every client
    server.faults.reset()                    # back to normal

Switch state lives behind a lock; actions that touch sockets run on the server's event
loop and the calling thread waits for them, so a test can assert right afterwards.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - import cycle only for type checkers
    from reviewd.devserver.events import EventServer

#: What :meth:`Faults.send_malformed` sends when not told otherwise: an event packet
#: whose JSON is cut off, the kind of frame a buggy proxy produces.
DEFAULT_MALFORMED_FRAME = '5:::{"name": "ftrack.event", "args": [{"topic": '


class Faults:
    """Thread-safe fault switches of one :class:`~reviewd.devserver.events.EventServer`."""

    def __init__(self, server: EventServer) -> None:
        self._server = server
        self._lock = threading.Lock()
        self._refuse_until = 0.0
        self._heartbeats_paused = False
        self._ignoring_heartbeats = False
        self._ack_mode = "normal"
        self._ack_delay = 0.0

    # ------------------------------------------------------------------ actions
    def drop_all(self) -> int:
        """Abort every open WebSocket at the TCP level; return how many were dropped.

        No ``0::`` packet and no close frame are sent: clients see the socket die, as
        when a load balancer or the server host disappears.
        """

        def drop() -> int:
            connections = self._server._open_connections()
            for conn in connections:
                conn.abort()
            return len(connections)

        return self._server.call_in_loop(drop)

    def refuse_handshakes(self, seconds: float) -> int:
        """Take the event server down for *seconds*: drop every socket, then answer
        handshakes and WebSocket upgrades with 503 until the time is up.

        The HTTP API on the same port keeps working; the event server comes back by
        itself.  Returns how many connections were dropped.
        """
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        with self._lock:
            self._refuse_until = time.monotonic() + float(seconds)
        return self.drop_all()

    def send_malformed(self, frame: str = DEFAULT_MALFORMED_FRAME, sid: str | None = None) -> int:
        """Send *frame* (not a valid packet by default) to every client, or only to the
        connection *sid*; return how many received it."""

        def send() -> int:
            count = 0
            for conn in self._server._open_connections():
                if sid is None or conn.sid == sid:
                    count += bool(conn.send(frame))
            return count

        return self._server.call_in_loop(send)

    # ------------------------------------------------------------------ switches
    def pause_heartbeats(self) -> None:
        """Stop sending ``2::``; sockets stay open and everything else keeps working."""
        with self._lock:
            self._heartbeats_paused = True

    def resume_heartbeats(self) -> None:
        with self._lock:
            self._heartbeats_paused = False

    def ignore_heartbeats(self) -> None:
        """Stop counting the clients' heartbeat answers as signs of life, so each client
        is disconnected by the server's heartbeat timeout unless it sends other frames."""
        with self._lock:
            self._ignoring_heartbeats = True

    def heed_heartbeats(self) -> None:
        with self._lock:
            self._ignoring_heartbeats = False

    def delay_acks(self, seconds: float) -> None:
        """Send every acknowledgement *seconds* late (events are still routed at once)."""
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        with self._lock:
            self._ack_mode, self._ack_delay = "delay", float(seconds)

    def blackhole_acks(self) -> None:
        """Never send acknowledgements (events are still routed)."""
        with self._lock:
            self._ack_mode, self._ack_delay = "blackhole", 0.0

    def restore_acks(self) -> None:
        with self._lock:
            self._ack_mode, self._ack_delay = "normal", 0.0

    def reset(self) -> None:
        """Turn every switch off (and end a handshake refusal early)."""
        with self._lock:
            self._refuse_until = 0.0
            self._heartbeats_paused = False
            self._ignoring_heartbeats = False
            self._ack_mode, self._ack_delay = "normal", 0.0

    # ------------------------------------------------------------------ state
    def refusing_for(self) -> float:
        """Seconds left of a handshake refusal (0 when serving)."""
        with self._lock:
            return max(0.0, self._refuse_until - time.monotonic())

    def heartbeats_paused(self) -> bool:
        with self._lock:
            return self._heartbeats_paused

    def ignoring_heartbeats(self) -> bool:
        with self._lock:
            return self._ignoring_heartbeats

    def ack_mode(self) -> tuple[str, float]:
        """``("normal" | "delay" | "blackhole", delay_seconds)``."""
        with self._lock:
            return self._ack_mode, self._ack_delay

    def state(self) -> dict:
        """Every switch's current value, for logs and assertions."""
        mode, delay = self.ack_mode()
        return {
            "refusing_for": round(self.refusing_for(), 3),
            "heartbeats_paused": self.heartbeats_paused(),
            "ignoring_heartbeats": self.ignoring_heartbeats(),
            "acks": mode,
            "ack_delay": delay,
        }

    def __repr__(self) -> str:
        return f"<Faults {self.state()}>"
