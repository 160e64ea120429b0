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

        from reviewd.event import packet

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
