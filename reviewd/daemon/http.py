"""The daemon's HTTP listener: ``/healthz``, ``/readyz``, ``/metrics``, ``/status``.

Why the standard library's ``ThreadingHTTPServer`` in a thread and not aiohttp: the
daemon is built on threads (the hub's reader, the plugin workers), four read-only GET
endpoints need no event loop, and a listener with no loop of its own keeps answering
``/healthz`` truthfully even when something else in the process is wedged.  Each
request runs on its own short-lived thread, so a slow scrape never blocks a probe.

Every JSON body is passed through :func:`reviewd.api.exception.redact` before it is sent.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

import structlog

from reviewd.api.exception import redact

log = structlog.get_logger("reviewd.http")


class Probe(Protocol):
    """What the listener asks the supervisor."""

    def health(self) -> tuple[bool, dict[str, Any]]: ...
    def readiness(self) -> tuple[bool, dict[str, Any]]: ...
    def status(self) -> dict[str, Any]: ...
    def metrics_text(self) -> bytes: ...
    # Optional: ``status_page() -> bytes``, the HTML answered at ``/`` (else a JSON index).


class _Handler(BaseHTTPRequestHandler):
    server_version = "reviewd"
    sys_version = ""
    probe: Probe

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        try:
            if path == "/healthz":
                ok, body = self.probe.health()
                self._json(200 if ok else 503, body)
            elif path == "/readyz":
                ok, body = self.probe.readiness()
                self._json(200 if ok else 503, body)
            elif path == "/status":
                self._json(200, self.probe.status())
            elif path == "/metrics":
                self._send(200, self.probe.metrics_text(), "text/plain; version=0.0.4; charset=utf-8")
            elif path == "/":
                page = getattr(self.probe, "status_page", None)
                if page is None:
                    self._json(200, {"endpoints": ["/healthz", "/readyz", "/metrics", "/status"]})
                else:
                    self._send(200, page(), "text/html; charset=utf-8")
            else:
                self._json(404, {"error": f"no such endpoint: {path}"})
        except Exception as exc:  # noqa: BLE001 - a probe error is a 500, not a dead listener
            log.exception("http endpoint failed", path=path)
            self._json(500, {"error": redact(f"{type(exc).__name__}: {exc}")})

    def _json(self, code: int, body: Any) -> None:
        text = redact(json.dumps(body, default=str, indent=2, sort_keys=True)) + "\n"
        self._send(code, text.encode("utf-8"), "application/json")

    def _send(self, code: int, payload: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("http request", request=format % args)


class HttpServer:
    """Serve *probe* on (host, port) from a background thread; port 0 picks a free one."""

    def __init__(self, probe: Probe, host: str = "127.0.0.1", port: int = 9120) -> None:
        handler = type("ReviewdHandler", (_Handler,), {"probe": probe})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.2},
                                        name="reviewd-http", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> HttpServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
