"""The daemon's HTTP listener: ``/healthz``, ``/readyz``, ``/metrics``, ``/status``.

Why a listener of its own thread (and loop) and not part of anything else: a listener
that shares nothing with the rest of the process keeps answering ``/healthz``
truthfully even when something else in it is wedged.  How connections are held —
bounded, with deadlines, so that idle or slow clients cannot exhaust threads or
descriptors — is :mod:`reviewd.daemon.http_connections`; this module is only *what*
each path answers.

Routes are a table: :meth:`HttpServer.add_route` adds one (the status page at ``/``
is added that way), so a new endpoint never means editing the dispatch.  Every JSON
body is passed through :func:`reviewd.api.exception.redact` before it is sent.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any, Protocol

import structlog

from reviewd.api.exception import redact
from reviewd.daemon.http_connections import (
    HEADER_TIMEOUT,
    MAX_CONNECTIONS,
    ConnectionServer,
    Request,
    Response,
)

__all__ = ["HttpServer", "Probe", "Request", "Response", "json_response"]

log = structlog.get_logger("reviewd.http")


class Probe(Protocol):
    """What the listener asks the supervisor."""

    def health(self) -> tuple[bool, dict[str, Any]]: ...
    def readiness(self) -> tuple[bool, dict[str, Any]]: ...
    def status(self) -> dict[str, Any]: ...
    def metrics_text(self) -> bytes: ...

    # Optional: ``status_page() -> bytes``, the HTML answered at ``/`` (else a JSON index).


def json_response(code: int, body: Any) -> Response:
    """A JSON response, secrets redacted."""
    text = redact(json.dumps(body, default=str, indent=2, sort_keys=True)) + "\n"
    return Response(code, text.encode("utf-8"), "application/json")


Route = Callable[[Request], Response]


class HttpServer:
    """Serve *probe* on (host, port) from a background thread; port 0 picks a free one.

    The socket is bound here, in the constructor, so that a port already in use fails
    start-up with an ``OSError`` the caller can name, not later on another thread.
    """

    def __init__(
        self,
        probe: Probe,
        host: str = "127.0.0.1",
        port: int = 9120,
        *,
        max_connections: int = MAX_CONNECTIONS,
        header_timeout: float = HEADER_TIMEOUT,
    ) -> None:
        self.probe = probe
        self._routes: dict[str, tuple[Route, bool]] = {}
        self.add_route("/healthz", self._healthz, inline=True)
        self.add_route("/readyz", self._readyz)
        self.add_route("/status", lambda request: json_response(200, probe.status()))
        self.add_route(
            "/metrics",
            lambda request: Response(
                200, probe.metrics_text(), "text/plain; version=0.0.4; charset=utf-8"
            ),
        )
        self.add_route("/", self._index)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.create_server((host, port), family=family)
        self._connections = ConnectionServer(
            sock,
            self._answer,
            self._is_inline,
            max_connections=max_connections,
            header_timeout=header_timeout,
        )
        self._address = sock.getsockname()[:2]

    def add_route(self, path: str, route: Route, *, inline: bool = False) -> None:
        """Answer GET *path* with *route(request)*.  *inline* routes run on the
        listener's loop and must never block (they answer even when every worker is
        busy); the others run on the worker pool."""
        self._routes[path.rstrip("/") or "/"] = (route, inline)

    def _index(self, request: Request) -> Response:
        """The status page for people, when the probe has one; else the endpoint list."""
        page = getattr(self.probe, "status_page", None)
        if page is None:
            return json_response(
                200, {"endpoints": sorted(path for path in self._routes if path != "/")}
            )
        return Response(200, page(), "text/html; charset=utf-8")

    def _healthz(self, request: Request) -> Response:
        ok, body = self.probe.health()
        return json_response(200 if ok else 503, body)

    def _readyz(self, request: Request) -> Response:
        ok, body = self.probe.readiness()
        return json_response(200 if ok else 503, body)

    def _is_inline(self, request: Request) -> bool:
        entry = self._routes.get(request.path)
        return entry is not None and entry[1]

    def _answer(self, request: Request) -> Response:
        entry = self._routes.get(request.path)
        if entry is None:
            return json_response(404, {"error": f"no such endpoint: {request.path}"})
        try:
            return entry[0](request)
        except Exception as exc:  # noqa: BLE001 - a probe error is a 500, not a dead listener
            log.exception("http endpoint failed", path=request.path)
            return json_response(500, {"error": redact(f"{type(exc).__name__}: {exc}")})

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._address
        return str(host), int(port)

    @property
    def alive(self) -> bool:
        return self._connections.thread.is_alive()

    @property
    def connections(self) -> ConnectionServer:
        """The connection machinery (open connections, evictions, timeouts)."""
        return self._connections

    def start(self) -> HttpServer:
        self._connections.start()
        return self

    def stop(self) -> None:
        self._connections.stop()
