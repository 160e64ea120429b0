"""HTTP transport to an ftrack server: authentication, the batch call and the JSON codec.

Everything the Session sends goes through :meth:`ApiClient.call` as one JSON array of
operations to ``POST {server}/api``.  This module turns every way that can fail (refused
connection, timeout, proxy error page, server error object) into one of the exceptions in
:mod:`reviewd.api.exception`, with a message naming the URL and never the API key.

``requests`` is imported here because talking HTTP is the point of the module; nothing
heavier is, so that a process can reach a ready Session quickly.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:  # arrow itself is imported on first use (start-up time)
    from arrow import Arrow
import requests.auth

from reviewd.api.exception import (
    AuthenticationError,
    ConnectionFailedError,
    ServerError,
    redact,
    register_secret,
)

#: Server exception names that mean "your credentials were refused".
AUTHENTICATION_EXCEPTIONS = frozenset(
    {"InvalidCredentialsError", "AuthenticationError", "InvalidCredentials"}
)

#: How much of a non-JSON body an error message quotes.
_BODY_EXCERPT = 200

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class CallInfo:
    """What a call listener learns about one HTTP call to ``/api``.

    ``actions`` are the batch's operation actions in order (``("query", "query")``),
    ``duration`` the seconds from sending the request to having its whole body (the
    time spent decoding and merging the answer is not included), ``error`` the
    exception the call raises (``None`` on success) and ``status`` the HTTP status code
    (``None`` when no answer arrived).  Nothing here holds the API key.
    """

    actions: tuple[str, ...]
    duration: float
    error: BaseException | None
    status: int | None


class SessionAuthentication(requests.auth.AuthBase):
    """Attach ``ftrack-api-key`` and ``ftrack-user`` to every request.

    Used for the API and for the event hub's socket.io handshake, so the credentials
    live in one object.  ``repr`` never shows the key.
    """

    def __init__(self, api_key: str, api_user: str) -> None:
        register_secret(api_key)
        self.api_key = api_key
        self.api_user = api_user

    def __call__(self, request: Any) -> Any:
        request.headers["ftrack-api-key"] = self.api_key
        request.headers["ftrack-user"] = self.api_user
        return request

    def headers(self) -> dict[str, str]:
        """The authentication headers, for transports that are not ``requests``."""
        return {"ftrack-api-key": self.api_key, "ftrack-user": self.api_user}

    def __repr__(self) -> str:
        return f"<SessionAuthentication api_user={self.api_user!r}>"


# ------------------------------------------------------------------------ JSON codec
def encode_default(value: Any) -> Any:
    """``json.dumps`` fallback for the wire types: datetimes, dates and entity-likes.

    Objects that know their wire form expose ``__ftrack_wire__()`` (entities return a
    reference mapping); anything else is a programming error reported with its type.
    """
    if isinstance(value, _dt.datetime) or _is_arrow(value):
        return {"__type__": "datetime", "value": value.isoformat()}
    if isinstance(value, _dt.date):
        return {"__type__": "date", "value": value.isoformat()}
    wire = getattr(value, "__ftrack_wire__", None)
    if wire is not None:
        return wire()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"Cannot encode a {type(value).__name__} for the ftrack API.")


def encode(data: Any) -> str:
    """Serialise *data* (operations, values) to the wire JSON text."""
    return json.dumps(data, default=encode_default, separators=(",", ":"))


def decode_typed(mapping: Mapping[str, Any]) -> Any:
    """Return the Python value of a ``{"__type__": ..., "value": ...}`` wire mapping."""
    kind = mapping.get("__type__")
    text = mapping.get("value")
    if text is None:
        return None
    if kind == "datetime":
        return parse_datetime(text)
    if kind == "date":
        return _arrow_class().fromdate(_dt.date.fromisoformat(text[:10]), tzinfo=_dt.timezone.utc)
    return mapping


_ARROW: type[Arrow] | None = None
_ARROW_FAST = False


def _arrow_class() -> type[Arrow]:
    """``arrow.Arrow``, imported on the first date decoded (arrow costs start-up time)."""
    global _ARROW, _ARROW_FAST
    if _ARROW is None:
        import arrow

        sample = _dt.datetime(2000, 1, 2, 3, 4, 5, tzinfo=_dt.timezone.utc)
        built = arrow.Arrow.fromdatetime(sample)
        # An Arrow is a wrapped datetime.  When this arrow release keeps nothing else
        # on the instance, wrap directly: ten times cheaper than its constructor, which
        # matters when a query result holds tens of thousands of dates.
        _ARROW_FAST = getattr(built, "__dict__", None) == {"_datetime": sample}
        _ARROW = arrow.Arrow
    return _ARROW


def _wrap_datetime(value: _dt.datetime) -> Any:
    """An ``arrow.Arrow`` for the aware datetime *value*."""
    arrow_class = _ARROW or _arrow_class()
    if _ARROW_FAST:
        wrapped = object.__new__(arrow_class)
        wrapped._datetime = value
        return wrapped
    return arrow_class.fromdatetime(value)


def _is_arrow(value: object) -> bool:
    return value.__class__.__module__ == "arrow.arrow"


def parse_datetime(text: str) -> Any:
    """Parse an ISO 8601 datetime as servers send it (``Z``, offset or naive) into an
    ``arrow.Arrow``, as ftrack_api does: plugins call ``.shift()``, ``.format()``,
    ``.floor()`` on dates.  Naive values are UTC (what a server without time-zone
    support stores); values with an offset keep it.
    """
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    value = _dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    return _wrap_datetime(value)


def decode_value(value: Any) -> Any:
    """Recursively convert typed wire mappings (datetimes, dates) in plain JSON data.

    Entities are left as mappings: merging them is the Session's job.
    """
    if isinstance(value, dict):
        if "__type__" in value:
            return decode_typed(value)
        return {key: decode_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [decode_value(item) for item in value]
    return value


def decode(text: str | bytes) -> Any:
    """Parse wire JSON text into plain data with datetimes and dates converted."""
    return decode_value(json.loads(text))


# ------------------------------------------------------------------------ the client
class ApiClient:
    """Send batches of operations to ``{server_url}/api`` and return their results.

    One ``requests.Session`` is kept for connection reuse; it is safe to share between
    threads for this use (one POST at a time per connection from urllib3's pool).
    """

    def __init__(
        self,
        server_url: str,
        auth: SessionAuthentication,
        *,
        headers: Mapping[str, str] | None = None,
        cookies: Mapping[str, str] | None = None,
        timeout: float | None = 60,
        encoder: Callable[[Any], str] = encode,
    ) -> None:
        self.server_url = server_url.rstrip("/")
        self.url = self.server_url + "/api"
        self.timeout = timeout
        self._encode = encoder
        self._http = requests.Session()
        self._http.auth = auth
        self._http.headers.update(
            {"content-type": "application/json", "accept": "application/json"}
        )
        if headers:
            self._http.headers.update(dict(headers))
        if cookies:
            self._http.cookies.update(dict(cookies))
        # Replaced, never mutated, so that call() reads it without taking the lock.
        self._listeners: tuple[Callable[[CallInfo], Any], ...] = ()
        self._listeners_lock = threading.Lock()

    def add_call_listener(self, callback: Callable[[CallInfo], Any]) -> Callable[[], None]:
        """Call ``callback(info)`` after every call (see :class:`CallInfo`); return a remover.

        The callback runs in the calling thread; an exception from it is logged and
        ignored, so a broken metrics hook never breaks an API call.
        """
        if not callable(callback):
            raise TypeError(f"add_call_listener() takes a callable, not {type(callback).__name__}.")
        with self._listeners_lock:
            self._listeners = (*self._listeners, callback)

        def remove() -> None:
            with self._listeners_lock:
                listeners = list(self._listeners)
                for index, listener in enumerate(listeners):
                    if listener is callback:
                        del listeners[index]
                        self._listeners = tuple(listeners)
                        return

        return remove

    def _notify(
        self, batch: list[Any], duration: float, error: BaseException | None, status: int | None
    ) -> None:
        info = CallInfo(
            tuple(
                str(operation.get("action", "")) if isinstance(operation, Mapping) else ""
                for operation in batch
            ),
            duration,
            error,
            status,
        )
        for listener in self._listeners:
            try:
                listener(info)
            except Exception as exc:
                logger.warning(
                    "An API call listener (%s) failed and was ignored: %s: %s",
                    getattr(listener, "__qualname__", type(listener).__name__),
                    type(exc).__name__,
                    redact(str(exc))[:300],
                )

    @property
    def http(self) -> requests.Session:
        """The underlying ``requests.Session`` (headers, cookies, adapters)."""
        return self._http

    def call(
        self, batch: list[dict[str, Any]], decoder: Callable[[bytes], Any] | None = None
    ) -> list[Any]:
        """POST *batch* and return the decoded JSON result list (one per operation).

        *decoder* parses the body (default ``json.loads``); the Session passes one with an
        ``object_hook`` that merges entities while the JSON is being parsed.

        Raises :class:`ConnectionFailedError` when the server cannot be reached,
        :class:`AuthenticationError` when credentials are refused, and
        :class:`ServerError` for an error object or a body that is not the expected
        JSON array.  Typed values (datetimes) are left in wire form for the caller.
        """
        body = self._encode(batch)
        expected = len(batch)
        if not self._listeners:
            return self._post_and_parse(body, decoder, expected)
        started = time.perf_counter()
        timing: list[Any] = []
        try:
            result = self._post_and_parse(body, decoder, expected, timing)
        except BaseException as exc:
            status, received = timing if timing else (None, time.perf_counter())
            self._notify(batch, received - started, exc, status)
            raise
        status, received = timing
        self._notify(batch, received - started, None, status)
        return result

    def _post_and_parse(
        self,
        body: str,
        decoder: Callable[[bytes], Any] | None,
        expected: int | None = None,
        timing: list[Any] | None = None,
    ) -> list[Any]:
        """POST *body*; on an answer, append ``(status, perf_counter())`` to *timing*."""
        try:
            response = self._http.post(self.url, data=body.encode("utf-8"), timeout=self.timeout)
        except requests.exceptions.Timeout as exc:
            raise ConnectionFailedError(
                redact(
                    f"The ftrack server at {self.server_url} did not answer within "
                    f"{self.timeout} s ({type(exc).__name__})."
                )
            ) from None
        except requests.exceptions.ChunkedEncodingError as exc:
            # Connected, and an answer began, but the connection closed before the body
            # the server announced was complete: the operations may or may not have
            # been applied, so the caller must not take them for done.
            raise ConnectionFailedError(
                redact(
                    f"The answer of the ftrack server at {self.server_url} was cut off "
                    f"before it was complete ({_reason(exc)}); the request may or may "
                    "not have been applied."
                )
            ) from None
        except requests.exceptions.RequestException as exc:
            raise ConnectionFailedError(
                redact(
                    f"Could not connect to the ftrack server at {self.server_url}: "
                    f"{_reason(exc)}. Check the server URL and that the server is running."
                )
            ) from None
        content = response.content
        if timing is not None:
            timing.extend((response.status_code, time.perf_counter()))
        return self.parse_response(response.status_code, content, decoder, expected)

    def parse_response(
        self,
        status: int,
        content: bytes,
        decoder: Callable[[bytes], Any] | None = None,
        expected: int | None = None,
    ) -> list[Any]:
        """Turn a raw HTTP answer into the result list or the right exception.

        With *expected*, a list of any other length (results missing or extra, so that
        no result can be matched to its operation) is a :class:`ServerError` too.
        """
        try:
            result = (decoder or json.loads)(content)
        except ValueError as exc:
            excerpt = content[:_BODY_EXCERPT].decode("utf-8", "replace").strip()
            doc = getattr(exc, "doc", None)
            cut = (
                isinstance(doc, str)
                and doc.strip()[:1] in ("[", "{")
                and getattr(exc, "pos", 0) >= len(doc.rstrip())
            )
            why = " (it ends before the JSON is complete: cut off?)" if cut else ""
            raise ServerError(
                redact(
                    f"The ftrack server at {self.server_url} answered HTTP {status} "
                    f"with a body that is not JSON{why}: {excerpt!r}"
                ),
                details={"status": status},
            ) from None
        if isinstance(result, dict) and "exception" in result:
            raise server_error(result, self.server_url, status)
        if not isinstance(result, list):
            raise ServerError(
                redact(
                    f"The ftrack server at {self.server_url} answered HTTP {status} with "
                    f"a {type(result).__name__} where a list of results was expected."
                ),
                details={"status": status},
            )
        if expected is not None and len(result) != expected:
            raise ServerError(
                redact(
                    f"The ftrack server at {self.server_url} answered HTTP {status} with "
                    f"{_count(len(result), 'result')} for {_count(expected, 'operation')}; "
                    "one result per operation was expected."
                ),
                details={"status": status},
            )
        return result

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        return f"<ApiClient {self.url}>"


def server_error(
    error: Mapping[str, Any], server_url: str = "", status: int | None = None
) -> ServerError:
    """Build the exception for a server error object ``{"exception", "content", ...}``."""
    name = str(error.get("exception") or "ServerError")
    content = str(error.get("content") or "")
    where = f" at {server_url}" if server_url else ""
    cls = AuthenticationError if name in AUTHENTICATION_EXCEPTIONS else ServerError
    if cls is AuthenticationError:
        message = (
            f"The ftrack server{where} refused the credentials ({name}): {content} "
            "Check the API user and API key."
        )
    else:
        message = f"The ftrack server{where} reported {name}: {content}"
    return cls(
        redact(message.strip()),
        details={"status": status, "content": redact(content)},
        exception_name=name,
        error_code=error.get("error_code"),
    )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _reason(exc: Exception) -> str:
    """A one-line reason for a requests exception, without urllib3's nested reprs."""
    text = str(exc)
    for marker in (
        "Connection refused",
        "Name or service not known",
        "No route to host",
        "Temporary failure in name resolution",
        "certificate verify failed",
        "Connection reset",
        "Network is unreachable",
    ):
        if marker in text:
            return marker.lower()
    return type(exc).__name__ + (": " + text[:160] if text else "")
