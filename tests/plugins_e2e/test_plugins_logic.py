"""Unit tests of the plugins' pure decisions: no server, no daemon."""

from __future__ import annotations

import datetime
import json
import os

import pytest

from reviewd.api.exception import PluginError
from tests.plugins_e2e.helpers import load_plugin_module

verdicts = load_plugin_module("verdicts_to_status")
to_review = load_plugin_module("version_to_review")
digest = load_plugin_module("review_digest")
rollup = load_plugin_module("status_rollup")


# ------------------------------------------------------------------ verdicts to status
def test_any_require_changes_wins_over_approvals():
    latest = {"ann": "approved", "bob": "require_changes", "cy": "approved"}
    assert verdicts.decide(latest, invitee_count=3, quorum=None) == "changes"


def test_approval_needs_every_invitee_by_default():
    assert verdicts.decide({"ann": "approved"}, invitee_count=2, quorum=None) is None
    both = {"ann": "approved", "bob": "approved"}
    assert verdicts.decide(both, invitee_count=2, quorum=None) == "approved"


def test_quorum_approves_before_everyone_voted_and_is_capped_to_invitees():
    assert verdicts.decide({"ann": "approved"}, invitee_count=3, quorum=1) == "approved"
    assert verdicts.decide({"ann": "approved"}, invitee_count=3, quorum=2) is None
    assert verdicts.decide({"ann": "approved"}, invitee_count=1, quorum=5) == "approved"


def test_no_invitees_never_approves():
    assert verdicts.decide({}, invitee_count=0, quorum=None) is None


def test_latest_verdict_per_invitee_counts_and_spellings_are_normalised():
    recorded = [
        verdicts.Verdict("ann", "require_changes", "2026-01-01T10:00:00"),
        verdicts.Verdict("ann", "Approved", "2026-01-01T11:00:00"),
        verdicts.Verdict("bob", "requires changes", "2026-01-01T09:00:00"),
    ]
    assert verdicts.latest_verdicts(recorded) == {"ann": "approved", "bob": "require_changes"}


def test_note_is_deterministic_and_names_everyone():
    latest = {"bob": "require_changes", "ann": "approved"}
    one = verdicts.render_note("sh010_comp v003", "Dailies", latest, "changes", "Requires changes")
    two = verdicts.render_note(
        "sh010_comp v003", "Dailies", dict(reversed(latest.items())), "changes", "Requires changes"
    )
    assert one == two
    assert one.startswith(verdicts.NOTE_PREFIX)
    assert "- ann: approved" in one and "- bob: require changes" in one


@pytest.mark.parametrize("value, expected", [("all", None), (None, None), (2, 2), ("3", 3)])
def test_quorum_argument(value, expected):
    assert verdicts.parse_quorum(value) == expected


@pytest.mark.parametrize("value", [0, -1, "most", True, 1.5])
def test_bad_quorum_is_a_plugin_error_naming_the_argument(value):
    with pytest.raises(PluginError, match="quorum"):
        verdicts.parse_quorum(value)


def test_verdict_settings_reject_an_empty_version_status():
    with pytest.raises(PluginError, match="approved_status"):
        verdicts.parse_settings({"approved_status": "  "})
    assert verdicts.parse_settings({"changes_task_status": ""}).status_names().keys() == {
        "changes_status",
        "approved_status",
        "approved_task_status",
    }


def test_verdict_events_are_picked_from_ftrack_update():
    event = {
        "topic": "ftrack.update",
        "data": {
            "entities": [
                {"entityId": "a", "entity_type": "ReviewSessionObjectStatus", "action": "add"},
                {"entityId": "b", "entityType": "reviewsessionobjectstatus", "action": "update"},
                {"entityId": "c", "entity_type": "ReviewSessionObjectStatus", "action": "remove"},
                {"entityId": "d", "entity_type": "Task", "action": "update"},
            ]
        },
    }
    assert verdicts.review_status_entities(event) == ["a", "b"]


# ------------------------------------------------------------------ version to review
def test_session_name_pattern():
    day = datetime.date(2026, 11, 26)
    assert to_review.session_name("Dailies {date}", day, "Demo") == "Dailies 2026-11-26"
    assert (
        to_review.session_name("{project} review {date}", day, "Demo") == "Demo review 2026-11-26"
    )


@pytest.mark.parametrize("pattern", ["Dailies {day}", "Dailies {0}", "Dailies {date", ""])
def test_bad_name_pattern_is_refused(pattern):
    with pytest.raises(ValueError, match="name_pattern"):
        to_review.check_name_pattern(pattern)


def test_membership_replaces_older_versions_of_the_asset():
    assert to_review.plan_membership("v3", 3, {"o1": 1, "o2": 2}, True) == (True, ["o1", "o2"])


def test_membership_never_adds_an_older_version_over_a_newer_one():
    assert to_review.plan_membership("v2", 2, {"o3": 3}, True) == (False, [])


def test_membership_keeps_previous_versions_when_configured():
    assert to_review.plan_membership("v3", 3, {"o2": 2}, False) == (True, [])


def test_status_entered_needs_a_version_status_change(fixtures_dir):
    with open(os.path.join(fixtures_dir, "events", "ftrack.update.version-added.json")) as f:
        added = json.load(f)["data"]["entities"][0]
    with open(os.path.join(fixtures_dir, "events", "ftrack.update.task-status.json")) as f:
        task = json.load(f)["data"]["entities"][0]
    assert to_review.status_entered(added)
    assert not to_review.status_entered(task)
    assert not to_review.status_entered(
        {**added, "action": "update", "keys": ["comment"], "changes": {}}
    )


# ------------------------------------------------------------------ review digest
def _digest():
    versions = [
        {
            "name": "sh010_comp v003",
            "version_id": "v1",
            "status": "Pending Review",
            "verdicts": [{"invitee": "Ann", "verdict": "approved"}],
            "notes": [{"author": "ann", "content": "Lovely\nwork"}],
        },
        {
            "name": "sh020_comp v001",
            "version_id": "v2",
            "status": "Requires changes",
            "verdicts": [
                {"invitee": "Ann", "verdict": "approved"},
                {"invitee": "Bob", "verdict": "require_changes"},
            ],
            "notes": [],
        },
        {
            "name": "sh030_comp v002",
            "version_id": "v3",
            "status": "Pending Review",
            "verdicts": [],
            "notes": [],
        },
    ]
    return {
        "review_session": {"id": "rs1", "name": "Dailies 2026-11-26", "project": "Demo"},
        "summary": digest.summarise(versions, invitee_count=1),
        "versions": versions,
    }


def test_digest_summary_counts():
    assert _digest()["summary"] == {
        "versions": 3,
        "approved": 1,
        "require_changes": 1,
        "awaiting": 1,
    }


def test_digest_counts_a_version_approved_only_when_every_invitee_approved():
    versions = _digest()["versions"]
    assert digest.summarise(versions, invitee_count=2) == {
        "versions": 3,
        "approved": 0,
        "require_changes": 1,
        "awaiting": 2,
    }


def test_digest_markdown_lists_versions_verdicts_and_notes():
    text = digest.render_markdown(_digest())
    assert text.startswith("# Review digest: Dailies 2026-11-26\n")
    assert "3 version(s): 1 approved, 1 with changes requested, 1 awaiting verdicts." in text
    assert "## sh020_comp v001 (Requires changes)" in text
    assert "- Bob: require changes" in text
    assert "  - note by ann: Lovely work" in text
    assert "## sh030_comp v002 (Pending Review)\n\n- no verdicts yet" in text
    assert text == digest.render_markdown(_digest())


def test_digest_webhook_payload_carries_text_and_structure():
    data = _digest()
    payload = digest.webhook_payload(data, "md")
    assert payload["text"] == "md"
    assert payload["digest"]["versions"][1]["verdicts"][1] == {
        "invitee": "Bob",
        "verdict": "require_changes",
    }


def test_digest_file_name():
    assert (
        digest.file_name("Dailies 2026-11-26", "eb16970c-5fc6") == "dailies-2026-11-26-eb16970c.md"
    )


def test_digest_action_only_for_a_single_review_session(fixtures_dir):
    with open(os.path.join(fixtures_dir, "events", "ftrack.action.discover.json")) as f:
        event = json.load(f)
    assert digest.selected_review_session(event) == "eb16970c-5fc6-11e2-bb9a-f23c91df25eb"
    event["data"]["selection"][0]["entityType"] = "task"
    assert digest.selected_review_session(event) is None
    event["data"]["selection"] = []
    assert digest.selected_review_session(event) is None


def test_digest_settings_refuse_a_missing_folder(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(PluginError, match=f"folder: {missing} does not exist"):
        digest.parse_settings({"folder": str(missing)})
    assert digest.parse_settings({"folder": str(tmp_path)}).folder == str(tmp_path)


@pytest.mark.parametrize("url", ["ftp://x/y", "localhost:8000", 42])
def test_digest_settings_refuse_a_bad_webhook(url):
    with pytest.raises(PluginError, match="webhook_url"):
        digest.parse_settings({"webhook_url": url})


# ------------------------------------------------------------------ status roll-up
S = rollup.Settings()


def test_rollup_completes_the_parent_when_all_tasks_are_done():
    assert rollup.rollup(["Approved", "approved"], "In progress", S) == "Approved"


def test_rollup_leaves_a_completed_parent_alone():
    assert rollup.rollup(["Approved"], "Approved", S) is None


def test_rollup_reverts_when_a_task_leaves():
    assert rollup.rollup(["Approved", "In progress"], "Approved", S) == "In progress"


def test_rollup_does_not_touch_a_parent_in_another_status():
    assert rollup.rollup(["Approved", "In progress"], "On Hold", S) is None
    assert rollup.rollup([], "In progress", S) is None


def test_rollup_settings_refuse_an_impossible_revert():
    with pytest.raises(PluginError, match="could never go back"):
        rollup.parse_settings({"parent_status": "Done", "revert_status": "done"})
    with pytest.raises(PluginError, match="parent_types"):
        rollup.parse_settings({"parent_types": [1]})


def test_rollup_reacts_to_task_status_changes_only(fixtures_dir):
    with open(os.path.join(fixtures_dir, "events", "ftrack.update.task-status.json")) as f:
        event = json.load(f)
    assert rollup.changed_task_parents(event) == ["cb92066e-9811-11e1-b32d-f23c91df25eb"]
    event["data"]["entities"][0]["keys"] = ["name"]
    event["data"]["entities"][0]["changes"] = {"name": {"old": "a", "new": "b"}}
    assert rollup.changed_task_parents(event) == []
