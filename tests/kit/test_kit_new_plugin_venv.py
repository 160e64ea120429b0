"""Acceptance: a plugin author's first minutes, in a virtualenv of their own.

``reviewd new-plugin NAME``, ``pip install -e .``, ``pytest``: the scaffolded test must
pass at once, and it must be a real test — a status change committed on the embedded
server, the ``ftrack.update`` it publishes, the installed plugin loaded through its
entry point by the daemon, the note it writes read back.  Both styles; the classic one
uses ``import ftrack_api`` and ``register(session)`` and is tested unchanged.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import require
from tests.kit.author_venv import author_venv, clean_env, exclusive, uninstall_plugins

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def venv():
    try:
        return author_venv()
    except Exception as exc:  # noqa: BLE001 - no package index: skip (fails in CI)
        require(False, f"cannot build the plugin author's venv: {exc}")


def run(venv, command, cwd, timeout=300):
    result = subprocess.run(
        command, cwd=cwd, env=clean_env(venv), capture_output=True, text=True, timeout=timeout
    )
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize("style", ["pluggy", "classic"])
def test_kit_new_plugin_passes_its_own_test_in_a_fresh_venv(venv, tmp_path, style):
    name = "my_plugin" if style == "pluggy" else "my_classic_plugin"
    new = ["reviewd", "new-plugin", name] + (["--classic"] if style == "classic" else [])
    code, output = run(venv, new, tmp_path)
    assert code == 0, output
    project = tmp_path / name
    source = (project / "src" / name / "__init__.py").read_text()
    assert (
        "import ftrack_api" in source and "def register(session" in source
        if style == "classic"
        else "@reviewd.hookimpl" in source
    )
    with exclusive():
        try:
            code, output = run(venv, ["pip", "install", "-q", "-e", "."], project)
            assert code == 0, output
            code, output = run(venv, ["pytest", "-v", "-p", "no:cacheprovider"], project)
            assert code == 0, output
            assert f"test_{name}_notes_a_status_change PASSED" in output
            assert "1 passed" in output
        finally:
            uninstall_plugins(name.replace("_", "-"))
