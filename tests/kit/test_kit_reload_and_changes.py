"""The handle's reload (as hot reload does it), ``watch=True``, and the clear errors of
the change helpers."""

from __future__ import annotations

import os

import pytest

from tests.conftest import FIXTURES
from tests.support import write_source

VERSIONED = """
import reviewd


@reviewd.hookimpl
def reviewd_register(session, registry, arguments):
    registry.subscribe("topic=ftrack.action.launch and data.actionIdentifier=which",
                       lambda event: {"success": True, "message": "VERSION"})
"""


def write(path, version):
    return write_source(path, VERSIONED.replace("VERSION", version))


def which(emit):
    return emit("ftrack.action.launch", {"actionIdentifier": "which"})["message"]


def test_kit_reload_runs_the_new_code(tmp_path, reviewd_plugin, emit):
    path = write(tmp_path / "which.py", "one")
    plugin = reviewd_plugin(path)
    assert which(emit) == "one"
    write(path, "two")
    assert plugin.reload() is True
    assert which(emit) == "two"


def test_kit_watch_reloads_on_save(tmp_path, reviewd_plugin, emit, wait_for):
    path = write(tmp_path / "which.py", "one")
    reviewd_plugin(path, watch=True)
    assert which(emit) == "one"
    write(path, "six")
    wait_for(lambda: which(emit) == "six", timeout=15, message="the saved edit to be loaded")


def test_kit_changes_errors_say_what_exists(ftrack_changes):
    with pytest.raises(LookupError) as raised:
        ftrack_changes.status("Finished-ish")
    assert "no status named 'Finished-ish'; the server has: " in str(raised.value)
    assert "Approved" in str(raised.value)
    with pytest.raises(LookupError, match="expected one result for 'Asset where name is"):
        ftrack_changes.add_version("no_such_asset")


def test_kit_changes_make_the_expected_entities(ftrack_session, ftrack_changes):
    first = ftrack_changes.add_version("SQ010_SH030_comp")
    second = ftrack_changes.add_version("SQ010_SH030_comp", status="Approved")
    assert second["version"] == first["version"] + 1
    verdict = ftrack_changes.record_verdict(second, "approved", invitee="Ann Lead")
    again = ftrack_changes.record_verdict(second, "require_changes", invitee="Ann Lead")
    rows = ftrack_session.query(
        "select status, review_session_object.version_id, invitee.name from "
        f'ReviewSessionObjectStatus where id in ("{verdict["id"]}", "{again["id"]}")'
    ).all()
    assert sorted(r["status"] for r in rows) == ["approved", "require_changes"]
    assert {r["review_session_object"]["version_id"] for r in rows} == {second["id"]}
    assert {r["invitee"]["name"] for r in rows} == {"Ann Lead"}


SHARED_SCHEMAS = os.path.join(FIXTURES, "ftrack_schemas.json")


@pytest.mark.ftrack_server(seed="empty", schema=SHARED_SCHEMAS)
def test_kit_server_from_a_schema_file(fixtures_dir, ftrack_session):
    # fixtures_dir comes first: it skips (fails in CI) before the server needs the file
    assert len(ftrack_session.types) == 116
    assert ftrack_session.query("Project").all() == []


def test_kit_unknown_routing_setting_is_named(tmp_path, reviewd_plugin):
    with pytest.raises(TypeError, match="unknown routing setting 'max_atempts'; choose from"):
        reviewd_plugin(write(tmp_path / "which.py", "one"), routing={"max_atempts": 2})
