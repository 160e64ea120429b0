"""The hub against an event server that lies: a clear error, retries for ever, recovery.

A proxy, a captive portal or a half-configured server can answer the socket.io
handshake with something that is not one — garbage, a handshake without the
``websocket`` transport, an HTML login page with status 200 — or accept the WebSocket
and close it at once.  Each lie must be logged as a line that names the problem (never
the API key, even when the lying page echoes it back), and the hub must keep retrying
with growing backoff, never giving up, and connect as soon as the server behaves.

The server is the real event server (``EventOnlyServer``) on a real socket, behind an
aiohttp middleware that answers in its place while a lie is set.
"""

from __future__ import annotations

import logging

import pytest
from aiohttp import web

from tests.event.event_harness import API_KEY, EventOnlyServer, wait_for

HANDSHAKE_PATHS = ("/socket.io/1/", "/socket.io/1")
WEBSOCKET_PREFIX = "/socket.io/1/websocket/"


def _proxy_page(request: web.Request) -> str:
    # A "helpful" proxy that shows the request headers: the API key among them.
    headers = "".join(f"<li>{name}: {value}</li>" for name, value in request.headers.items())
    return (
        "<!DOCTYPE html>\n<html><head><title>Sign in - Corporate Web Gateway</title></head>"
        "<body><h1>Authentication required</h1><p>Please sign in at "
        "http://gateway.example:8080/login to continue.</p>"
        f"<ul>{headers}</ul></body></html>"
    )


class Liar:
    """An aiohttp middleware that tells :attr:`lie` instead of the server's truth.

    ``lie`` is a key of :data:`LIES` or None (pass every request to the real server);
    ``told`` counts the lies told, so a test can wait for the hub to have retried.
    """

    def __init__(self, lie: str | None) -> None:
        self.lie = lie
        self.told = 0

    @web.middleware
    async def middleware(self, request: web.Request, handler):
        lie = self.lie
        if lie is not None:
            answer = await LIES[lie](request)
            if answer is not None:
                self.told += 1
                return answer
        return await handler(request)


async def _malformed_handshake(request: web.Request):
    if request.path in HANDSHAKE_PATHS:
        return web.Response(text="welcome to the event server", content_type="text/plain")
    return None


async def _handshake_without_websocket(request: web.Request):
    if request.path in HANDSHAKE_PATHS:
        return web.Response(
            text="b7f3c0de:25:60:xhr-polling,jsonp-polling", content_type="text/plain"
        )
    return None


async def _html_proxy_page(request: web.Request):
    if request.path in HANDSHAKE_PATHS:
        return web.Response(text=_proxy_page(request), content_type="text/html")
    return None


async def _websocket_closed_on_open(request: web.Request):
    if request.path.startswith(WEBSOCKET_PREFIX):
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.close()
        return socket
    return None


async def _websocket_dropped_on_open(request: web.Request):
    if request.path.startswith(WEBSOCKET_PREFIX):
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        request.transport.close()  # no close frame: the TCP connection just ends
        return socket
    return None


LIES = {
    "malformed handshake": _malformed_handshake,
    "handshake without websocket": _handshake_without_websocket,
    "HTML proxy page": _html_proxy_page,
    "websocket closed on open": _websocket_closed_on_open,
    "websocket dropped on open": _websocket_dropped_on_open,
}

#: What the logged line must say about each lie (any one of these).  A dropped TCP
#: connection is seen by whichever thread touches it first: the reader (end of stream)
#: (end of stream, or a reset) or the writer sending the subscriptions (a broken pipe).
COMPLAINTS = {
    "malformed handshake": ("returned no session: handshake body must be SID:HEARTBEAT",),
    "handshake without websocket": (
        "does not offer the websocket transport (it offers xhr-polling, jsonp-polling)",
    ),
    "HTML proxy page": ("answered with an HTML page, not a socket.io handshake",),
    "websocket closed on open": ("event socket closed by the server",),
    "websocket dropped on open": (
        "event socket closed by the server",
        "sending failed: ",
        "Connection reset by peer",
    ),
}

BASE, CAP = 0.05, 0.4
LIES_BEFORE_TRUTH = 6


@pytest.mark.parametrize("lie", list(LIES))
def test_hub_retries_a_lying_server_then_connects(lie, make_hub, caplog):
    liar = Liar(lie)
    with EventOnlyServer(
        heartbeat_interval=0.5, heartbeat_timeout=3.0, middlewares=[liar.middleware]
    ) as server:
        hub = make_hub(server, reconnect_base=BASE, reconnect_cap=CAP)
        seen = []
        hub.subscribe("topic=studio.truth", seen.append)
        with caplog.at_level(logging.WARNING, logger="reviewd.api.event.hub"):
            hub.connect(wait=False)
            wait_for(
                lambda: liar.told >= LIES_BEFORE_TRUTH,
                timeout=15,
                message=f"the hub to retry through {LIES_BEFORE_TRUTH} lies",
            )
            assert not hub.subscribed
            lied_to = list(hub.connection_attempts)
            liar.lie = None
            wait_for(lambda: hub.subscribed, timeout=10, message="the hub to connect to the truth")
            assert hub.connection_attempts[-1].outcome == "connected"

        # It connected for real: an event reaches the subscriber.
        server.emit("studio.truth", {"told": liar.told})
        wait_for(lambda: seen, timeout=5, message="an event after the lies")

    complaints = COMPLAINTS[lie]

    def names_the_lie(text: str) -> bool:
        return any(complaint in text for complaint in complaints)

    # Every failed or lost attempt names the lie, and none shows the key.
    ended = [a for a in lied_to if a.outcome.startswith(("failed", "lost"))]
    assert len(ended) >= LIES_BEFORE_TRUTH - 1
    assert all(names_the_lie(a.outcome) for a in ended), [a.outcome for a in ended]
    assert not any(API_KEY in a.outcome for a in lied_to)
    # A clear logged line for each, naming the problem, without the key.
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.name == "reviewd.api.event.hub" and r.levelno >= logging.WARNING
    ]
    assert sum(names_the_lie(line) for line in lines) >= LIES_BEFORE_TRUTH - 1, lines
    assert API_KEY not in caplog.text
    # Retried with capped exponential backoff (a connection that lived a moment does not
    # reset it), each delay drawn below its ceiling: never a give-up.
    ceilings = [a.ceiling for a in ended]
    assert ceilings[:4] == pytest.approx([BASE, 2 * BASE, 4 * BASE, CAP])
    assert ceilings[4:] == pytest.approx([CAP] * len(ceilings[4:]))
    assert all(0 <= a.delay <= a.ceiling for a in ended)
    for previous, current in zip(lied_to, lied_to[1:], strict=False):
        if previous.delay is not None:
            assert current.time - previous.time >= previous.delay - 0.05


def test_html_proxy_page_error_names_the_page_without_the_key(make_hub):
    """The HTML lie's message quotes the page (its title) so the operator sees who
    answered — with the key the page echoed replaced."""
    liar = Liar("HTML proxy page")
    with EventOnlyServer(middlewares=[liar.middleware]) as server:
        hub = make_hub(server, reconnect_base=BASE, reconnect_cap=CAP)
        hub.connect(wait=False)
        wait_for(
            lambda: liar.told >= 1 and len(hub.connection_attempts) >= 1,
            timeout=10,
            message="one lie told",
        )
        outcome = hub.connection_attempts[0].outcome
    assert "Sign in - Corporate Web Gateway" in outcome
    assert "is a proxy or login page in the way?" in outcome
    assert API_KEY not in outcome
