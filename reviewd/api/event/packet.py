"""The socket.io 0.9 wire codec: packets, event/ack payloads and the handshake body.

This module is pure (no sockets, no threads, no imports from the rest of reviewd) so
that both the client hub and the embedded server's event endpoint can share one
implementation and one set of byte-for-byte tests.  A frame is text of the form
``TYPE:ID:ENDPOINT[:DATA]``; an ``ID`` ending in ``+`` asks the peer to acknowledge
with data (the ack packet then carries ``<id>+<json args>`` as its data).
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "PacketType",
    "PacketError",
    "Packet",
    "Handshake",
    "encode",
    "decode",
    "event",
    "parse_event",
    "parse_event_data",
    "parse_ftrack_event",
    "ack",
    "parse_ack",
    "parse_handshake",
    "format_handshake",
]

_ERROR_TEXT_LIMIT = 200


class PacketType(enum.IntEnum):
    """Packet types of socket.io protocol version 0.9."""

    DISCONNECT = 0
    CONNECT = 1
    HEARTBEAT = 2
    MESSAGE = 3
    JSON = 4
    EVENT = 5
    ACK = 6
    ERROR = 7
    NOOP = 8


class PacketError(ValueError):
    """Text that is not a valid packet (or payload); ``text`` holds the truncated input."""

    def __init__(self, message: str, text: str = "") -> None:
        self.text = _truncate(text)
        super().__init__(f"{message}: {self.text!r}" if text else message)


def _truncate(text: str) -> str:
    if not isinstance(text, str):
        text = repr(text)
    if len(text) > _ERROR_TEXT_LIMIT:
        return text[:_ERROR_TEXT_LIMIT] + f"...[{len(text) - _ERROR_TEXT_LIMIT} more]"
    return text


@dataclass(frozen=True, slots=True)
class Packet:
    """One socket.io frame.  ``id`` keeps its trailing ``+`` when an ack is requested."""

    type: PacketType
    id: str = ""
    endpoint: str = ""
    data: str = ""

    @property
    def ack_requested(self) -> bool:
        return self.id.endswith("+")


_JSON_SEPARATORS = (",", ":")
_ID_PATTERN = re.compile(r"[0-9]*\+?")
_ACK_DATA_PATTERN = re.compile(r"([0-9]+)(?:\+(.*))?", re.DOTALL)
_PACKET_TYPES = {str(int(t)): t for t in PacketType}


def encode(packet: Packet) -> str:
    """Return the frame text of *packet*: ``"2::"``, ``"5:7+::{...}"``, ``"6:::7+[...]"``."""
    head = f"{int(packet.type)}:{packet.id}:{packet.endpoint}"
    if packet.data:
        return f"{head}:{packet.data}"
    return head


def decode(text: str) -> Packet:
    """Parse one frame.  Raise :class:`PacketError` for anything that is not a packet."""
    if not isinstance(text, str):
        raise PacketError("packet is not text", text)
    # Split at most three times: the data part may itself contain colons.
    parts = text.split(":", 3)
    if len(parts) < 3:
        raise PacketError("packet needs at least TYPE:ID:ENDPOINT", text)
    packet_type = _PACKET_TYPES.get(parts[0])
    if packet_type is None:
        raise PacketError(f"unknown packet type {parts[0][:20]!r}", text)
    packet_id = parts[1]
    if packet_id and (_ID_PATTERN.fullmatch(packet_id) is None or packet_id == "+"):
        raise PacketError(f"invalid packet id {packet_id[:20]!r}", text)
    data = parts[3] if len(parts) == 4 else ""
    return Packet(packet_type, packet_id, parts[2], data)


def _dumps(value: object) -> str:
    return json.dumps(value, separators=_JSON_SEPARATORS, ensure_ascii=False)


def event(name: str, args: list[Any], id: str = "", endpoint: str = "") -> Packet:
    """Build an event packet (type 5) whose data is ``{"name": name, "args": args}``.

    Raises ``TypeError`` when *args* is not JSON-serialisable: that is the caller's bug,
    not a malformed frame.
    """
    return Packet(PacketType.EVENT, id, endpoint, _dumps({"name": name, "args": list(args)}))


def parse_event(packet: Packet) -> tuple[str, list[Any]]:
    """Return ``(name, args)`` of an event packet; raise :class:`PacketError` if malformed."""
    if packet.type != PacketType.EVENT:
        raise PacketError(f"not an event packet (type {int(packet.type)})", packet.data)
    return parse_event_data(packet.data)


def parse_event_data(data: str) -> tuple[str, list[Any]]:
    """Return ``(name, args)`` from the data part of an event packet (the hot path of a
    receiver that has already recognised the ``5:::`` prefix)."""
    try:
        payload = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise PacketError(f"event data is not JSON ({exc})", data) from None
    if payload.__class__ is not dict:
        raise PacketError("event data is not a JSON object", data)
    name = payload.get("name")
    if name.__class__ is not str:
        raise PacketError("event data has no string 'name'", data)
    args = payload.get("args")
    if args is None:
        return name, []
    if args.__class__ is not list:
        raise PacketError("event 'args' is not a list", data)
    return name, args


#: The data of an ``ftrack.event`` packet as a socket.io 0.9 server writes it
#: (``JSON.stringify``: no spaces), up to the event object itself.
FTRACK_EVENT_PREFIX = '{"name":"ftrack.event","args":['
_raw_decode = json.JSONDecoder().raw_decode


def parse_ftrack_event(data: str) -> tuple[Any, str] | None:
    """``(event, its JSON text)`` when *data* is exactly ``{"name":"ftrack.event",
    "args":[EVENT]}`` in compact form, else None (use :func:`parse_event_data`).

    Why: a receiver that stores events (the daemon's journal) can keep the text it was
    sent instead of encoding the event again; decoding in place gives the exact span of
    the event in the same pass, so the text costs nothing extra.
    """
    if not data.startswith(FTRACK_EVENT_PREFIX):
        return None
    start = len(FTRACK_EVENT_PREFIX)
    try:
        value, end = _raw_decode(data, start)
    except (ValueError, RecursionError):
        return None
    if data[end:] != "]}":
        return None
    return value, data[start:end]


def ack(ack_id: str, args: list[Any] | None = None) -> Packet:
    """Build the acknowledgement of packet *ack_id* (given without its ``+``)."""
    ack_id = ack_id.rstrip("+")
    if not ack_id.isdigit():
        raise PacketError("ack id must be digits", ack_id)
    data = f"{ack_id}+{_dumps(list(args))}" if args else ack_id
    return Packet(PacketType.ACK, "", "", data)


def parse_ack(packet: Packet) -> tuple[str, list[Any]]:
    """Return ``(acknowledged id without '+', args)`` of an ack packet."""
    if packet.type != PacketType.ACK:
        raise PacketError(f"not an ack packet (type {int(packet.type)})", packet.data)
    match = _ACK_DATA_PATTERN.fullmatch(packet.data)
    if match is None:
        raise PacketError("ack data must be ID or ID+[json args]", packet.data)
    ack_id, raw_args = match.groups()
    if raw_args is None:
        return ack_id, []
    try:
        args = json.loads(raw_args)
    except (ValueError, RecursionError) as exc:
        raise PacketError(f"ack args are not JSON ({exc})", packet.data) from None
    if not isinstance(args, list):
        raise PacketError("ack args are not a JSON list", packet.data)
    return ack_id, args


@dataclass(frozen=True)
class Handshake:
    """The answer to ``GET /socket.io/1/``: ``SID:HEARTBEAT:CLOSE:TRANSPORTS``.

    A heartbeat timeout of ``0`` means the server sends no heartbeats (an empty field
    in the body, as socket.io 0.9 allows).
    """

    session_id: str
    heartbeat_timeout: float
    close_timeout: float
    transports: tuple[str, ...]


def _parse_seconds(field: str, name: str, body: str) -> float:
    if field == "":
        return 0.0
    try:
        value = float(field)
    except ValueError:
        raise PacketError(f"handshake {name} is not a number", body) from None
    if not (value >= 0) or value == float("inf"):
        raise PacketError(f"handshake {name} must be a finite, non-negative number", body)
    return value


def parse_handshake(body: str) -> Handshake:
    """Parse a handshake body; raise :class:`PacketError` when it is not one."""
    if not isinstance(body, str):
        raise PacketError("handshake body is not text", body)
    text = body.strip()
    parts = text.split(":")
    if len(parts) != 4:
        raise PacketError("handshake body must be SID:HEARTBEAT:CLOSE:TRANSPORTS", body)
    session_id, heartbeat, close, transports = parts
    if not session_id or any(ch.isspace() or ch == "/" for ch in session_id):
        raise PacketError("handshake session id is empty or invalid", body)
    names = tuple(t.strip() for t in transports.split(",") if t.strip())
    if not names:
        raise PacketError("handshake lists no transports", body)
    return Handshake(
        session_id,
        _parse_seconds(heartbeat, "heartbeat timeout", body),
        _parse_seconds(close, "close timeout", body),
        names,
    )


def _format_seconds(value: float) -> str:
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def format_handshake(h: Handshake) -> str:
    """Return the handshake body for *h* (the inverse of :func:`parse_handshake`)."""
    return ":".join(
        (
            h.session_id,
            _format_seconds(h.heartbeat_timeout),
            _format_seconds(h.close_timeout),
            ",".join(h.transports),
        )
    )
