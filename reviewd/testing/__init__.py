"""reviewd's pytest plugin: an ftrack server in a fixture, and plugins run by the daemon.

Enable it in a project's tests with ONE of (it is inert otherwise, so installing
reviewd costs nothing to other projects' test runs):

- ``pytest_plugins = ["reviewd.testing"]`` in the top-level ``conftest.py``;
- ``reviewd_fixtures = true`` under ``[tool.pytest.ini_options]`` (read by the
  ``pytest11`` entry point, :mod:`reviewd.testing.entry`);
- ``pytest -p reviewd.testing``.

Fixtures (reference with examples in ``docs/plugin-guide.md``):

``ftrack_server``
    A running :class:`reviewd.devserver.DevServer`, demo production by default; a fresh
    one per test unless ``@pytest.mark.ftrack_server(scope="module")``; other data with
    ``@pytest.mark.ftrack_server(seed="empty")`` or ``(schema="schemas.json")``.
``ftrack_session`` / ``ftrack_api_session``
    A ``reviewd.Session`` on that server; the same class reached as
    ``ftrack_api.Session`` through :func:`reviewd.compat.install` (classic plugins).
``reviewd_plugin(path_or_module, arguments=None, *, routing=None, expect_failures=False, watch=False)``
    Loads the plugin in an in-process daemon exactly as ``reviewd`` does and returns a
    :class:`~reviewd.testing.runner.PluginHandle`.
``emit(topic, data=None, *, source_user=None, wait_reply=True, target="", timeout=10)``
    Publish an event as the web UI does; returns the plugin's reply data.
``ftrack_changes``
    :class:`~reviewd.testing.changes.FtrackChanges`: ``set_status``, ``add_version``,
    ``record_verdict`` — the changes that make the server publish ``ftrack.update``.
``wait_for(condition, timeout=10, message="")``
    Poll until *condition()* is truthy; fails with *message* on timeout, and at once
    with the plugin's traceback and event when a plugin under test raises.

Only ``pytest`` and the standard library are imported here; everything else is
imported by the fixture that needs it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

__all__ = [
    "emit",
    "ftrack_api_session",
    "ftrack_changes",
    "ftrack_server",
    "ftrack_session",
    "reviewd_plugin",
    "wait_for",
]

T = TypeVar("T")
MARKER = "ftrack_server"
SCOPES = ("function", "module")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(seed='demo', schema=None, scope='function'): the embedded ftrack server "
        "this test gets from the ftrack_server fixture (reviewd.testing)",
    )


# ---------------------------------------------------------------------- the server
def _server_options(request: pytest.FixtureRequest) -> tuple[str, str | None, str]:
    marker = request.node.get_closest_marker(MARKER)
    options = dict(marker.kwargs) if marker is not None else {}
    seed = options.pop("seed", "demo")
    schema = options.pop("schema", None)
    scope = options.pop("scope", "function")
    if options:
        raise pytest.UsageError(
            f"@pytest.mark.{MARKER}: unknown option(s) {sorted(options)}; "
            "use seed=, schema= or scope="
        )
    if scope not in SCOPES:
        raise pytest.UsageError(
            f"@pytest.mark.{MARKER}: scope must be one of {SCOPES}, got {scope!r}"
        )
    return seed, (str(schema) if schema is not None else None), scope


@pytest.fixture(scope="module")
def _reviewd_module_servers() -> Iterator[dict]:
    """Servers shared by the tests of one module, by (seed, schema); stopped at its end."""
    servers: dict[tuple, Any] = {}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture
def ftrack_server(request: pytest.FixtureRequest, _reviewd_module_servers: dict) -> Iterator[Any]:
    """A running embedded ftrack server (``reviewd.devserver.DevServer``)."""
    from reviewd.devserver import DevServer

    seed, schema, scope = _server_options(request)
    if scope == "module":
        key = (seed, schema)
        if key not in _reviewd_module_servers:
            _reviewd_module_servers[key] = DevServer(seed=seed, schema=schema).start()
        yield _reviewd_module_servers[key]
        return
    server = DevServer(seed=seed, schema=schema).start()
    try:
        yield server
    finally:
        server.stop()


def _open_session(session_class: Any, server: Any) -> Any:
    return session_class(
        server_url=server.url,
        api_key=server.api_key,
        api_user=server.api_user,
        plugin_paths=[],
        auto_connect_event_hub=False,
    )


@pytest.fixture
def ftrack_session(ftrack_server: Any) -> Iterator[Any]:
    """A ``reviewd.Session`` on the test's server (no plugins, hub not connected)."""
    from reviewd import Session

    session = _open_session(Session, ftrack_server)
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def ftrack_api_session(ftrack_server: Any) -> Iterator[Any]:
    """``ftrack_api.Session(...)`` on the test's server, where ``ftrack_api`` is reviewd
    (:func:`reviewd.compat.install`): code written for ftrack_api is tested unchanged."""
    from reviewd import compat
    from reviewd.api.session import Session

    compat.install()
    import ftrack_api

    if ftrack_api.Session is not Session:
        pytest.fail(
            "the real ftrack-python-api is installed here, so `import ftrack_api` "
            "is not reviewd; test classic plugins in an environment without it "
            "(or use the ftrack_session fixture)",
            pytrace=False,
        )
    session = _open_session(ftrack_api.Session, ftrack_server)
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def ftrack_changes(ftrack_session: Any) -> Any:
    """Changes that make the server publish ``ftrack.update``, through ``ftrack_session``."""
    from reviewd.testing.changes import FtrackChanges

    return FtrackChanges(ftrack_session)


# ---------------------------------------------------------------------- plugins
@pytest.fixture
def _reviewd_handles() -> list:
    """The plugins this test started (their failures fail emit() and wait_for())."""
    return []


def _check_all(handles: list) -> None:
    __tracebackhide__ = True
    for handle in handles:
        handle.check()


@pytest.fixture
def reviewd_plugin(
    ftrack_server: Any, tmp_path_factory: pytest.TempPathFactory, _reviewd_handles: list
) -> Iterator[Callable[..., Any]]:
    """Start a plugin under an in-process daemon; returns its ``PluginHandle``."""
    from reviewd.testing.runner import start_plugin

    def start(
        target: Any,
        arguments: dict | None = None,
        *,
        routing: dict | None = None,
        expect_failures: bool = False,
        watch: bool = False,
        timeout: float = 30.0,
    ) -> Any:
        __tracebackhide__ = True
        workdir = tmp_path_factory.mktemp("reviewd-plugin")
        handle = start_plugin(
            ftrack_server,
            target,
            workdir,
            arguments=arguments,
            routing=routing,
            expect_failures=expect_failures,
            watch=watch,
            timeout=timeout,
        )
        _reviewd_handles.append(handle)
        return handle

    yield start
    try:
        # A failure no wait noticed still fails the test (reported once per event).
        _check_all(_reviewd_handles)
    except AssertionError as failure:
        pytest.fail(str(failure), pytrace=False)
    finally:
        for handle in _reviewd_handles:
            handle.stop()


@pytest.fixture
def wait_for(_reviewd_handles: list) -> Callable[..., Any]:
    """``wait_for(condition, timeout=10, message="")``: poll *condition* until truthy and
    return its value; fail with *message* on timeout, or at once with a plugin's
    traceback and event when a plugin under test raises."""

    def wait(condition: Callable[[], T], timeout: float = 10.0, message: str = "") -> T:
        __tracebackhide__ = True
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            _check_all(_reviewd_handles)
            last = condition()
            if last:
                return last
            if time.monotonic() > deadline:
                what = message or getattr(condition, "__name__", repr(condition))
                pytest.fail(
                    f"timed out after {timeout:g}s waiting for {what} (last value: {last!r})",
                    pytrace=False,
                )
            time.sleep(0.02)

    return wait


@pytest.fixture
def emit(ftrack_server: Any, _reviewd_handles: list) -> Callable[..., Any]:
    """``emit(topic, data=None, *, source_user=None, wait_reply=True, target="",
    timeout=10)``: publish an event as the web UI does.  With *wait_reply*, return the
    data of the first reply (what the plugin's handler returned); fail clearly when
    none comes, with the plugin's traceback if it raised."""
    import concurrent.futures

    def send(
        topic: str,
        data: dict | None = None,
        *,
        source_user: str | None = None,
        wait_reply: bool = True,
        target: str = "",
        timeout: float = 10.0,
    ) -> Any:
        __tracebackhide__ = True
        source = {"user": {"username": source_user or ftrack_server.api_user}}
        if not wait_reply:
            ftrack_server.emit(topic, data or {}, target=target, source=source)
            return None
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            future = pool.submit(
                ftrack_server.emit,
                topic,
                data or {},
                target=target,
                source=source,
                wait_reply=timeout,
            )
            while not future.done():
                _check_all(_reviewd_handles)
                try:
                    future.result(timeout=0.05)
                except concurrent.futures.TimeoutError:
                    continue
            reply = future.result()
        _check_all(_reviewd_handles)
        if reply is None:
            pytest.fail(
                f"no reply to {topic!r} within {timeout:g}s: no subscribed handler "
                "returned a value (is the plugin subscribed to this topic, and "
                "does its handler return something?)",
                pytrace=False,
            )
        return reply.get("data")

    return send
