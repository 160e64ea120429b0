"""Acceptance (issue 12, point 3): ``ftrack.update`` for a custom attribute change and for
a component upload, in the shape real servers send.

What the shape is based on: the shared ``fixtures/events/ftrack.update.*.json`` give the
envelope, the entity entry and the ``parents`` chain.  A custom attribute change is not
an entity of its own in real events: it arrives as an ``update`` of the entity that owns
the value (``entityType: task`` for a Shot), with the attribute's *key* in ``keys`` and
``changes`` — which is how studio event handlers (``'fstart' in entity['keys']``)
recognise it.  An upload through the official client is a batch that adds a
``FileComponent`` (``entityType: component``) under its version and a
``ComponentLocation`` in ``ftrack.server``; the bytes themselves travel outside ``/api``.
"""

from __future__ import annotations

import uuid

from tests.devserver_events.devserver_events_support import RawClient, wait_until
from tests.devserver_events.test_devserver_events_updates import (
    api,
    assert_wire_form,
    load_fixture,
    query,
    updates_about,
)

SERVER_LOCATION = "3a372bde-05bc-11e4-8908-20c9d081909b"


def test_custom_attribute_change_is_an_update_of_its_owner(devserver, fixtures_dir):
    fixture = load_fixture(fixtures_dir, "ftrack.update.task-status.json")
    shot = query(devserver, "select id, parent_id, object_type_id from Shot")[0]
    [config] = query(devserver, 'select id from CustomAttributeConfiguration where key is "fend"')
    with RawClient(devserver) as listener:
        listener.subscribe("topic=ftrack.update")
        api(
            devserver,
            [
                {
                    "action": "update",
                    "entity_type": "ContextCustomAttributeValue",
                    "entity_key": [config["id"], shot["id"]],
                    "entity_data": {
                        "__entity_type__": "ContextCustomAttributeValue",
                        "value": 1234,
                    },
                }
            ],
        )
        wait_until(lambda: updates_about(listener, shot["id"]), message="the shot's update")
        [event] = updates_about(listener, shot["id"])
    assert_wire_form(event, fixture, devserver)
    [entity] = event["data"]["entities"]
    assert set(entity) == set(fixture["data"]["entities"][0])
    assert entity["action"] == "update"
    assert entity["entityType"] == "task" and entity["entity_type"] == "Shot"
    assert entity["objectTypeId"] == shot["object_type_id"]
    assert entity["keys"] == ["fend"]
    old = entity["changes"]["fend"]["old"]
    assert old is not None and int(old) > 1000  # the demo seed's frame end, as a string
    assert entity["changes"]["fend"]["new"] == "1234"
    assert entity["parentId"] == shot["parent_id"]


def test_a_refused_custom_attribute_value_publishes_nothing_and_writes_nothing(devserver):
    shot = query(devserver, "select id from Shot")[0]
    [config] = query(devserver, 'select id from CustomAttributeConfiguration where key is "fend"')
    before = query(
        devserver,
        f"select custom_attributes.value, custom_attributes.key "
        f'from Shot where id is "{shot["id"]}"',
    )
    with RawClient(devserver) as listener:
        listener.subscribe("topic=ftrack.update")
        reply = api_error(
            devserver,
            [
                {
                    "action": "update",
                    "entity_type": "ContextCustomAttributeValue",
                    "entity_key": [config["id"], shot["id"]],
                    "entity_data": {
                        "__entity_type__": "ContextCustomAttributeValue",
                        "value": "not a number",
                    },
                }
            ],
        )
        # A later, valid change is the first event the listener sees about the shot.
        api(
            devserver,
            [
                {
                    "action": "update",
                    "entity_type": "Shot",
                    "entity_key": [shot["id"]],
                    "entity_data": {"__entity_type__": "Shot", "description": "ok"},
                }
            ],
        )
        wait_until(lambda: updates_about(listener, shot["id"]), message="the valid update")
        assert [e["data"]["entities"][0]["keys"] for e in updates_about(listener, shot["id"])] == [
            ["description"]
        ]
    assert reply["exception"] == "ValidationError"
    assert "number" in reply["content"] and "fend" in reply["content"]
    after = query(
        devserver,
        f"select custom_attributes.value, custom_attributes.key "
        f'from Shot where id is "{shot["id"]}"',
    )
    assert after == before


def api_error(server, operations):
    import requests

    response = requests.post(
        f"{server.url}/api",
        json=operations,
        timeout=30,
        headers={"ftrack-user": server.api_user, "ftrack-api-key": server.api_key},
    )
    body = response.json()
    assert isinstance(body, dict), body
    return body


def test_component_upload_events(devserver, fixtures_dir):
    fixture = load_fixture(fixtures_dir, "ftrack.update.version-added.json")
    version = query(devserver, "select id, asset_id from AssetVersion")[0]
    component_id, location_id = str(uuid.uuid4()), str(uuid.uuid4())
    with RawClient(devserver) as listener:
        listener.subscribe("topic=ftrack.update")
        api(
            devserver,
            [
                {
                    "action": "create",
                    "entity_type": "FileComponent",
                    "entity_key": [component_id],
                    "entity_data": {
                        "__entity_type__": "FileComponent",
                        "id": component_id,
                        "name": "main",
                        "file_type": ".mov",
                        "size": 12,
                        "version_id": version["id"],
                    },
                },
                {
                    "action": "create",
                    "entity_type": "ComponentLocation",
                    "entity_key": [location_id],
                    "entity_data": {
                        "__entity_type__": "ComponentLocation",
                        "id": location_id,
                        "component_id": component_id,
                        "location_id": SERVER_LOCATION,
                        "resource_identifier": component_id,
                    },
                },
            ],
        )
        wait_until(lambda: updates_about(listener, component_id), message="the upload's update")
        [event] = updates_about(listener, component_id)
    assert_wire_form(event, fixture, devserver)
    component, component_location = event["data"]["entities"]
    assert set(component) == set(fixture["data"]["entities"][0])
    assert component["action"] == "add"
    assert component["entityType"] == "component" and component["entity_type"] == "FileComponent"
    assert component["changes"]["name"] == {"old": None, "new": "main"}
    assert component["changes"]["filetype"] == {"old": None, "new": ".mov"}
    assert [p["entityType"] for p in component["parents"][:3]] == [
        "component",
        "assetversion",
        "asset",
    ]
    assert component["parentId"] == version["id"]
    assert component_location["entity_type"] == "ComponentLocation"
    assert component_location["action"] == "add"
    assert component_location["parentId"] == component_id
