"""One socket.io 0.9 session with the event server: handshake, WebSocket, frames.

The hub owns the policy (when to reconnect, what to send); this module owns the
mechanics of a single connection attempt and its socket.  Dead-socket detection lives
here because it is a property of the socket: the server promised a heartbeat within
its heartbeat timeout, so a receive that waits longer than that (plus a margin) means
the peer, a proxy or the network is gone — no need to wait for TCP to notice.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
import websocket

from reviewd.api.event import packet
from reviewd.api.exception import EventHubConnectionError, redact

__all__ = ["Connection", "ConnectionLost", "HandshakeRefused", "ServerUnreachable", "dead_after"]

log = logging.getLogger("reviewd.api.event.connection")

#: Seconds to wait for the handshake request and the WebSocket upgrade.
CONNECT_TIMEOUT = 10.0


class HandshakeRefused(EventHubConnectionError):
    """The server answered the handshake but refused it (credentials, unavailable)."""

    def __init__(self, message: str, status: int | None = None, final: bool = False) -> None:
        super().__init__(message, {"status": status})
        self.status = status
        self._final = final

    @property
    def credentials_refused(self) -> bool:
        return self.status in (401, 403)

    @property
    def final(self) -> bool:
        """Whether retrying cannot help: credentials refused, or no websocket transport."""
        return self._final or self.credentials_refused


class ServerUnreachable(EventHubConnectionError):
    """Nothing answered at the server's address: connection refused, no route, or no
    answer within the connect timeout (a frozen or unplugged server).

    Told apart from other failures because such a probe costs the server nothing (or,
    after a timeout, has already waited the whole timeout): the hub may retry it soon
    and so notice a returning server within a second, where a server that answers
    with errors gets the growing backoff.
    """


class ConnectionLost(EventHubConnectionError):
    """An open connection ended: closed by the peer, reset, or silent for too long."""


def dead_after(heartbeat_timeout: float) -> float | None:
    """Seconds of silence after which a socket is presumed dead (None: never).

    The margin absorbs scheduling jitter and a heartbeat sent just before the timeout:
    a fifth of the timeout, at least half a second, at most five seconds.
    """
    if heartbeat_timeout <= 0:
        return None
    return heartbeat_timeout + min(5.0, max(0.5, heartbeat_timeout * 0.2))


def _cookie_header(cookies: Mapping[str, str] | None) -> str | None:
    if not cookies:
        return None
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


def _snippet(text: str, limit: int) -> str:
    """The start of a server's answer for an error message, the API key already taken
    out (truncating first could cut the key and leave a prefix that no longer matches)."""
    return redact(text[: limit * 10])[:limit]


def _looks_like_html(response: requests.Response) -> bool:
    """Whether a handshake answer is a web page rather than ``SID:HB:CLOSE:TRANSPORTS``."""
    if "html" in response.headers.get("content-type", "").lower():
        return True
    return response.text.lstrip()[:1] == "<"


def _ssl_options(verify: bool | str) -> dict[str, Any]:
    """websocket-client TLS options matching what requests does for the handshake."""
    if verify is False:
        return {"cert_reqs": ssl.CERT_NONE, "check_hostname": False}
    options: dict[str, Any] = {"cert_reqs": ssl.CERT_REQUIRED}
    bundle = (
        verify
        if isinstance(verify, str)
        else (os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE"))
    )
    if bundle:
        if os.path.isdir(bundle):
            options["ca_cert_path"] = bundle
        else:
            options["ca_certs"] = bundle
    return options


#: A frame larger than this is refused (the connection is dropped) rather than buffered.
MAX_FRAME_BYTES = 64 << 20
_READ_SIZE = 65536
_OP_CONTINUATION, _OP_TEXT, _OP_BINARY, _OP_CLOSE, _OP_PING, _OP_PONG = 0, 1, 2, 8, 9, 10


class FrameReader:
    """Reads WebSocket frames from a socket through one buffer.

    websocket-client opens the connection (handshake, TLS, proxies, headers), but its
    receive path issues several small ``recv`` calls per frame; under a stream of small
    event frames that costs more than the events themselves.  This reader takes whole
    chunks from the socket and cuts every complete frame out of them, so a burst of a
    hundred events costs one system call.  Pings are answered through *on_ping*; a close
    frame ends the connection with :class:`ConnectionLost`.
    """

    def __init__(self, sock: Any, on_ping: Any = None) -> None:
        self._sock = sock
        self._on_ping = on_ping
        self._buffer = bytearray()
        self._position = 0
        self._fragments: list[bytes] | None = None

    def _fill(self) -> None:
        if self._position:
            del self._buffer[: self._position]
            self._position = 0
        chunk = self._sock.recv(_READ_SIZE)
        if not chunk:
            raise ConnectionLost("event socket closed by the server")
        self._buffer += chunk

    def next_message(self) -> bytes:
        """Return the payload of the next complete text or binary message."""
        while True:
            frame = self._next_frame()
            if frame is None:
                self._fill()
                continue
            opcode, final, payload = frame
            if opcode == _OP_PING:
                if self._on_ping is not None:
                    self._on_ping(payload)
                continue
            if opcode == _OP_PONG:
                continue
            if opcode == _OP_CLOSE:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                raise ConnectionLost(f"event socket closed by the server (close code {code})")
            if opcode == _OP_CONTINUATION:
                if self._fragments is None:
                    raise ConnectionLost("continuation frame without a first fragment")
                self._fragments.append(payload)
                if sum(map(len, self._fragments)) > MAX_FRAME_BYTES:
                    raise ConnectionLost("fragmented message exceeds the size limit")
                if final:
                    message, self._fragments = b"".join(self._fragments), None
                    return message
                continue
            if opcode not in (_OP_TEXT, _OP_BINARY):
                raise ConnectionLost(f"unknown WebSocket opcode {opcode}")
            if not final:
                self._fragments = [payload]
                continue
            return payload

    def _next_frame(self) -> tuple[int, bool, bytes] | None:
        buffer, start = self._buffer, self._position
        available = len(buffer) - start
        if available < 2:
            return None
        first, second = buffer[start], buffer[start + 1]
        length = second & 0x7F
        header = 2
        if length == 126:
            if available < 4:
                return None
            length = int.from_bytes(buffer[start + 2 : start + 4], "big")
            header = 4
        elif length == 127:
            if available < 10:
                return None
            length = int.from_bytes(buffer[start + 2 : start + 10], "big")
            header = 10
        if length > MAX_FRAME_BYTES:
            raise ConnectionLost(f"frame of {length} bytes exceeds the size limit")
        masked = second & 0x80
        if masked:
            header += 4
        end = start + header + length
        if len(buffer) < end:
            return None
        payload = bytes(buffer[start + header : end])
        if masked:  # servers must not mask, but decoding it costs nothing to support
            mask = buffer[start + header - 4 : start + header]
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self._position = end
        return first & 0x0F, bool(first & 0x80), payload


class Connection:
    """A single socket.io session; create a new one for every (re)connect attempt.

    ``open()`` performs the handshake and the WebSocket upgrade; ``recv()`` returns the
    next text frame or raises :class:`ConnectionLost`; ``send()`` may be called from any
    thread.  Nothing here retries: the hub decides what a failure means.
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
        connect_timeout: float = CONNECT_TIMEOUT,
        http: requests.Session | None = None,
        handshake: Callable[[], packet.Handshake] | None = None,
    ) -> None:
        parts = urlsplit(server_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"server URL must be http(s)://host[:port], got {server_url!r}")
        self._base = f"{parts.scheme}://{parts.netloc}"
        self._ws_base = f"{'wss' if parts.scheme == 'https' else 'ws'}://{parts.netloc}"
        self._headers = {
            **{str(k): str(v) for k, v in (headers or {}).items()},
            "ftrack-user": api_user,
            "ftrack-api-key": api_key,
        }
        self._cookies = dict(cookies or {})
        self._verify = verify
        self._auth = auth
        self._connect_timeout = connect_timeout
        self._http = http
        # Who performs the socket.io handshake (the hub routes it through its own
        # ftrack_api-named method); by default this connection itself.
        self._handshake_source = handshake or self._handshake
        self._socket: websocket.WebSocket | None = None
        self._reader: FrameReader | None = None
        self._send_lock = threading.Lock()
        self._closed = False
        #: Why this side closed the connection (None: it did not, or gave no reason).
        self.close_reason: str | None = None
        self.handshake: packet.Handshake | None = None
        self.dead_after: float | None = None
        #: Wall-clock time (``time.time()``) of the last frame heard from the server —
        #: where a gap in the event stream really starts, however late the loss is noticed.
        self.last_heard: float | None = None

    # ------------------------------------------------------------------ opening
    def open(self) -> packet.Handshake:
        """Handshake and upgrade; raise :class:`EventHubConnectionError` on failure."""
        handshake = self._handshake_source()
        if "websocket" not in handshake.transports:
            raise HandshakeRefused(
                "Server does not support websocket sessions. The event server does not "
                f"offer the websocket transport (it offers {', '.join(handshake.transports)})",
                final=True,
            )
        url = f"{self._ws_base}/socket.io/1/websocket/{handshake.session_id}"
        try:
            sock = websocket.create_connection(
                url,
                timeout=self._connect_timeout,
                header=[f"{k}: {v}" for k, v in self._headers.items()],
                cookie=_cookie_header(self._cookies),
                sslopt=_ssl_options(self._verify),
                enable_multithread=True,
                skip_utf8_validation=True,
            )
        except websocket.WebSocketBadStatusException as error:
            raise HandshakeRefused(
                f"the event server refused the WebSocket upgrade ({error.status_code})",
                error.status_code,
            ) from None
        except Exception as error:  # socket, TLS and protocol errors alike
            raise EventHubConnectionError(
                redact(f"could not open the event WebSocket at {self._ws_base}: {error}")
            ) from None
        self.dead_after = dead_after(handshake.heartbeat_timeout)
        sock.settimeout(self.dead_after)
        self._reader = FrameReader(sock.sock, on_ping=self._pong)
        with self._send_lock:
            if self._closed:  # close() raced with open()
                sock.close()
                raise ConnectionLost("connection closed while opening")
            self._socket = sock
        self.handshake = handshake
        self.last_heard = time.time()
        return handshake

    def request_handshake(self) -> packet.Handshake:
        """``GET /socket.io/1/``: the server's session id, heartbeat and transports."""
        return self._handshake()

    def _handshake(self) -> packet.Handshake:
        url = f"{self._base}/socket.io/1/"
        getter = self._http.get if self._http is not None else requests.get
        try:
            response = getter(
                url,
                headers=self._headers,
                cookies=self._cookies,
                verify=self._verify,
                auth=self._auth,
                timeout=self._connect_timeout,
            )
        except (requests.ConnectionError, requests.Timeout) as error:
            # Refused, unroutable, or no answer within the timeout (a frozen server):
            # nothing answered, so the next probe may come soon (see ServerUnreachable).
            raise ServerUnreachable(
                redact(f"event server handshake at {url} failed: {error}")
            ) from None
        except requests.RequestException as error:
            raise EventHubConnectionError(
                redact(f"event server handshake at {url} failed: {error}")
            ) from None
        body = _snippet(response.text, 300)
        if response.status_code != 200:
            hint = " (check the API user and key)" if response.status_code in (401, 403) else ""
            raise HandshakeRefused(
                redact(
                    f"event server handshake at {url} answered {response.status_code}{hint}: "
                    f"{body.strip()}"
                ),
                response.status_code,
            )
        try:
            return packet.parse_handshake(response.text)
        except packet.PacketError as error:
            if _looks_like_html(response):
                # A proxy, login or captive-portal page answered in the server's place;
                # the parser's complaint about colons would hide that.
                raise HandshakeRefused(
                    redact(
                        f"event server handshake at {url} answered with an HTML page, not a "
                        "socket.io handshake (is a proxy or login page in the way?): "
                        f"{' '.join(body.split())[:120]}"
                    ),
                    response.status_code,
                ) from None
            raise HandshakeRefused(
                redact(f"event server handshake at {url} returned no session: {error}"),
                response.status_code,
            ) from None

    # ------------------------------------------------------------------ frames
    def recv(self) -> str:
        """Block for the next text frame; raise :class:`ConnectionLost` when it ends."""
        reader = self._reader
        if reader is None or self._socket is None:
            raise ConnectionLost(self.close_reason or "not connected")
        try:
            payload = reader.next_message()
        except ConnectionLost:
            if self.close_reason is not None:  # closed here: say why, not what recv saw
                raise ConnectionLost(self.close_reason) from None
            raise
        except TimeoutError:
            raise ConnectionLost(
                f"no frame (not even a heartbeat) for {self.dead_after:.1f}s; socket presumed dead"
            ) from None
        except Exception as error:  # closed, reset, TLS errors: all mean "gone"
            if self.close_reason is not None:
                raise ConnectionLost(self.close_reason) from None
            raise ConnectionLost(f"event socket failed: {type(error).__name__}: {error}") from None
        self.last_heard = time.time()
        try:
            return payload.decode("utf-8")
        except UnicodeDecodeError:
            return payload.decode("utf-8", "replace")  # not a packet; logged and skipped

    def _pong(self, payload: bytes) -> None:
        sock = self._socket
        if sock is not None:
            try:
                sock.pong(payload)
            except Exception:  # the reader will notice a dead socket itself
                log.debug("could not answer a WebSocket ping", exc_info=True)

    def send(self, text: str) -> None:
        """Send one frame; raise :class:`ConnectionLost` if the socket is gone."""
        sock = self._socket
        if sock is None:
            raise ConnectionLost("not connected")
        try:
            sock.send(text)
        except Exception as error:
            raise ConnectionLost(f"sending failed: {type(error).__name__}: {error}") from None

    def close(self, reason: str | None = None) -> None:
        """Close the socket (idempotent, any thread); a blocked ``recv`` then fails.

        *reason* (the first one given) is what that ``recv`` reports, so that the reader
        names the cause (say, a failed send on the writer thread) rather than the
        closed descriptor it tripped over.
        """
        with self._send_lock:
            if reason is not None and self.close_reason is None and not self._closed:
                self.close_reason = reason
            self._closed = True
            sock, self._socket = self._socket, None
        if sock is not None:
            raw = getattr(sock, "sock", None)
            if raw is not None:
                # shutdown() (unlike close()) wakes a thread blocked in recv on Linux.
                try:
                    raw.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            try:
                sock.shutdown()
            except Exception:  # already dead: nothing more to release
                log.debug("event socket shutdown failed", exc_info=True)

    @property
    def is_open(self) -> bool:
        sock = self._socket
        return sock is not None and sock.connected
