"""Acceptance: a classic plugin written for ftrack_api (``import ftrack_api``,
``register(session)``, the ``isinstance`` guard) is tested with the fixtures unchanged,
and so is test code written against ftrack_api."""

from __future__ import annotations

from tests.support import write_source

CLASSIC = """
import ftrack_api
import ftrack_api.event.base


def register(session, **kw):
    if not isinstance(session, ftrack_api.Session):
        return

    def discover(event):
        return {"items": [{"label": "Count tasks", "actionIdentifier": "count-tasks"}]}

    def launch(event):
        shot = event["data"]["shot"]
        tasks = session.query('Task where parent.name is "{}"'.format(shot)).all()
        return {"success": True, "message": "{} has {} tasks".format(shot, len(tasks))}

    def on_update(event):
        for entity in event["data"].get("entities", []):
            if entity.get("entityType") == "task" and "statusid" in entity.get("keys", []):
                task = session.get("Task", entity["entityId"])
                task["description"] = "status changed to " + task["status"]["name"]
                session.commit()

    session.event_hub.subscribe("topic=ftrack.action.discover", discover)
    session.event_hub.subscribe(
        "topic=ftrack.action.launch and data.actionIdentifier=count-tasks", launch)
    session.event_hub.subscribe("topic=ftrack.update", on_update)
"""


def test_kit_classic_plugin_answers_actions_unchanged(tmp_path, reviewd_plugin, emit):
    plugin = reviewd_plugin(write_source(tmp_path / "count_tasks.py", CLASSIC))
    assert plugin.record.kind == "classic" and len(plugin.record.subscriptions) == 3

    assert emit("ftrack.action.discover", {}) == {
        "items": [{"label": "Count tasks", "actionIdentifier": "count-tasks"}]
    }
    reply = emit("ftrack.action.launch", {"actionIdentifier": "count-tasks", "shot": "SH010"})
    assert reply["success"] is True and reply["message"].startswith("SH010 has ")
    assert int(reply["message"].split()[2]) > 0


def test_kit_classic_plugin_and_ftrack_api_test_code(
    tmp_path, ftrack_api_session, reviewd_plugin, wait_for
):
    import ftrack_api

    assert isinstance(ftrack_api_session, ftrack_api.Session)
    reviewd_plugin(write_source(tmp_path / "count_tasks.py", CLASSIC))
    # The test's own code is ftrack_api code too: query, set a status, commit.
    task = ftrack_api_session.query('Task where name is "lighting"').first()
    task["status"] = ftrack_api_session.query('Status where name is "On hold"').one()
    ftrack_api_session.commit()

    def description():
        fresh = ftrack_api_session.query(
            f'select description from Task where id is "{task["id"]}"'
        ).one()
        return fresh["description"] == "status changed to On hold"

    wait_for(description, message="the plugin to describe the status change")
