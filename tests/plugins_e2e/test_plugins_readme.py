"""plugins/README.md's two smallest examples, copied verbatim out of the README, run
under the daemon (``reviewd.testing``'s ``reviewd_plugin``): the documentation cannot
drift from what works."""

from __future__ import annotations

import logging

import pytest

from tests.plugins_e2e.harness import readme_examples

pytestmark = pytest.mark.slow


def test_plugins_readme_examples_run_under_the_daemon(
    tmp_path, reviewd_plugin, emit, ftrack_changes, wait_for, caplog
):
    assert sorted(readme_examples(tmp_path)) == ["hello_action", "log_versions"]
    hello = reviewd_plugin(tmp_path / "hello_action.py")
    versions = reviewd_plugin(tmp_path / "log_versions.py")
    assert (hello.record.kind, versions.record.kind) == ("pluggy", "classic")

    discovered = emit("ftrack.action.discover", {"selection": []})
    assert discovered["items"] == [{"label": "Say hello", "actionIdentifier": "hello"}]
    reply = emit(
        "ftrack.action.launch",
        {"actionIdentifier": "hello", "selection": []},
        source_user="jane.doe",
    )
    assert reply == {"success": True, "message": "Hello, jane.doe!"}

    with caplog.at_level(logging.INFO, logger="reviewd.plugins.log_versions"):
        version = ftrack_changes.add_version("SQ010_SH010_comp")
        wait_for(
            lambda: f"new version {version['id']}" in caplog.text,
            message="log_versions to log the new version",
        )
