"""plugins/README.md's two smallest examples, copied verbatim out of the README, run
under the real daemon: the documentation cannot drift from what works."""

from __future__ import annotations

import pytest

from tests.plugins_e2e.harness import emit, fresh_session, readme_examples
from tests.plugins_e2e.helpers import wait_for

pytestmark = pytest.mark.slow


def test_plugins_readme_examples_run_under_the_daemon(server, make_daemon, tmp_path):
    assert sorted(readme_examples(tmp_path)) == ["hello_action", "log_versions"]
    daemon = make_daemon(server, paths=[str(tmp_path)])
    loaded = daemon.plugins()
    assert loaded["hello_action"]["loaded"] and loaded["hello_action"]["kind"] == "pluggy"
    assert loaded["log_versions"]["loaded"] and loaded["log_versions"]["kind"] == "classic"

    discovered = emit(server, "ftrack.action.discover", {"selection": []})
    assert discovered["items"] == [{"label": "Say hello", "actionIdentifier": "hello"}]
    reply = emit(server, "ftrack.action.launch", {"actionIdentifier": "hello", "selection": []})
    assert reply["success"] is True and reply["message"].startswith("Hello, ")

    session = fresh_session(server)
    template = session.query("select asset_id, task_id from AssetVersion").first()
    version = session.create(
        "AssetVersion",
        {
            "asset_id": template["asset_id"],
            "task_id": template["task_id"],
            "version": 99,
            "status": session.query('Status where name is "Pending Review"').one(),
        },
    )
    session.commit()
    wait_for(lambda: f"new version {version['id']}" in daemon.log(), what="log_versions to log")
