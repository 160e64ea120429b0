"""Acceptance 2 and 3: a review workflow in one optimised batch; rollback; close."""

from __future__ import annotations

import threading
import warnings

import pytest

from reviewd.api.entity import state
from reviewd.api.exception import (
    ImmutableAttributeError,
    MultipleResultsFoundError,
    NoResultFoundError,
    NotFoundError,
    ServerError,
    UnrecognisedEntityTypeError,
)
from reviewd.api.symbol import CREATED, DELETED, MODIFIED, NOT_SET

OPEN_SESSION = 'ReviewSession where is_open is True and project.name is "demo_production"'


def test_review_workflow_commits_one_optimised_batch(devserver, connect):
    session = connect(devserver)
    review = session.query(OPEN_SESSION).one()
    objects = list(review["review_session_objects"])
    assert len(objects) == 4
    listing = {
        o["name"]: (
            o["asset_version"]["version"],
            o["asset_version"]["status"]["name"],
            sorted(s["status"] for s in o["statuses"]),
        )
        for o in objects
    }
    assert listing["SQ010_SH010_comp"] == (3, "Pending Review", ["approved"])
    assert listing["SQ010_SH020_comp"] == (2, "Pending Review", ["require_changes"])

    version = objects[0]["asset_version"]
    approved = session.query('Status where name is "Approved"').one()
    on_hold = session.query('Status where name is "On hold"').one()
    user = session.query(f'User where username is "{devserver.api_user}"').one()
    other_version = session.query(
        f'AssetVersion where asset_id is "{version["asset_id"]}" and version is 1'
    ).one()

    note = session.create(
        "Note",
        {
            "content": "draft",
            "author": user,
            "user_id": user["id"],
            "parent_id": version["id"],
            "parent_type": "AssetVersion",
        },
    )
    note["content"] = "Looks great, approved for DI."
    version["status"] = on_hold
    version["status"] = approved  # only the last value is sent
    scratch = session.create(
        "Note",
        {
            "content": "scratch",
            "user_id": user["id"],
            "parent_id": version["id"],
            "parent_type": "AssetVersion",
        },
    )
    session.delete(scratch)  # created and deleted: never sent
    new_object = session.create(
        "ReviewSessionObject",
        {
            "name": "SQ010_SH010_comp v001",
            "description": "For comparison",
            "version": "v001",
            "asset_version": other_version,
            "version_id": other_version["id"],
            "review_session": review,
            "review_session_id": review["id"],
            "sort_order": 4,
        },
    )
    assert state(note) is CREATED and state(version) is MODIFIED
    assert session.created == [note, new_object] and session.modified == [version]
    assert len(session.recorded_operations) == 7

    before = len(devserver.batches)
    session.commit()
    assert len(devserver.batches) == before + 1, "one request for the whole commit"
    batch = devserver.batches[-1]
    assert [(p["action"], p["entity_type"]) for p in batch] == [
        ("create", "Note"),
        ("update", "AssetVersion"),
        ("create", "ReviewSessionObject"),
    ]
    assert batch[0]["entity_key"] == [note["id"]]
    assert batch[0]["entity_data"]["content"] == "Looks great, approved for DI."
    assert batch[0]["entity_data"]["author"] == {"__entity_type__": "User", "id": user["id"]}
    assert batch[1]["entity_data"] == {
        "__entity_type__": "AssetVersion",
        "status": {"__entity_type__": "Status", "id": approved["id"]},
    }
    assert batch[2]["entity_data"]["review_session"] == {
        "__entity_type__": "ReviewSession",
        "id": review["id"],
    }
    assert not session.recorded_operations and state(note) is None and state(version) is None

    fresh = connect(devserver, schema_cache_path=False)
    stored = fresh.get("Note", note["id"])
    assert stored is not None and stored is not note
    assert stored["content"] == "Looks great, approved for DI."
    assert stored["parent_id"] == version["id"]
    assert fresh.get("AssetVersion", version["id"])["status"]["name"] == "Approved"
    names = [o["name"] for o in fresh.query(OPEN_SESSION).one()["review_session_objects"]]
    assert "SQ010_SH010_comp v001" in names and len(names) == 5


def test_failed_commit_then_rollback_leaves_session_consistent(devserver, connect):
    session = connect(devserver)
    task = session.query("select name from Task").first()
    old_name = task["name"]
    task["name"] = "renamed"
    bad = session.create("ReviewSessionObject", {"name": "no version"})  # required ids missing
    with pytest.raises(ServerError) as caught:
        session.commit()
    assert devserver.api_key not in str(caught.value)
    # Nothing local changed: the work can be fixed or rolled back.
    assert len(session.recorded_operations) == 2 and task["name"] == "renamed"
    session.rollback()
    assert not session.recorded_operations
    assert task["name"] == old_name and state(task) is None
    assert state(bad) is DELETED, "uncommitted entities are forgotten"
    assert session.created == [] and session.modified == []
    assert session.get("ReviewSessionObject", bad["id"]) is None
    # The batch was atomic on the server and the session still works.
    fresh = connect(devserver, schema_cache_path=False)
    assert fresh.get("Task", task["id"])["name"] == old_name
    task["name"] = "renamed for real"
    session.commit()
    assert connect(devserver, schema_cache_path=False).get("Task", task["id"])["name"] == (
        "renamed for real"
    )


def test_close_with_pending_operations_warns_and_keeps_committed(devserver, connect):
    session = connect(devserver)
    task = session.query("select name from Task").first()
    task["name"] = "committed"
    session.commit()
    task["name"] = "never sent"
    with pytest.warns(UserWarning, match="1 unsaved operation"):
        session.close()
    session.close()  # idempotent, no second warning
    assert connect(devserver).get("Task", task["id"])["name"] == "committed"


def test_close_without_pending_operations_is_silent(devserver_session, connect):
    session = connect(devserver_session)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        session.close()


def test_query_one_first_paging_and_iteration(devserver_session, connect):
    session = connect(devserver_session)
    tasks = session.query("select name from Task")
    before = devserver_session.action_counts["query"]
    everything = session.query("select name from Task", page_size=5).all()
    assert len(everything) == 18
    assert devserver_session.action_counts["query"] - before == 4, "18 results in pages of 5"
    assert [t["name"] for t in tasks] == [t["name"] for t in everything]
    assert (
        session.query("select name from Task offset 2 limit 3", page_size=2).all()
        == (everything[2:5])
    )
    assert session.query('Task where name is "nothing"').first() is None
    with pytest.raises(NoResultFoundError):
        session.query('Task where name is "nothing"').one()
    with pytest.raises(NotFoundError):  # ftrack's name and reviewd's
        session.query('Task where name is "nothing"').one()
    with pytest.raises(MultipleResultsFoundError):
        session.query("Task").one()
    with pytest.raises(ValueError, match="offset or limit"):
        session.query("Task limit 1").one()


def test_identity_and_merging_of_partial_results(devserver_session, connect):
    session = connect(devserver_session)
    a = session.query("select name from Task").first()
    b = session.query("select description, status.name from Task").first()
    assert a is b and a["name"] and a["description"] and a["status"]["name"]
    assert session.get("Task", a["id"]) is a


def test_auto_populate_is_batched(devserver_session, connect):
    session = connect(devserver_session)
    tasks = session.query("select name from Task").all()
    before = devserver_session.action_counts["query"]
    descriptions = [task["description"] for task in tasks]
    statuses = [task["status"]["name"] for task in tasks]
    assert all(descriptions) and all(statuses)
    # description, status, status.name: one query each for all 18 tasks.
    assert devserver_session.action_counts["query"] - before == 3


def test_collections_and_mapped_collections(devserver, connect):
    session = connect(devserver)
    shot = session.query('Shot where name is "SH010" and parent.name is "SQ010"').one()
    assert dict(shot["metadata"]) == {"frame_range": "1001-1060"}
    shot["metadata"]["frame_range"] = "1001-1100"
    shot["metadata"]["handles"] = "8"
    assert {task["name"] for task in shot["children"]} == {"animation", "lighting", "compositing"}
    session.commit()
    fresh = connect(devserver, schema_cache_path=False)
    again = fresh.get("Shot", shot["id"])
    assert dict(again["metadata"]) == {"frame_range": "1001-1100", "handles": "8"}


def test_new_entity_collections_are_empty_and_appendable(devserver, connect):
    session = connect(devserver)
    user = session.query(f'User where username is "{devserver.api_user}"').one()
    version = session.query("AssetVersion").first()
    note = session.create(
        "Note",
        {
            "content": "parent",
            "user_id": user["id"],
            "parent_id": version["id"],
            "parent_type": "AssetVersion",
        },
    )
    assert list(note["replies"]) == [] and note["category"] is NOT_SET
    before = devserver.action_counts["query"]
    assert dict(note["metadata"]) == {}
    assert devserver.action_counts["query"] == before, "nothing to fetch for a new entity"
    notes = version["notes"]
    count = len(notes)
    notes.append(note)
    assert len(version["notes"]) == count + 1 and note in version["notes"]
    with pytest.raises(ValueError, match="already in"):
        version["notes"].append(note)
    with pytest.raises(TypeError, match="holds entities"):
        version["notes"] = ["not an entity"]
    session.commit()
    fresh = connect(devserver, schema_cache_path=False)
    assert note["id"] in [n["id"] for n in fresh.get("AssetVersion", version["id"])["notes"]]


def test_ensure_creates_then_finds(devserver, connect):
    session = connect(devserver)
    created = session.ensure(
        "NoteCategory", {"name": "Supervisor", "color": "#ff0000"}, identifying_keys=["name"]
    )
    assert state(created) is None, "ensure commits"
    found = connect(devserver).ensure(
        "NoteCategory", {"name": "Supervisor", "color": "#00ff00"}, identifying_keys=["name"]
    )
    assert found["id"] == created["id"] and found["color"] == "#00ff00"


def test_attribute_errors_are_clear(devserver_session, connect):
    session = connect(devserver_session)
    task = session.query("Task").first()
    with pytest.raises(KeyError, match="no attribute 'nonsense'"):
        task["nonsense"]
    with pytest.raises(KeyError, match="no attribute"):
        task["nonsense"] = 1
    with pytest.raises(ImmutableAttributeError, match="Task.id"):
        task["id"] = "x"
    with pytest.raises(TypeError, match="references an entity"):
        task["status"] = "In progress"
    with pytest.raises(KeyError, match="no attribute 'bogus'"):
        session.create("Note", {"content": "x", "bogus": 1})
    with pytest.raises(ValueError, match="primary key value"):
        session.create("Metadata", {"value": "no key"})
    with pytest.raises(UnrecognisedEntityTypeError):
        session.create("NoSuchType", {})
    assert not session.recorded_operations, "bad input records nothing"
    assert session.created == [] and session.modified == []
    with pytest.raises(ValueError, match="primary key"):
        session.get("Task", ["a", "b"])
    with pytest.raises(UnrecognisedEntityTypeError, match="Nope"):
        session.query("Nope")


def test_recording_switches_and_operation_values(devserver_session, connect):
    session = connect(devserver_session)
    task = session.query("select name from Task").first()
    old = task["name"]
    with session.operation_recording(False):
        task["name"] = "silent"
    assert not session.recorded_operations and task["name"] == "silent"
    task["name"] = "loud"
    (operation,) = session.recorded_operations
    assert (operation.attribute_name, operation.old_value, operation.new_value) == (
        "name",
        "silent",
        "loud",
    )
    session.rollback()
    assert task["name"] == old
    del task["description"]
    with session.auto_populating(False):
        assert task["description"] is NOT_SET


def test_shared_between_threads(devserver_session, connect):
    session = connect(devserver_session)
    errors, seen = [], []

    def work():
        try:
            for task in session.query("select name, status.name from Task").all():
                seen.append(session.get("Task", task["id"]))
                assert task["parent"]["name"]
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert len({id(task) for task in seen}) == 18, "one object per entity across threads"
