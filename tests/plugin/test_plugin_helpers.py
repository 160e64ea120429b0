"""``reviewd.plugin.helpers``: the helpers the example plugins share with plugin authors.

Server-side helpers run against the embedded server; the rest are pure.
"""

from __future__ import annotations

import datetime
import logging
import uuid

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from reviewd.api.exception import PluginError
from reviewd.plugin.helpers import (
    ActionLog,
    Verdict,
    current_user,
    entity_is,
    event_entities,
    latest_verdicts,
    newest_notes,
    normalise_verdict,
    object_verdicts,
    plugin_logger,
    resolve_statuses,
    status_changed,
)
from tests.support import fresh_session


def session_on(server):
    return fresh_session(server)


@pytest.fixture(scope="module")
def session(devserver_session):
    with session_on(devserver_session) as session:
        yield session


# ------------------------------------------------------------------ logging and counting
def test_plugin_logger_is_under_reviewd_plugins():
    assert plugin_logger("status_rollup").name == "reviewd.plugins.status_rollup"


def test_action_log_with_a_description_counts_in_prometheus_and_logs_plain_lines(caplog):
    actions = ActionLog("helper_test", "What the helper test did.")
    with caplog.at_level(logging.INFO, logger="reviewd.plugins.helper_test"):
        actions.count("added", "%s added to %r", "sh010 v003", "Dailies")
        actions.count("added", "%s added to %r", "sh020 v001", "Dailies")
        actions.count("skipped", "nothing to do")
    assert [r.getMessage() for r in caplog.records] == [
        "sh010 v003 added to 'Dailies'",
        "sh020 v001 added to 'Dailies'",
        "nothing to do",
    ]
    assert {r.name for r in caplog.records} == {"reviewd.plugins.helper_test"}
    assert actions.totals == {"added": 2, "skipped": 1}
    registry = CollectorRegistry()
    for collector in actions.collectors():
        registry.register(collector)
    exposed = generate_latest(registry).decode()
    assert 'reviewd_plugin_helper_test_actions_total{action="added"} 2.0' in exposed
    assert 'reviewd_plugin_helper_test_actions_total{action="skipped"} 1.0' in exposed
    assert "# HELP reviewd_plugin_helper_test_actions_total What the helper test did." in exposed


def test_action_log_without_a_description_puts_running_totals_in_the_line(caplog):
    logger = logging.getLogger("reviewd.plugins.classic_helper_test")
    actions = ActionLog("classic_helper_test", logger=logger)
    with caplog.at_level(logging.INFO, logger=logger.name):
        actions.count("added", "%s added", "v1")
        actions.count("added", "%s added", "v2")
    assert [r.getMessage() for r in caplog.records] == [
        "v1 added [added total: 1]",
        "v2 added [added total: 2]",
    ]
    assert actions.collectors() == []


def test_two_action_logs_of_one_plugin_do_not_collide():
    """A reloaded plugin builds a new one under the same name; nothing is registered
    globally, so that must not raise 'Duplicated timeseries'."""
    first = ActionLog("reloaded_plugin", "first")
    second = ActionLog("reloaded_plugin", "second")
    second.count("x", "x")
    assert first.totals == {} and second.totals == {"x": 1}


@pytest.mark.parametrize("name", ["", "has-dash", "has space", "café"])
def test_action_log_refuses_a_name_that_cannot_name_a_metric(name):
    with pytest.raises(ValueError, match="cannot name a metric"):
        ActionLog(name, "description")


# ------------------------------------------------------------------ configuration
def test_resolve_statuses_returns_ids_of_known_statuses(session):
    resolved = resolve_statuses(
        session, "p", {"approved_status": "Approved", "task_status": "Approved"}
    )
    approved = session.query('select id from Status where name is "Approved"').one()
    assert resolved == {"Approved": approved["id"]}


def test_resolve_statuses_names_the_argument_and_lists_known_statuses(session):
    known = sorted(s["name"] for s in session.query("select name from Status").all())
    with pytest.raises(PluginError) as raised:
        resolve_statuses(session, "my_plugin", {"approved_status": "Approved", "revert": "Wip"})
    message = str(raised.value)
    assert message == (
        f"my_plugin: argument revert: unknown status 'Wip'; known statuses: {', '.join(known)}"
    )
    assert "\n" not in message


def test_resolve_statuses_raises_the_plugins_own_error_type(session):
    with pytest.raises(ValueError, match="argument status: unknown status 'Nope'"):
        resolve_statuses(session, "classic", {"status": "Nope"}, error=ValueError)


# ------------------------------------------------------------------ events
UPDATE = {
    "topic": "ftrack.update",
    "data": {
        "entities": [
            {
                "entity_type": "AssetVersion",
                "action": "update",
                "entityId": "v1",
                "keys": ["statusid"],
            },
            {
                "entityType": "assetversion",
                "action": "add",
                "entityId": "v2",
                "changes": {"status_id": {}},
            },
            {"entity_type": "AssetVersion", "action": "remove", "entityId": "v3"},
            {
                "entity_type": "Task",
                "entityType": "task",
                "action": "update",
                "entityId": "t1",
                "keys": ["name"],
            },
        ]
    },
}


def test_event_entities_matches_either_type_spelling_and_filters_actions():
    assert [e["entityId"] for e in event_entities(UPDATE, "AssetVersion")] == ["v1", "v2"]
    assert [e["entityId"] for e in event_entities(UPDATE, "AssetVersion", None)] == [
        "v1",
        "v2",
        "v3",
    ]
    assert [e["entityId"] for e in event_entities(UPDATE, "AssetVersion", ("remove",))] == ["v3"]
    assert [e["entityId"] for e in event_entities(UPDATE, "Task")] == ["t1"]
    assert event_entities({"topic": "ftrack.update"}, "Task") == []
    assert event_entities({"data": {"entities": None}}, "Task") == []


def test_entity_is_and_status_changed():
    v1, v2, v3, t1 = UPDATE["data"]["entities"]
    assert entity_is(v2, "AssetVersion") and not entity_is(t1, "AssetVersion")
    assert status_changed(v1) and status_changed(v2)
    assert not status_changed(v3) and not status_changed(t1)


# ------------------------------------------------------------------ server data
def test_current_user_is_the_api_user(session):
    user = current_user(session)
    expected = session.query(f'select id from User where username is "{session.api_user}"').one()
    assert user["id"] == expected["id"]


def test_newest_notes_are_the_plugins_own_latest(devserver):
    with session_on(devserver) as session:
        version = session.query("select id from AssetVersion").first()
        author = current_user(session)
        marker = f"# helper test {uuid.uuid4().hex[:6]}: "
        assert newest_notes(session, version["id"], marker) == []
        base = datetime.datetime(2026, 11, 26, 10, 0, tzinfo=datetime.timezone.utc)
        for minutes, content in [
            (0, marker + "first"),
            (5, marker + "second"),
            (5, marker + "second, same second"),
            (9, "someone else's later note"),
        ]:
            session.create(
                "Note",
                {
                    "content": content,
                    "author": author,
                    "parent_id": version["id"],
                    "parent_type": "AssetVersion",
                    "date": base + datetime.timedelta(minutes=minutes),
                },
            )
        session.commit()
    with session_on(devserver) as fresh:
        assert sorted(newest_notes(fresh, version["id"], marker)) == [
            marker + "second",
            marker + "second, same second",
        ]


def test_object_verdicts_reads_each_invitees_latest_verdict_from_the_server(devserver):
    with session_on(devserver) as session:
        judged = {
            row["review_session_object_id"]
            for row in session.query(
                "select review_session_object_id from ReviewSessionObjectStatus"
            )
        }
        unjudged = [
            review_object
            for review_object in session.query(
                "select id, review_session_id from ReviewSessionObject"
            )
            if review_object["id"] not in judged
        ]
        assert unjudged, "the demo seed has a review object without verdicts"
        review_object = unjudged[0]
        ann, bob = (
            session.create(
                "ReviewSessionInvitee",
                {
                    "review_session_id": review_object["review_session_id"],
                    "name": name,
                    "email": f"{name}@studio",
                },
            )
            for name in ("ann", "bob")
        )
        session.commit()
        for invitee, status, at in [
            (ann, "require_changes", "2026-11-26T10:00:00+00:00"),
            (ann, "Approved", "2026-11-26T11:00:00+00:00"),
            (bob, "requires changes", "2026-11-26T09:00:00+00:00"),
            (None, "approve", "2026-11-26T09:30:00+00:00"),
        ]:
            session.create(
                "ReviewSessionObjectStatus",
                {
                    "review_session_object_id": review_object["id"],
                    "review_session_invitee_id": invitee["id"] if invitee else "not-invited",
                    "status": status,
                    "created_at": at,
                },
            )
        session.commit()
        names = {ann["id"]: "Ann", bob["id"]: "Bob"}
    with session_on(devserver) as fresh:
        latest = object_verdicts(fresh, review_object["id"], names)
    assert latest == {"Ann": "approved", "Bob": "require_changes", "unknown invitee": "approved"}


# ------------------------------------------------------------------ review verdicts
@pytest.mark.parametrize(
    "spelling, verdict",
    [
        ("approved", "approved"),
        ("Approved", "approved"),
        (" approve ", "approved"),
        ("require_changes", "require_changes"),
        ("Requires changes", "require_changes"),
        ("changes-requested", "require_changes"),
        ("Seen It", "seen_it"),
        (None, ""),
    ],
)
def test_normalise_verdict(spelling, verdict):
    assert normalise_verdict(spelling) == verdict


def test_latest_verdicts_keeps_each_invitees_last_word_normalised():
    recorded = [
        Verdict("ann", "require_changes", "2026-01-01T10:00:00"),
        Verdict("ann", "Approved", "2026-01-01T11:00:00"),
        Verdict("bob", "approve", "2026-01-01T09:00:00"),
        Verdict("bob", "changes requested", "2026-01-01T09:00:00"),  # tie: later record wins
        Verdict("cy", "approved", "2026-01-01T12:00:00"),
        Verdict("cy", "require_changes", "2026-01-01T08:00:00"),  # older, arrives late
    ]
    assert latest_verdicts(recorded) == {
        "ann": "approved",
        "bob": "require_changes",
        "cy": "approved",
    }
