"""Acceptance 2: committed changes through ``POST /api`` come out of the event server as
``ftrack.update`` events in the wire form of the shared fixtures."""

from __future__ import annotations

import json
import os
import uuid

import requests

from tests.devserver_events.devserver_events_support import RawClient, wait_until


def api(server, operations: list[dict]) -> list[dict]:
    response = requests.post(
        f"{server.url}/api",
        json=operations,
        timeout=30,
        headers={
            "ftrack-user": server.api_user,
            "ftrack-api-key": server.api_key,
            "content-type": "application/json",
            "accept": "application/json",
        },
    )
    result = response.json()
    assert isinstance(result, list), result
    return result


def query(server, expression: str) -> list[dict]:
    return api(server, [{"action": "query", "expression": expression}])[0]["data"]


def load_fixture(fixtures_dir, name: str) -> dict:
    with open(os.path.join(fixtures_dir, "events", name)) as handle:
        return json.load(handle)


def updates_about(client: RawClient, entity_id: str) -> list[dict]:
    return [
        e
        for e in client.events()
        if e["topic"] == "ftrack.update"
        and any(x["entityId"] == entity_id for x in e["data"]["entities"])
    ]


def assert_wire_form(event: dict, fixture: dict, server) -> None:
    assert set(event) == set(fixture)
    assert event["topic"] == "ftrack.update"
    assert event["target"] == "" and event["inReplyToEvent"] is None
    assert event["source"]["user"]["username"] == server.api_user
    for entity in event["data"]["entities"]:
        chain = entity["parents"]
        assert chain[0]["entityId"] == entity["entityId"]
        assert chain[-1]["entityType"] == "show" and chain[-1]["parentId"] is None
        for child, parent in zip(chain, chain[1:], strict=False):
            assert child["parentId"] == parent["entityId"]
        assert entity["parentId"] == (chain[1]["entityId"] if len(chain) > 1 else None)


def test_creating_a_note_on_a_version(devserver, fixtures_dir):
    fixture = load_fixture(fixtures_dir, "ftrack.update.version-added.json")
    version = query(devserver, "select id, asset_id from AssetVersion")[0]
    user = query(devserver, f'select id from User where username is "{devserver.api_user}"')[0]
    with RawClient(devserver) as listener:
        listener.subscribe("topic=ftrack.update")
        note_id = str(uuid.uuid4())
        api(
            devserver,
            [
                {
                    "action": "create",
                    "entity_type": "Note",
                    "entity_key": [note_id],
                    "entity_data": {
                        "__entity_type__": "Note",
                        "id": note_id,
                        "content": "Softer edges",
                        "parent_id": version["id"],
                        "parent_type": "AssetVersion",
                        "user_id": user["id"],
                    },
                }
            ],
        )
        wait_until(lambda: updates_about(listener, note_id), message="the note's update")
        [event] = updates_about(listener, note_id)
    assert_wire_form(event, fixture, devserver)
    [entity] = event["data"]["entities"]
    assert set(entity) >= set(fixture["data"]["entities"][0]) - {"objectTypeId"}
    assert entity["action"] == "add"
    assert entity["entityType"] == "note" and entity["entity_type"] == "Note"
    # Keyed by the database name (ftrack stores Note.content as ``text``).
    assert {"old": None, "new": "Softer edges"} in entity["changes"].values()
    assert set(entity["keys"]) == set(entity["changes"])
    assert entity["parents"][1]["entityId"] == version["id"]
    assert entity["parents"][1]["entityType"] == "assetversion"


def test_changing_a_task_status(devserver, fixtures_dir):
    fixture = load_fixture(fixtures_dir, "ftrack.update.task-status.json")
    task = query(devserver, "select id, status_id, parent_id from Task")[0]
    new_status = [
        s for s in query(devserver, "select id from Status") if s["id"] != task["status_id"]
    ][0]["id"]
    with RawClient(devserver) as listener:
        listener.subscribe("topic=ftrack.update")
        api(
            devserver,
            [
                {
                    "action": "update",
                    "entity_type": "Task",
                    "entity_key": [task["id"]],
                    "entity_data": {"__entity_type__": "Task", "status_id": new_status},
                }
            ],
        )
        wait_until(lambda: updates_about(listener, task["id"]), message="the task's update")
        [event] = updates_about(listener, task["id"])
    assert_wire_form(event, fixture, devserver)
    [entity] = event["data"]["entities"]
    expected = fixture["data"]["entities"][0]
    assert set(entity) == set(expected)
    assert entity["entityType"] == "task" and entity["entity_type"] == "Task"
    assert entity["objectTypeId"] == expected["objectTypeId"]  # ftrack's Task object type
    assert entity["action"] == "update" and entity["keys"] == ["statusid"]
    assert entity["changes"] == {"statusid": {"old": task["status_id"], "new": new_status}}
    assert entity["parentId"] == task["parent_id"]


def subtree(server, root_id: str) -> set[str]:
    found, frontier = {root_id}, [root_id]
    while frontier:
        current = frontier.pop()
        for child in query(server, f'select id from TypedContext where parent_id is "{current}"'):
            if child["id"] not in found:
                found.add(child["id"])
                frontier.append(child["id"])
    return found


def test_deleting_a_shot_removes_it_and_every_descendant(devserver):
    shots = query(devserver, "select id, name from Shot")
    shot = max(shots, key=lambda s: len(subtree(devserver, s["id"])))
    contexts = subtree(devserver, shot["id"])
    assert len(contexts) > 1, "the demo shot should have tasks"
    with RawClient(devserver) as listener:
        listener.subscribe("topic=ftrack.update")
        api(devserver, [{"action": "delete", "entity_type": "Shot", "entity_key": [shot["id"]]}])
        wait_until(lambda: updates_about(listener, shot["id"]), message="the shot's removal")
        events = updates_about(listener, shot["id"])
    assert len(events) == 1  # one event for the whole batch
    entities = events[0]["data"]["entities"]
    removed = [e["entityId"] for e in entities]
    assert all(e["action"] == "remove" for e in entities)
    assert len(removed) == len(set(removed))  # one entry per deleted entity
    assert contexts <= set(removed)  # the shot and every descendant context
    shot_entry = [e for e in entities if e["entityId"] == shot["id"]][0]
    assert shot_entry["entity_type"] == "Shot" and shot_entry["entityType"] == "task"
    assert shot_entry["parents"][-1]["entityType"] == "show"
    remaining = query(
        devserver,
        "select id from TypedContext where id in (" + ", ".join(f'"{i}"' for i in contexts) + ")",
    )
    assert remaining == []
