"""One plugin's patches to the session do not reach another plugin (issue 14, finding 10).

Decision: each plugin registers with its own :class:`SessionView` over the shared
session — assignments to the session stay in the view; the connection, cache and event
hub stay shared (documented limit: patching the Session *class* or shared objects still
affects everyone).  Before, a plugin that replaced ``session.query`` with something that
raised made every other plugin's handler fail.
"""

from __future__ import annotations

from reviewd.api.session import Session
from reviewd.plugin.session_view import SessionView, shared_session_of
from tests.daemon.daemon_harness import DaemonProcess, lines_of, service_env, wait_for, write_plugin
from tests.daemon.test_daemon_acceptance_start import wait_subscribed

PATCHER = """
    import os

    import ftrack_api

    HERE = os.path.dirname(os.path.abspath(__file__))

    def register(session, **kwargs):
        assert isinstance(session, ftrack_api.Session)
        def broken_query(*args, **kwargs):
            raise RuntimeError("patched by the patcher plugin")
        session.query = broken_query

        def mine(event):
            try:
                session.query("Project").first()
                outcome = "unpatched"
            except RuntimeError:
                outcome = "patched"
            with open(os.path.join(HERE, "patcher.txt"), "a") as handle:
                handle.write(outcome + "\\n")
        session.event_hub.subscribe("topic=test.isolation", mine)
"""

READER = """
    import os

    HERE = os.path.dirname(os.path.abspath(__file__))

    def register(session, **kwargs):
        def read(event):
            project = session.query("select name from Project").first()
            with open(os.path.join(HERE, "reader.txt"), "a") as handle:
                handle.write(project["name"].replace(" ", "_") + "\\n")
        session.event_hub.subscribe("topic=test.isolation", read)
"""


class Shared:
    name = "shared"

    def hello(self):
        return f"hello from {self.name}"


def test_view_reads_through_and_keeps_writes_local():
    shared = Shared()
    first, second = SessionView(shared, "a"), SessionView(shared, "b")
    first.hello = lambda: "patched"
    assert first.hello() == "patched"
    assert second.hello() == "hello from shared" and shared.hello() == "hello from shared"
    assert isinstance(first, Shared) and shared_session_of(first) is shared
    del first.hello
    assert first.hello() == "hello from shared"


def test_a_plugin_patching_query_does_not_break_another_plugin(tmp_path, devserver):
    plugins = tmp_path / "plugins"
    write_plugin(plugins, "a_patcher", PATCHER)
    write_plugin(plugins, "b_reader", READER)
    env = service_env(devserver, FTRACK_EVENT_PLUGIN_PATH=str(plugins), REVIEWD_MAX_ATTEMPTS="1")
    daemon = DaemonProcess(tmp_path, [], env=env)
    try:
        daemon.wait_ready()
        wait_subscribed(devserver, "test.isolation")
        devserver.emit("test.isolation", {})
        wait_for(lambda: lines_of(plugins / "reader.txt") and lines_of(plugins / "patcher.txt"))
        assert lines_of(plugins / "patcher.txt") == ["patched"]  # its own patch holds
        assert len(lines_of(plugins / "reader.txt")) == 1  # the other plugin unaffected
        status = daemon.status()
        assert status["plugins"]["b_reader"]["failed"] == 0
        assert not status.get("dead_letters")
    finally:
        assert daemon.stop() == 0, daemon.output()


def test_isinstance_session_holds_for_the_real_class():
    view = SessionView.__new__(SessionView)
    object.__setattr__(view, "_reviewd_shared", object.__new__(Session))
    assert isinstance(view, Session)
