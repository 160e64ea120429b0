"""README's first command: ``reviewd --foreground`` with no server configured starts the
embedded demo server with activity simulation and loads ``plugins/`` -- and the plugins
must visibly act on the simulated activity within seconds."""

from __future__ import annotations

import os
import re
import signal
import subprocess

import pytest

from tests.plugins_e2e.harness import REVIEWD, free_port
from tests.plugins_e2e.helpers import PLUGINS_DIR, wait_for

pytestmark = pytest.mark.slow

# Log lines of a plugin that changed data (not the "nothing to do" ones).
ACTED = re.compile(
    r"\[reviewd\.plugins\.\w+\]|reviewd\.plugins\.\w+",
)
CHANGED = re.compile(r"added to '|: (approved|changes) \(|: \S.* -> \S")


def test_plugins_act_on_the_demo_within_seconds(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FTRACK_", "REVIEWD_"))}
    env["REVIEWD_STATE_DIR"] = str(tmp_path)
    log_path = tmp_path / "foreground.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [REVIEWD, "--foreground", "--http", f"127.0.0.1:{free_port()}"],
            cwd=os.path.dirname(PLUGINS_DIR),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:

        def plugin_changes():
            if process.poll() is not None:
                raise AssertionError(f"reviewd exited early:\n{log_path.read_text()}")
            lines = log_path.read_text().splitlines()
            return [line for line in lines if ACTED.search(line) and CHANGED.search(line)]

        changes = wait_for(plugin_changes, timeout=30, interval=0.25, what="a plugin to act")
        text = log_path.read_text()
        for plugin in ("verdicts_to_status", "version_to_review", "review_digest", "status_rollup"):
            assert f"loaded plugin '{plugin}'" in text
        assert changes
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
