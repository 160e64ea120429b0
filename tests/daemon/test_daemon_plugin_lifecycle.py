"""Acceptance: the real ``reviewd`` process giving daemon-loaded plugins the Session's
lifecycle events, and hot-reloading a package plugin when a file inside it changes."""

from __future__ import annotations

import signal
import textwrap

from .daemon_harness import DaemonProcess, lines_of, service_env, wait_for, write_plugin

SESSION_WATCHER = """
    import os

    VERSION = "{version}"
    OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "{name}.txt")

    def register(session, **kwargs):
        def record(event):
            same = "same-session" if event["data"]["session"] is session else "other-session"
            with open(OUT, "a") as handle:
                handle.write(f"{{VERSION}}:{{event['topic']}}:{{same}}\\n")
        session.event_hub.subscribe("topic=ftrack.api.session.configure-location", record)
        session.event_hub.subscribe("topic=ftrack.api.session.ready", record)
"""

START = ["ftrack.api.session.configure-location", "ftrack.api.session.ready"]


def watcher(name: str, version: str) -> str:
    return SESSION_WATCHER.format(name=name, version=version)


def records(daemon: DaemonProcess, message: str) -> list[dict]:
    return [r for r in daemon.log_records() if r.get("event") == message]


def test_session_events_reach_plugins_at_start_and_only_the_reloaded_one(tmp_path, devserver):
    plugins = tmp_path / "plugins"
    alpha = write_plugin(plugins, "alpha", watcher("alpha", "v1"))
    write_plugin(plugins, "beta", watcher("beta", "v1"))
    env = service_env(devserver, REVIEWD_WATCH_PLUGINS="1", FTRACK_EVENT_PLUGIN_PATH=str(plugins))
    daemon = DaemonProcess(tmp_path, [], env=env)
    try:
        daemon.wait_ready()
        expected = [f"v1:{topic}:same-session" for topic in START]
        assert lines_of(tmp_path / "alpha.txt") == expected, daemon.output()
        assert lines_of(tmp_path / "beta.txt") == expected

        # A file change reloads alpha alone: the new code hears configure-location and
        # ready once, in that order; beta hears nothing more.
        alpha.write_text(textwrap.dedent(watcher("alpha", "v2")))
        wait_for(
            lambda: [r for r in records(daemon, "plugin reloaded") if r.get("plugin") == "alpha"],
            timeout=20,
            message="alpha to be reloaded after its file changed",
        )
        assert lines_of(tmp_path / "alpha.txt") == expected + [
            f"v2:{topic}:same-session" for topic in START
        ]
        assert lines_of(tmp_path / "beta.txt") == expected

        # SIGHUP reloads every plugin, so each hears them once more.
        daemon.signal(signal.SIGHUP)
        wait_for(
            lambda: records(daemon, "reload finished"),
            timeout=20,
            message="the SIGHUP reload to finish",
        )
        assert lines_of(tmp_path / "alpha.txt")[4:] == [
            f"v2:{topic}:same-session" for topic in START
        ]
        assert lines_of(tmp_path / "beta.txt")[2:] == expected
    finally:
        assert daemon.stop() == 0, daemon.output()


RAISES_ON_READY = """
    import os

    OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "after.txt")

    def register(session, **kwargs):
        def explode(event):
            raise RuntimeError("ready handler broke")

        def record(event):
            with open(OUT, "a") as handle:
                handle.write(event["topic"] + "\\n")
        session.event_hub.subscribe("topic=ftrack.api.session.ready", explode, priority=1)
        session.event_hub.subscribe("topic=ftrack.api.session.ready", record, priority=2)
"""


def test_a_raising_ready_handler_is_logged_and_does_not_stop_the_others(tmp_path, devserver):
    write_plugin(tmp_path / "plugins", "fragile", RAISES_ON_READY)
    env = service_env(devserver, FTRACK_EVENT_PLUGIN_PATH=str(tmp_path / "plugins"))
    daemon = DaemonProcess(tmp_path, [], env=env)
    try:
        daemon.wait_ready()
        assert lines_of(tmp_path / "after.txt") == ["ftrack.api.session.ready"]
        failures = records(daemon, "session event handler failed")
        assert len(failures) == 1 and failures[0]["plugin"] == "fragile"
        assert "RuntimeError: ready handler broke" in failures[0]["error"]
    finally:
        assert daemon.stop() == 0, daemon.output()


PACKAGE_INIT = """
    from . import answer

    def register(session, **kwargs):
        def on_discover(event):
            return {"items": [{"label": answer.label(), "actionIdentifier": "pkg.answer"}]}
        session.event_hub.subscribe("topic=ftrack.action.discover", on_discover)
"""


def test_editing_a_package_plugin_submodule_reloads_it_under_foreground(tmp_path, devserver):
    package = tmp_path / "plugins" / "answering"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(PACKAGE_INIT))
    submodule = package / "answer.py"
    submodule.write_text("def label():\n    return 'first answer'\n")
    env = service_env(devserver, FTRACK_EVENT_PLUGIN_PATH=str(tmp_path / "plugins"))
    daemon = DaemonProcess(tmp_path, ["--foreground", "--log-format", "json"], env=env)

    def label() -> str | None:
        reply = devserver.emit("ftrack.action.discover", {"selection": []}, wait_reply=5)
        return reply["data"]["items"][0]["label"] if reply else None

    try:
        daemon.wait_ready()
        wait_for(
            lambda: label() == "first answer",
            timeout=20,
            message="the package plugin's first answer",
        )
        # Only the submodule changes: the package folder's own mtime stays as it was.
        folder_mtime = package.stat().st_mtime_ns
        submodule.write_text("def label():\n    return 'second answer'\n")
        assert package.stat().st_mtime_ns == folder_mtime
        wait_for(
            lambda: label() == "second answer", timeout=20, message="the edited submodule's answer"
        )
        # The new code can answer before the reload's log line reaches the log file.
        wait_for(
            lambda: [
                r for r in records(daemon, "plugin reloaded") if r.get("plugin") == "answering"
            ],
            timeout=10,
            message="the reload logged",
        )
    finally:
        assert daemon.stop() == 0, daemon.output()
