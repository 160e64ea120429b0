"""Transport behaviour against canned HTTP answers (a proxy, a broken server).

These stand in for what sits *between* reviewd and ftrack — proxies that answer with
HTML, servers that refuse credentials — which the embedded server cannot be made to
produce.  Each answer is a real HTTP response on a real socket.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from reviewd.api.exception import AuthenticationError, ConnectionFailedError, ServerError
from reviewd.api.session import Session
from reviewd.api.transport import ApiClient, SessionAuthentication

SECRET = "s3cr3t-api-key-for-transport-tests"


class Canned:
    """A tiny HTTP server answering POST /api with (status, content-type, body)."""

    def __init__(
        self, status=200, body=b"[]", content_type="application/json", route=None, delay=None
    ):
        self.answer = (status, content_type, body)
        self.route = route  # callable(parsed request body) -> body bytes
        self.delay = delay  # threading.Event to wait on before answering
        self.requests: list[dict] = []
        canned = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                length = int(self.headers.get("content-length", 0))
                canned.requests.append(
                    {"headers": dict(self.headers), "body": self.rfile.read(length)}
                )
                status, kind, body = canned.answer
                if canned.route is not None:
                    body = canned.route(json.loads(canned.requests[-1]["body"]))
                if canned.delay is not None:
                    canned.delay.wait(10)
                try:
                    self.send_response(status)
                    self.send_header("content-type", kind)
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def client(url):
    return ApiClient(
        url,
        SessionAuthentication(SECRET, "jane"),
        headers={"x-extra": "1"},
        cookies={"sso": "token"},
    )


def test_headers_and_body_of_a_call():
    with Canned(body=b'[{"version": "dev"}]') as server:
        assert client(server.url).call([{"action": "query_server_information"}]) == [
            {"version": "dev"}
        ]
        (request,) = server.requests
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["ftrack-api-key"] == SECRET
    assert headers["ftrack-user"] == "jane"
    assert headers["content-type"] == "application/json"
    assert headers["accept"] == "application/json"
    assert headers["x-extra"] == "1"
    assert "sso=token" in headers["cookie"]
    assert json.loads(request["body"]) == [{"action": "query_server_information"}]


def test_proxy_error_page_is_a_clear_server_error():
    page = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    with Canned(status=502, body=page, content_type="text/html") as server:
        with pytest.raises(ServerError) as caught:
            client(server.url).call([{"action": "query_server_information"}])
    message = str(caught.value)
    assert "HTTP 502" in message and "not JSON" in message and "Bad Gateway" in message
    assert server.url in message and SECRET not in message


@pytest.mark.parametrize("status", [200, 401])
def test_error_object_raises_whatever_the_status(status):
    body = json.dumps(
        {
            "exception": "InvalidCredentialsError",
            "content": f"The API key {SECRET} is not valid.",
            "error_code": None,
        }
    ).encode()
    with Canned(status=status, body=body) as server:
        with pytest.raises(AuthenticationError) as caught:
            client(server.url).call([{"action": "query_server_information"}])
    assert caught.value.exception_name == "InvalidCredentialsError"
    assert "refused the credentials" in str(caught.value)
    assert SECRET not in str(caught.value), "the key is redacted even from server text"
    assert SECRET not in repr(caught.value.details)


def test_other_server_error_keeps_its_name():
    body = json.dumps({"exception": "ValidationError", "content": "bad thing"}).encode()
    with Canned(body=body) as server:
        with pytest.raises(ServerError, match="ValidationError: bad thing") as caught:
            client(server.url).call([{"action": "create"}])
    assert not isinstance(caught.value, AuthenticationError)


def test_non_list_answer_is_an_error():
    with Canned(body=b'{"unexpected": true}') as server:
        with pytest.raises(ServerError, match="where a list of results was expected"):
            client(server.url).call([])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_server_names_the_url():
    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(ConnectionFailedError) as caught:
        Session(url, api_key=SECRET, api_user="jane", schema_cache_path=False)
    assert url in str(caught.value) and "connection refused" in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_old_server_refused():
    from reviewd.api.exception import ServerCompatibilityError

    with Canned(body=b'[{"version": "3.2.0", "schema_hash": "x"}]') as server:
        with pytest.raises(ServerCompatibilityError, match="3.2.0"):
            Session(server.url, api_key=SECRET, api_user="jane", schema_cache_path=False)


def test_authentication_repr_hides_key():
    auth = SessionAuthentication(SECRET, "jane")
    assert SECRET not in repr(auth) and "jane" in repr(auth)


def ftrack_like(batch):
    """Answer the two start-up actions like a (schema-less) ftrack server."""
    results = []
    for operation in batch:
        if operation["action"] == "query_server_information":
            results.append({"version": "4.13.8", "schema_hash": "canned"})
        elif operation["action"] == "query_schemas":
            results.append(
                [
                    {
                        "id": "Note",
                        "primary_key": ["id"],
                        "properties": {"id": {"type": "string", "default": "{uid}"}},
                    }
                ]
            )
        else:
            results.append({"exception": "UnknownActionError"})
    return json.dumps(results).encode()


def test_session_sends_user_headers_and_cookies():
    with Canned(route=ftrack_like) as server:
        session = Session(
            server.url + "/",
            api_key=SECRET,
            api_user="jane",
            headers={"x-gateway": "studio"},
            cookies={"sso": "abc"},
            schema_cache_path=False,
        )
        assert session.server_url == server.url, "trailing slash is stripped"
        assert list(session.types) == ["Note"]
        session.close()
    assert [json.loads(r["body"])[0]["action"] for r in server.requests] == [
        "query_server_information",
        "query_schemas",
    ]
    for request in server.requests:
        headers = {k.lower(): v for k, v in request["headers"].items()}
        assert headers["x-gateway"] == "studio" and "sso=abc" in headers["cookie"]
        assert headers["ftrack-user"] == "jane" and headers["ftrack-api-key"] == SECRET


def test_session_timeout_is_honoured_and_named():
    release = threading.Event()
    with Canned(route=ftrack_like, delay=release) as server:
        try:
            with pytest.raises(
                ConnectionFailedError, match=r"did not answer within 0.3 s"
            ) as caught:
                Session(
                    server.url,
                    api_key=SECRET,
                    api_user="jane",
                    timeout=0.3,
                    schema_cache_path=False,
                )
            assert server.url in str(caught.value)
        finally:
            release.set()


def test_request_timeout_assigned_later_is_honoured():
    """ftrack_api scripts (and its own tests) assign ``session.request_timeout``."""
    release = threading.Event()
    with Canned(route=ftrack_like) as server:
        session = Session(server.url, api_key=SECRET, api_user="jane", schema_cache_path=False)
        try:
            assert session.request_timeout == 60
            session.request_timeout = 0.3
            server.delay = release
            with pytest.raises(ConnectionFailedError, match=r"did not answer within 0.3 s"):
                session.call([{"action": "query_server_information"}])
            assert session.request_timeout == 0.3
        finally:
            release.set()
            session.close()
