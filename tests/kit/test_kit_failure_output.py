"""Acceptance: when a plugin test fails because the plugin raised, the report shows the
plugin's traceback and the event that triggered it, not reviewd's machinery.

The failing test runs in a pytest of its own (a subprocess, as a plugin author runs it),
and its report is read as text."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support import write_source


def pytest_free_env():
    """This environment without the outer pytest's variables (xdist worker ids,
    PYTEST_ADDOPTS): the inner run must behave as a plugin author's own."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}


PLUGIN = """
import reviewd


def price_of(entity):
    return entity["changes"]["bid"]["new"] * 2


def on_update(event):
    for entity in event["data"]["entities"]:
        if entity["entityType"] == "task":
            price_of(entity)


@reviewd.hookimpl
def reviewd_register(session, registry, arguments):
    registry.subscribe("topic=ftrack.update", on_update)
"""

TEST = """
def test_status_change_is_priced(ftrack_session, ftrack_changes, reviewd_plugin, wait_for):
    reviewd_plugin("{plugin}")
    task = ftrack_session.query('Task where name is "animation"').first()
    ftrack_changes.set_status(task, "On hold")
    wait_for(lambda: False, timeout=20, message="a price")
"""


def run_pytest(tmp_path, *arguments):
    plugin = write_source(tmp_path / "pricing.py", PLUGIN)
    write_source(tmp_path / "test_pricing.py", TEST.format(plugin=plugin))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "reviewd.testing",
            "-p",
            "no:cacheprovider",
            "-q",
            *arguments,
            str(tmp_path / "test_pricing.py"),
        ],
        cwd=tmp_path,
        env=pytest_free_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.returncode, result.stdout + result.stderr


def test_kit_failing_plugin_report_shows_plugin_traceback_and_event(tmp_path):
    code, output = run_pytest(tmp_path)
    assert code == 1, output
    summary = output.strip().splitlines()[-1]
    assert "1 failed" in summary and "error" not in summary, summary
    # the plugin's own frames, down to the line that raised
    assert "plugin 'pricing' raised while handling an event" in output
    assert 'pricing.py", line 6, in price_of' in output
    assert "KeyError: 'bid'" in output
    # the event: its topic and the entity it carried
    assert "topic=ftrack.update" in output and '"entityType": "task"' in output
    assert '"statusid"' in output
    # not the machinery
    for internal in (
        "reviewd/daemon/router.py",
        "reviewd/api/event/dispatch.py",
        "reviewd/daemon/intake.py",
        "reviewd/testing/",
    ):
        assert internal not in output, internal
    assert "timed out" not in output
