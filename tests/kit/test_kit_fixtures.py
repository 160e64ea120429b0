"""The fixtures against the real daemon machinery: a pluggy plugin reacting to a real
``ftrack.update``, an action answered through ``emit``, retries and dead letters."""

from __future__ import annotations

import pytest

from tests.support import write_source

STATUS_PLUGIN = """
import reviewd


@reviewd.hookimpl
def reviewd_register(session, registry, arguments):
    note_text = arguments.get("note", "seen")

    def on_update(event):
        for entity in event["data"].get("entities", []):
            if entity.get("entityType") != "task" or "statusid" not in entity.get("keys", []):
                continue
            task = session.get("Task", entity["entityId"])
            user = session.query("User where username is '{}'".format(session.api_user)).one()
            session.create("Note", {"content": note_text, "parent_id": task["id"],
                                    "parent_type": "Task", "user_id": user["id"]})
            session.commit()

    registry.subscribe("topic=ftrack.update", on_update)
"""

ACTION_PLUGIN = """
import reviewd


def launch(event):
    return {"success": True, "message": "Hello, " + event["source"]["user"]["username"]}


@reviewd.hookimpl
def reviewd_register(session, registry, arguments):
    registry.subscribe("topic=ftrack.action.launch and data.actionIdentifier=hello", launch)
"""

FAILING_PLUGIN = """
import reviewd


def launch(event):
    raise ValueError("no shot called " + event["data"]["shot"])


@reviewd.hookimpl
def reviewd_register(session, registry, arguments):
    registry.subscribe("topic=reviewd.test.fail", launch)
"""


def notes_on(session, task_id):
    return [
        n["content"]
        for n in session.query(f'select content from Note where parent_id is "{task_id}"').all()
    ]


def test_kit_plugin_reacts_to_a_real_status_change(
    tmp_path, ftrack_session, ftrack_changes, reviewd_plugin, wait_for
):
    plugin = reviewd_plugin(
        write_source(tmp_path / "noter.py", STATUS_PLUGIN), {"note": "status moved"}
    )
    task = ftrack_session.query("Task where name is 'compositing'").first()
    assert notes_on(ftrack_session, task["id"]) == []

    ftrack_changes.set_status(task, "In progress")

    assert wait_for(lambda: notes_on(ftrack_session, task["id"]), message="the plugin's note") == [
        "status moved"
    ]
    plugin.wait_idle()
    assert plugin.succeeded >= 1 and plugin.failed == 0
    assert plugin.record.kind == "pluggy"


def test_kit_emit_returns_the_reply(tmp_path, reviewd_plugin, emit):
    reviewd_plugin(write_source(tmp_path / "hello.py", ACTION_PLUGIN))
    reply = emit("ftrack.action.launch", {"actionIdentifier": "hello"}, source_user="jane")
    assert reply == {"success": True, "message": "Hello, jane"}


def test_kit_expected_failures_are_retried_then_dead_lettered(tmp_path, reviewd_plugin, emit):
    plugin = reviewd_plugin(
        write_source(tmp_path / "breaks.py", FAILING_PLUGIN),
        routing={"max_attempts": 2, "retry_backoff": 0.01},
        expect_failures=True,
    )
    emit("reviewd.test.fail", {"shot": "SH999"}, wait_reply=False)
    plugin.wait_idle()
    assert plugin.failed == 2 and plugin.dead_lettered == 1
    [dead] = plugin.dead_letters()
    assert dead.event["data"] == {"shot": "SH999"}
    assert dead.last_line == "ValueError: no shot called SH999"
    assert 'breaks.py", line 6, in launch' in dead.error
    assert "reviewd/daemon" not in dead.error and "frame(s) of reviewd hidden" in dead.error


def test_kit_unexpected_failure_fails_the_wait_with_event_and_traceback(
    tmp_path, reviewd_plugin, emit, wait_for, ftrack_server
):
    plugin = reviewd_plugin(write_source(tmp_path / "breaks.py", FAILING_PLUGIN))
    emit("reviewd.test.fail", {"shot": "SH777"}, wait_reply=False)
    with pytest.raises(AssertionError) as raised:
        wait_for(lambda: False, timeout=10, message="something that never comes")
    text = str(raised.value)
    assert "plugin 'breaks' raised while handling an event" in text
    assert "topic=reviewd.test.fail" in text and '"shot": "SH777"' in text
    assert "ValueError: no shot called SH777" in text
    assert "timed out" not in text
    # reported once: the retries of the same event failing again add nothing
    wait_for(lambda: plugin.failed >= 2, message="the first retry")
    assert ftrack_server.api_key not in text + repr(plugin) + repr(plugin.failures())
