"""``reviewd devserver emit`` reaches a running event server in another process.

The command runs as a real subprocess against the event server of this test process;
a raw socket.io client plays the plugin that answers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import requests

from tests.devserver_events.devserver_events_support import RawClient, wait_until, wire_event

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_emit(*args: str, env: dict | None = None, timeout: float = 60):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FTRACK_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "reviewd.devserver.emit", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def credentials(app) -> list[str]:
    return ["--server", app.url, "--api-user", app.api_user, "--api-key", app.api_key]


def answer_one(client: RawClient, topic: str, data: dict) -> threading.Thread:
    def answer():
        event = client.wait_event(lambda e: e["topic"] == topic, timeout=30)
        client.publish(
            wire_event(
                "ftrack.meta.reply",
                data,
                target=f"id={event['source']['id']}",
                inReplyToEvent=event["id"],
            )
        )

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    return thread


def test_emit_prints_the_reply_of_a_subscribed_plugin(event_app):
    with RawClient(event_app) as plugin:
        plugin.subscribe("topic=ftrack.action.discover")
        answer_one(
            plugin,
            "ftrack.action.discover",
            {"items": [{"label": "Review digest", "actionIdentifier": "digest"}]},
        )
        done = run_emit(
            "ftrack.action.discover",
            "--data",
            '{"selection": []}',
            "--wait-reply",
            "20",
            *credentials(event_app),
        )
        assert done.returncode == 0, done.stderr
        reply = json.loads(done.stdout)
        assert reply["topic"] == "ftrack.meta.reply"
        assert reply["data"]["items"][0]["actionIdentifier"] == "digest"
        sent = plugin.events()[0]
        assert sent["data"] == {"selection": []}
        assert sent["source"]["applicationId"] == "ftrack.client.web"
        assert reply["inReplyToEvent"] == sent["id"]


def test_emit_reads_ftrack_environment_and_honours_target(event_app):
    with RawClient(event_app) as nuke, RawClient(event_app) as maya:
        nuke.subscribe("topic=ftrack.action.launch", applicationId="nuke")
        maya.subscribe("topic=ftrack.action.launch", applicationId="maya")
        env = {
            "FTRACK_SERVER": event_app.url,
            "FTRACK_API_USER": event_app.api_user,
            "FTRACK_APIKEY": event_app.api_key,
        }
        done = run_emit(
            "emit",
            "ftrack.action.launch",
            "--data",
            '{"n": 1}',
            "--target",
            "applicationId=maya",
            env=env,
        )
        assert done.returncode == 0, done.stderr
        printed = json.loads(done.stdout)
        maya.wait_event(lambda e: e["id"] == printed["id"])
        event_app.publish(wire_event("ftrack.action.launch", {"n": 2}))
        nuke.wait_event(lambda e: e["data"] == {"n": 2})
        assert [e["data"] for e in nuke.events()] == [{"n": 2}]


def test_emit_without_reply_exits_1_with_a_clear_message(event_app):
    done = run_emit("ftrack.action.discover", "--wait-reply", "0.3", *credentials(event_app))
    assert done.returncode == 1
    assert "no reply to ftrack.action.discover within 0.3 s" in done.stderr
    assert done.stdout == ""


def test_emit_bad_input_is_refused_and_nothing_is_sent(event_app):
    with RawClient(event_app) as listener:
        listener.subscribe("topic=*")
        bad_json = run_emit("x.topic", "--data", "{oops", *credentials(event_app))
        assert bad_json.returncode == 65 and "not valid JSON" in bad_json.stderr
        not_object = run_emit("x.topic", "--data", "[1]", *credentials(event_app))
        assert not_object.returncode == 65 and "JSON object" in not_object.stderr
        bad_target = run_emit("x.topic", "--target", "a=(", *credentials(event_app))
        assert bad_target.returncode == 65 and "refused the event" in bad_target.stderr
        wrong_key = run_emit(
            "x.topic",
            "--server",
            event_app.url,
            "--api-user",
            event_app.api_user,
            "--api-key",
            "not-the-key-123",
        )
        assert wrong_key.returncode == 77
        assert "not-the-key-123" not in wrong_key.stderr + wrong_key.stdout
        missing = run_emit("x.topic")
        assert missing.returncode == 78 and "FTRACK_SERVER" in missing.stderr
        unreachable = run_emit(
            "x.topic",
            "--server",
            "http://127.0.0.1:9",
            "--api-user",
            "u",
            "--api-key",
            "secret-never-shown",
        )
        assert unreachable.returncode == 69
        assert "secret-never-shown" not in unreachable.stderr
        # The marker proves nothing from the refused commands was routed before it.
        event_app.publish(wire_event("marker"))
        listener.wait_event(lambda e: e["topic"] == "marker")
        assert [e["topic"] for e in listener.events()] == ["marker"]


def test_emit_endpoint_validates_its_body(event_app):
    url = f"{event_app.url}/devserver/emit"
    headers = {"ftrack-user": event_app.api_user, "ftrack-api-key": event_app.api_key}
    cases = [
        (b"not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (json.dumps({"topic": ""}).encode(), "topic"),
        (json.dumps({"topic": "x", "data": [1]}).encode(), "data"),
        (json.dumps({"topic": "x", "wait_reply": -1}).encode(), "wait_reply"),
        (json.dumps({"topic": "x", "source": "me"}).encode(), "source"),
    ]
    for body, word in cases:
        response = requests.post(url, data=body, headers=headers, timeout=10)
        assert response.status_code == 400, body
        error = response.json()
        assert error["exception"] == "ValidationError" and word in error["content"], body
    ok = requests.post(url, json={"topic": "x.ok"}, headers=headers, timeout=10)
    assert ok.status_code == 200 and ok.json()["reply"] is None
    wait_until(lambda: event_app.events.published_count >= 1, message="published")
