"""A handler calling ``sys.exit()`` is a failing handler, not a dead worker.

Found by the misbehaving-plugins scenario: SystemExit ended the lane's worker thread,
so the plugin was "stuck" for ever and its later events never ran.
"""

from __future__ import annotations

from tests.daemon.daemon_harness import DaemonProcess, lines_of, service_env, wait_for, write_plugin
from tests.daemon.test_daemon_acceptance_start import wait_subscribed

EXITER = """
    import os
    import sys

    HERE = os.path.dirname(os.path.abspath(__file__))

    def register(session, **kwargs):
        def handler(event):
            with open(os.path.join(HERE, "calls.txt"), "a") as handle:
                handle.write(event["id"] + "\\n")
            sys.exit(3)
        session.event_hub.subscribe("topic=test.exit", handler)
"""


def test_sys_exit_in_a_handler_is_a_failure_and_the_lane_goes_on(tmp_path, devserver):
    plugins = tmp_path / "plugins"
    write_plugin(plugins, "exiter", EXITER)
    env = service_env(devserver, FTRACK_EVENT_PLUGIN_PATH=str(plugins), REVIEWD_MAX_ATTEMPTS="1")
    daemon = DaemonProcess(tmp_path, [], env=env)
    try:
        daemon.wait_ready()
        wait_subscribed(devserver, "test.exit")
        for n in range(3):
            devserver.emit("test.exit", {"n": n})
        wait_for(lambda: len(lines_of(plugins / "calls.txt")) == 3, message="all three calls")
        wait_for(
            lambda: daemon.status()["plugins"]["exiter"]["dead_lettered"] == 3,
            message="three dead letters",
        )
        assert daemon.get("/readyz")[0] == 200
        assert daemon.proc.poll() is None
    finally:
        assert daemon.stop() == 0, daemon.output()
