"""The hub against the full embedded DevServer: ftrack.update events from real commits."""

from __future__ import annotations

from reviewd.api.event.hub import EventHub
from tests.event.event_harness import wait_for


def test_hub_receives_ftrack_update_from_a_committed_batch(devserver):
    hub = EventHub(devserver.url, devserver.api_user, devserver.api_key, dispatch_thread=True)
    updates = []
    hub.subscribe("topic=ftrack.update", updates.append)
    hub.connect(timeout=10)
    try:
        found = devserver.execute_batch(
            [{"action": "query", "expression": "select id, name from Task limit 1"}],
            devserver.api_user,
        )
        task = found[0]["data"][0]
        devserver.execute_batch(
            [
                {
                    "action": "update",
                    "entity_type": "Task",
                    "entity_key": [task["id"]],
                    "entity_data": {"__entity_type__": "Task", "name": "renamed-by-hub-test"},
                }
            ],
            devserver.api_user,
        )
        wait_for(lambda: updates, message="the ftrack.update event")
    finally:
        hub.disconnect()
    event = updates[0]
    assert event["topic"] == "ftrack.update"
    entities = event["data"]["entities"]
    assert any(entity.get("entityId") == task["id"] for entity in entities)
    assert "in_reply_to_event" in event and "inReplyToEvent" not in event
