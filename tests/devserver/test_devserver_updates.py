"""Each committed batch publishes ONE ftrack.update event in the real server's wire form.

A raw socket.io 0.9 client (websocket-client + the pure packet codec) subscribes on the
DevServer's event route, so this checks exactly what crosses the wire.
"""

from __future__ import annotations

import json
import queue
import threading
import uuid

import pytest
import requests

from reviewd.devserver.seed import seed_id
from tests.conftest import require
from tests.devserver.conftest import Api

TASK = seed_id("Task", "SQ010", "SH010", "Lighting")
SHOT = seed_id("Shot", "SQ010", "SH010")
SEQUENCE = seed_id("Sequence", "SQ010")
PROJECT = seed_id("Project", "demo_production")


class RawSubscriber:
    """Subscribes to one topic and queues every event delivered for it."""

    def __init__(self, server, subscription: str) -> None:
        import websocket

        from reviewd.api.event import packet

        self.packet = packet
        response = requests.get(
            server.url + "/socket.io/1/",
            headers={"ftrack-user": server.api_user, "ftrack-api-key": server.api_key},
            timeout=10,
        )
        response.raise_for_status()
        handshake = packet.parse_handshake(response.text)
        url = (
            server.url.replace("http://", "ws://")
            + f"/socket.io/1/websocket/{handshake.session_id}"
        )
        self.socket = websocket.create_connection(url, timeout=10)
        self.events: queue.Queue = queue.Queue()
        self.acks: queue.Queue = queue.Queue()
        self.closed = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        subscribe = {
            "id": uuid.uuid4().hex,
            "topic": "ftrack.meta.subscribe",
            "data": {"subscriber": {"id": uuid.uuid4().hex}, "subscription": subscription},
            "source": {"id": "raw-test", "user": {"username": server.api_user}},
            "target": "",
            "sent": None,
            "inReplyToEvent": None,
        }
        self.socket.send(packet.encode(packet.event("ftrack.event", [subscribe], id="1+")))
        self.acks.get(timeout=10)  # subscribed

    def _read(self) -> None:
        packet = self.packet
        try:
            while True:
                text = self.socket.recv()
                if not text:
                    break
                decoded = packet.decode(text)
                if decoded.type == packet.PacketType.HEARTBEAT:
                    self.socket.send("2::")
                elif decoded.type == packet.PacketType.ACK:
                    self.acks.put(decoded)
                elif decoded.type == packet.PacketType.EVENT:
                    _name, args = packet.parse_event(decoded)
                    self.events.put(args[0])
        except Exception:
            pass
        finally:
            self.closed.set()

    def next_event(self, timeout: float = 10.0) -> dict:
        return self.events.get(timeout=timeout)

    def close(self) -> None:
        self.socket.close()
        self.closed.wait(5)


@pytest.fixture
def subscriber(devserver):
    require(devserver.events is not None, "the event server part is not installed")
    raw = RawSubscriber(devserver, "topic=ftrack.update")
    yield raw
    raw.close()


def _fixture(fixtures_dir, name):
    with open(f"{fixtures_dir}/events/{name}") as handle:
        return json.load(handle)


def test_status_change_event_matches_the_real_form(devserver, subscriber, fixtures_dir):
    expected = _fixture(fixtures_dir, "ftrack.update.task-status.json")
    api = Api(devserver)
    old = api.query(f"select status_id from Task where id is {TASK}")[0]["status_id"]
    new = (
        seed_id("Status", "Approved")
        if old != seed_id("Status", "Approved")
        else seed_id("Status", "Ready")
    )
    api.call(
        [
            {
                "action": "update",
                "entity_type": "Task",
                "entity_key": [TASK],
                "entity_data": {"__entity_type__": "Task", "status_id": new},
            }
        ]
    )
    event = subscriber.next_event()
    assert set(event) == set(expected)
    assert event["topic"] == "ftrack.update"
    assert event["source"]["user"] == {
        "username": devserver.api_user,
        "userid": seed_id("User", devserver.api_user),
    }
    (entity,) = event["data"]["entities"]
    assert set(entity) == set(expected["data"]["entities"][0])
    assert entity["action"] == "update" and entity["entityType"] == "task"
    assert entity["entity_type"] == "Task" and entity["entityId"] == TASK
    assert entity["objectTypeId"] == "11c137c0-ee7e-4f9c-91c5-8c77cec22b2c"
    assert entity["keys"] == ["statusid"]
    assert entity["changes"] == {"statusid": {"old": old, "new": new}}
    assert entity["parentId"] == SHOT
    assert [
        (p["entityId"], p["entityType"], p["entity_type"], p["parentId"]) for p in entity["parents"]
    ] == [
        (TASK, "task", "Task", SHOT),
        (SHOT, "task", "Shot", SEQUENCE),
        (SEQUENCE, "task", "Sequence", PROJECT),
        (PROJECT, "show", "Project", None),
    ]


def test_new_version_event_lists_added_keys_by_database_name(devserver, subscriber, fixtures_dir):
    expected = _fixture(fixtures_dir, "ftrack.update.version-added.json")["data"]["entities"][0]
    asset = seed_id("Asset", "SQ010", "SH010", "comp")
    api = Api(devserver)
    (reply,) = api.call(
        [
            {
                "action": "create",
                "entity_type": "AssetVersion",
                "entity_key": [None],
                "entity_data": {
                    "__entity_type__": "AssetVersion",
                    "asset_id": asset,
                    "version": 9,
                    "status_id": seed_id("Status", "Pending Review"),
                    "comment": "Lighting pass, ready for review",
                },
            }
        ]
    )
    event = subscriber.next_event()
    api_fixture = _fixture(fixtures_dir, "ftrack.update.version-added.json")
    assert event["source"]["applicationId"] == api_fixture["source"]["applicationId"]
    (entity,) = event["data"]["entities"]
    assert set(entity) == set(expected)
    assert entity["action"] == "add" and entity["entityType"] == "assetversion"
    assert entity["entityId"] == reply["data"]["id"]
    assert {"version", "assetid", "statusid", "comment"} <= set(entity["keys"])
    assert entity["changes"]["version"] == {"old": None, "new": "9"}
    assert entity["changes"]["assetid"] == {"old": None, "new": asset}
    assert [p["entityType"] for p in entity["parents"]] == [
        "assetversion",
        "asset",
        "task",
        "task",
        "show",
    ]


def test_one_event_per_batch_and_none_for_reads_or_failures(devserver, subscriber):
    api = Api(devserver)
    api.query("select id from Task")  # a read publishes nothing
    failed = api.call(
        [
            {
                "action": "update",
                "entity_type": "Shot",
                "entity_key": [SHOT],
                "entity_data": {"description": "a"},
            },
            {
                "action": "update",
                "entity_type": "Shot",
                "entity_key": [SHOT],
                "entity_data": {"bogus": 1},
            },
        ]
    )
    assert failed["exception"] == "UnknownAttributeError"
    api.call(
        [
            {
                "action": "update",
                "entity_type": "Shot",
                "entity_key": [SHOT],
                "entity_data": {"description": "b"},
            },
            {"action": "delete", "entity_type": "Task", "entity_key": [TASK]},
        ]
    )
    event = subscriber.next_event()
    actions = [(e["entity_type"], e["action"]) for e in event["data"]["entities"]]
    assert actions[0] == ("Shot", "update") and ("Task", "remove") in actions
    assert event["data"]["entities"][0]["changes"]["description"]["new"] == "b"
    with pytest.raises(queue.Empty):
        subscriber.events.get(timeout=0.5)  # exactly one event for the batch


# Types that belong to no project (site-wide settings, people, workflows): their chain is
# the entity alone.  Every other seeded type must reach the project through its parents.
SITE_WIDE = {
    "AssetType",
    "CustomAttributeConfiguration",
    "CustomAttributeGroup",
    "CustomAttributeType",
    "ListCategory",
    "Location",
    "NoteCategory",
    "NoteLabel",
    "ObjectType",
    "Priority",
    "ProjectSchema",
    "ProjectSchemaObjectType",
    "Schema",
    "SchemaStatus",
    "SchemaType",
    "State",
    "Status",
    "TaskTypeSchema",
    "TaskTypeSchemaType",
    "Type",
    "User",
    "WorkflowSchema",
    "WorkflowSchemaStatus",
}
VERSION = seed_id("AssetVersion", seed_id("Asset", "SQ010", "SH010", "comp"), "1")
SESSION = seed_id("ReviewSession", "dailies")


def _chain(entity: dict) -> list[tuple[str, str]]:
    """(entity_type, entityId) of each parent, checking the links on the way."""
    parents = entity["parents"]
    assert parents[0]["entityId"] == entity["entityId"]
    assert entity["parentId"] == (parents[1]["entityId"] if len(parents) > 1 else None)
    for child, parent in zip(parents, parents[1:], strict=False):
        assert child["parentId"] == parent["entityId"]
    assert parents[-1]["parentId"] is None
    return [(p["entity_type"], p["entityId"]) for p in parents]


def test_parents_reach_the_project_for_every_seeded_entity_type(devserver):
    from reviewd.devserver.updates import parent_chain

    store = devserver.store
    model = store.model
    seeded = {}
    for name, entity_type in sorted(model.types.items()):
        if len(entity_type.subtypes) > 1:
            continue  # a view over several types (Context, Component): each is checked alone
        (reply,) = devserver.execute_batch(
            [
                {
                    "action": "query",
                    "expression": f"select {', '.join(entity_type.primary_key)} "
                    f"from {name} limit 3",
                }
            ],
            devserver.api_user,
        )
        for found in reply["data"]:
            row = store.get_row(entity_type, [found[k] for k in entity_type.primary_key])
            concrete = model.types[row["__type__"]]
            seeded.setdefault(name, []).append(parent_chain(model, store, concrete, row))
    # The seed holds every kind the brief names, so this test covers them.
    assert {
        "ComponentLocation",
        "FileComponent",
        "Note",
        "ReviewSessionObject",
        "ReviewSessionObjectStatus",
        "ReviewSessionInvitee",
        "Metadata",
    } <= set(seeded)
    short = {}
    for name, chains in seeded.items():
        for chain in chains:
            for child, parent in zip(chain, chain[1:], strict=False):
                assert child["parentId"] == parent["entityId"], (name, chain)
            if name in SITE_WIDE:
                assert len(chain) == 1, (name, chain)
            elif chain[-1]["entity_type"] != "Project" or chain[-1]["parentId"] is not None:
                short[name] = [link["entity_type"] for link in chain]
    assert short == {}


def test_non_context_entities_carry_the_chain_up_to_the_project(devserver, subscriber):
    component = seed_id("Component", VERSION)
    rso = seed_id(
        "ReviewSessionObject",
        SESSION,
        seed_id("AssetVersion", seed_id("Asset", "SQ020", "SH010", "comp"), "2"),
    )
    api = Api(devserver)
    assert api.query(f"select id from ReviewSessionObject where id is {rso}")
    location_link, verdict = str(uuid.uuid4()), str(uuid.uuid4())
    api.call(
        [
            {
                "action": "create",
                "entity_type": "ComponentLocation",
                "entity_key": [location_link],
                "entity_data": {
                    "__entity_type__": "ComponentLocation",
                    "id": location_link,
                    "component_id": component,
                    "location_id": "ce9b348f-8809-11e3-821c-20c9d081909b",
                    "resource_identifier": "main.mov",
                },
            },
            {
                "action": "create",
                "entity_type": "ReviewSessionObjectStatus",
                "entity_key": [verdict],
                "entity_data": {
                    "__entity_type__": "ReviewSessionObjectStatus",
                    "id": verdict,
                    "status": "approved",
                    "review_session_object_id": rso,
                },
            },
        ]
    )
    event = subscriber.next_event()
    by_id = {entity["entityId"]: entity for entity in event["data"]["entities"]}
    assert _chain(by_id[location_link]) == [
        ("ComponentLocation", location_link),
        ("FileComponent", component),
        ("AssetVersion", VERSION),
        ("Asset", seed_id("Asset", "SQ010", "SH010", "comp")),
        ("Shot", SHOT),
        ("Sequence", SEQUENCE),
        ("Project", PROJECT),
    ]
    assert _chain(by_id[verdict]) == [
        ("ReviewSessionObjectStatus", verdict),
        ("ReviewSessionObject", rso),
        ("ReviewSession", SESSION),
        ("Project", PROJECT),
    ]
    assert by_id[verdict]["parents"][1]["entityType"] == "reviewsessionobject"


def test_remove_entries_list_the_removed_attributes_with_old_values(devserver, subscriber):
    api = Api(devserver)
    (before,) = api.query(
        f"select asset_id, task_id, status_id, version, comment from AssetVersion "
        f"where id is {VERSION}"
    )
    note = seed_id("Note", VERSION)
    api.call([{"action": "delete", "entity_type": "AssetVersion", "entity_key": [VERSION]}])
    event = subscriber.next_event()
    by_id = {entity["entityId"]: entity for entity in event["data"]["entities"]}
    version = by_id[VERSION]
    assert version["action"] == "remove"
    assert set(version["keys"]) == set(version["changes"])
    assert {"assetid", "taskid", "statusid", "version", "comment"} <= set(version["keys"])
    assert version["changes"]["assetid"] == {"old": before["asset_id"], "new": None}
    assert version["changes"]["statusid"] == {"old": before["status_id"], "new": None}
    assert version["changes"]["version"] == {"old": str(before["version"]), "new": None}
    assert version["changes"]["comment"] == {"old": before["comment"], "new": None}
    assert "versionid" not in version["keys"]  # the id is the entry's entityId
    # Descendants removed with it say what they were, and where they were.
    removed_note = by_id[note]
    assert removed_note["action"] == "remove"
    assert removed_note["changes"]["parent_id"] == {"old": VERSION, "new": None}
    assert removed_note["changes"]["text"] == {
        "old": "Edges are soft on the left side.",
        "new": None,
    }  # Note.content's database name
    assert _chain(removed_note)[1:3] == [
        ("AssetVersion", VERSION),
        ("Asset", seed_id("Asset", "SQ010", "SH010", "comp")),
    ]
    assert all(
        change["new"] is None for entity in by_id.values() for change in entity["changes"].values()
    )
    assert all(entity["keys"] for entity in by_id.values())


def test_api_originated_updates_do_not_claim_push_to_client(devserver, subscriber, fixtures_dir):
    # The web-originated fixture carries data.pushToClient; the API-originated one does not.
    assert "pushToClient" in _fixture(fixtures_dir, "ftrack.update.task-status.json")["data"]
    expected = _fixture(fixtures_dir, "ftrack.update.version-added.json")
    assert "pushToClient" not in expected["data"]
    Api(devserver).call(
        [
            {
                "action": "update",
                "entity_type": "Shot",
                "entity_key": [SHOT],
                "entity_data": {"description": "pushed?"},
            }
        ]
    )
    event = subscriber.next_event()
    assert set(event["data"]) == set(expected["data"]) == {"entities"}
