"""The pytest plugin costs nothing to projects that do not ask for it, and each of the
three documented ways of asking turns it on."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support import write_source


def pytest_free_env():
    """This environment without the outer pytest's variables (xdist worker ids,
    PYTEST_ADDOPTS): the inner run must behave as a plugin author's own."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}


USES_FIXTURE = """
def test_server(ftrack_server):
    assert ftrack_server.url.startswith("http://127.0.0.1:")
"""

NO_FIXTURE = """
import sys


def test_nothing_of_reviewd_imported():
    heavy = [m for m in ("reviewd.devserver", "reviewd.api.session", "reviewd.daemon.supervisor",
                         "reviewd.testing.runner", "aiohttp", "requests") if m in sys.modules]
    assert heavy == []
"""


def pytest_in(folder, *arguments):
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *arguments],
        cwd=folder,
        env=pytest_free_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.returncode, result.stdout + result.stderr


def test_kit_plugin_is_inert_unless_enabled(tmp_path):
    write_source(tmp_path / "test_other_project.py", NO_FIXTURE)
    write_source(tmp_path / "test_wants_server.py", USES_FIXTURE)
    code, output = pytest_in(tmp_path)
    assert "fixture 'ftrack_server' not found" in output
    assert "1 passed, 1 error" in output, output  # the inert project imported nothing


@pytest.mark.parametrize("how", ["ini", "conftest", "command line"])
def test_kit_plugin_enabled_three_ways(tmp_path, how):
    write_source(tmp_path / "test_wants_server.py", USES_FIXTURE)
    arguments = []
    if how == "ini":
        write_source(tmp_path / "pytest.ini", "[pytest]\nreviewd_fixtures = true\n")
    elif how == "conftest":
        write_source(tmp_path / "conftest.py", 'pytest_plugins = ["reviewd.testing"]\n')
    else:
        arguments = ["-p", "reviewd.testing"]
    code, output = pytest_in(tmp_path, *arguments)
    assert code == 0 and "1 passed" in output, output


def test_kit_server_marker_shares_per_module_and_seeds(tmp_path):
    write_source(
        tmp_path / "test_marker.py",
        """
        import pytest

        seen = []


        @pytest.mark.ftrack_server(scope="module")
        def test_first(ftrack_server):
            seen.append(ftrack_server.url)


        @pytest.mark.ftrack_server(scope="module")
        def test_second(ftrack_server):
            assert seen == [ftrack_server.url]


        def test_own_server(ftrack_server):
            assert seen[0] != ftrack_server.url


        @pytest.mark.ftrack_server(seed="empty")
        def test_empty(ftrack_session):
            assert ftrack_session.query("Project").all() == []


        def test_demo(ftrack_session):
            assert ftrack_session.query("Project").all() != []


        @pytest.mark.ftrack_server(colour="red")
        def test_bad_option(ftrack_server):
            pass
    """,
    )
    code, output = pytest_in(tmp_path, "-p", "reviewd.testing", "--strict-markers", "-rE")
    assert "5 passed, 1 error" in output, output
    assert "unknown option(s) ['colour']" in output
