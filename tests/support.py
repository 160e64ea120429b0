"""Small helpers every test suite needs, written once.

Each suite's support module (``tests/<suite>/conftest.py``, ``*_harness.py``,
``*_support.py``, ``helpers.py``) used to carry its own copy of these: a deadline
poller, a free-port finder, a process stopper and so on.  The copies had drifted
(different defaults, different failure messages) without any suite relying on the
difference except for its defaults, so the logic lives here and the suites keep
their names and defaults as thin wrappers or re-exports.  Import from the suite's
module in tests (``from tests.event.event_harness import wait_for``) as before; import
from here in support modules.

Nothing here knows about reviewd itself beyond the environment a DevServer hands out.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T], timeout: float = 10.0, interval: float = 0.02, message: str = ""
) -> T:
    """Poll *condition* until it returns something truthy and return that value.

    Fail the test (``AssertionError``) once *timeout* seconds have passed, naming
    *message* (or the condition itself) and the last value seen.  This is the one
    poller of the suite: tests wait on an observable state, never on ``sleep()``.
    Suites wrap it with their own default *timeout*/*interval* (a daemon starts in
    seconds, an in-process event server in milliseconds); the positional order
    ``(condition, timeout, interval, message)`` is the same everywhere.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout}s waiting for {message or condition}: last {value!r}"
            )
        time.sleep(interval)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago.

    For processes that must be told their port up front (the ``reviewd`` daemon's
    ``--http``, a server restarted on the same port).  In-process servers should bind
    port 0 and read the port back instead, which has no race at all.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    """``GET url`` → ``(status, body)``, never raising: ``(0, "")`` when nothing answers.

    For probing the daemon's ``/readyz``, ``/status`` and ``/metrics``, where a 503 or
    a refused connection is an answer to assert on (or to poll past), not an error.
    """
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except (urllib.error.URLError, OSError):
        return 0, ""


def server_env(server, **extra: str) -> dict[str, str]:
    """The ``FTRACK_*`` variables that point a client process at a running *server*.

    *server* is anything with ``url``, ``api_user`` and ``api_key`` (a DevServer, an
    event-only server); *extra* variables are added last, so they may override these.
    """
    env = {
        "FTRACK_SERVER": server.url,
        "FTRACK_API_USER": server.api_user,
        "FTRACK_API_KEY": server.api_key,
    }
    env.update(extra)
    return env


def write_source(path: str | os.PathLike, source: str, *, lstrip: bool = False) -> Path:
    """Write *source*, dedented, to *path* (creating its folders); return the path.

    Tests write plugins and scripts inline as indented triple-quoted strings.
    *lstrip* also drops the leading newline such a string starts with; the daemon
    suite keeps it (its plugins' line numbers have always counted it).
    """
    text = textwrap.dedent(source)
    if lstrip:
        text = text.lstrip()
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target


def wait_process_ready(
    proc: subprocess.Popen,
    probe: Callable[[], object],
    output: Callable[[], str],
    timeout: float,
    interval: float,
    message: str,
) -> object:
    """Poll *probe* until it is truthy while *proc* runs; fail at once if *proc* exits.

    A daemon that dies during start-up (a bad config, a port in use) would otherwise
    look like a slow one until *timeout*; this fails immediately with its exit code
    and *output()* (its log), which is what one needs to read.
    """

    def ready():
        if proc.poll() is not None:
            raise AssertionError(f"reviewd exited with {proc.returncode}:\n{output()}")
        return probe()

    return wait_until(ready, timeout, interval, message)


def stop_process(proc: subprocess.Popen, timeout: float) -> int:
    """SIGTERM *proc*, give it *timeout* seconds to exit, then SIGKILL; return its code.

    SIGTERM first because the graceful shutdown (drain, journal flush) is usually what
    the test is about; the kill only keeps a hung process from outliving the test.
    """
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def fresh_session(server, **overrides):
    """A new ``reviewd.Session`` on *server* with no plugins and no hub connection.

    What a test asserts must be on the server, not in some other session's cache, so
    tests that verify results open one of these instead of reusing the session that
    made the change.  *overrides* are further constructor arguments.
    """
    from reviewd import Session

    arguments = dict(
        server_url=server.url,
        api_key=server.api_key,
        api_user=server.api_user,
        plugin_paths=[],
        auto_connect_event_hub=False,
    )
    arguments.update(overrides)
    return Session(**arguments)
