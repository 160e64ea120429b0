"""End-to-end fixtures: the embedded server, the real ``reviewd`` process, a webhook
receiver and an event recorder -- everything the plugins meet in production, on
127.0.0.1, with nothing mocked."""

from __future__ import annotations

import pytest

from reviewd.testing import (  # noqa: F401 - the plugin kit's fixtures, found by name
    _reviewd_handles,
    _reviewd_module_servers,
    emit,
    ftrack_changes,
    ftrack_server,
    ftrack_session,
    pytest_configure,
    reviewd_plugin,
    wait_for,
)
from tests.plugins_e2e.harness import Daemon, Recorder, Webhook
from tests.plugins_e2e.helpers import PLUGINS_DIR


@pytest.fixture(scope="module")
def server():
    """One demo-seeded embedded server per test module; tests use disjoint shots."""
    from reviewd.devserver import DevServer

    with DevServer(seed="demo") as dev:
        yield dev


@pytest.fixture(scope="module")
def make_daemon(tmp_path_factory):
    """Start `reviewd` processes on demand; all are stopped (SIGTERM) when the module ends."""
    started: list[Daemon] = []

    def make(server, plugin_arguments=None, paths=(PLUGINS_DIR,), ready=True) -> Daemon:
        """*ready* False: wait for the listener only (a plugin is expected to fail, and
        the daemon then says it is not ready)."""
        workdir = tmp_path_factory.mktemp("reviewd")
        daemon = Daemon(server, workdir, list(paths), plugin_arguments or {})
        started.append(daemon)
        daemon.wait_ready(ready=ready)
        return daemon

    yield make
    for daemon in started:
        daemon.stop()


@pytest.fixture(scope="module")
def webhook():
    hook = Webhook()
    yield hook
    hook.close()


@pytest.fixture(scope="module")
def recorder(server):
    rec = Recorder(server)
    yield rec
    rec.close()
