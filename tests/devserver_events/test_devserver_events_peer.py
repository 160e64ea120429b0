"""Acceptance 1: the official client (ftrack-python-api 3.1.0, its own venv, separate
processes) talks to the embedded event server as to a real ftrack server."""

from __future__ import annotations

import json

import pytest

from tests.devserver_events.devserver_events_support import wait_until
from tests.peer import peer_env, run_peer, start_peer

pytestmark = pytest.mark.peer

# A subscriber process: argv = subscription, subscriber id, applicationId.  It answers
# events carrying data.question and prints everything it received once it sees
# data.stop (or after 90 s).
SUBSCRIBER = r"""
import json, os, sys, time
import ftrack_api

subscription, subscriber_id, app_id = sys.argv[1:4]
if os.environ.get("PEER_HUB_ONLY"):  # the hub alone, for a server without /api
    from ftrack_api.event.hub import EventHub
    hub = EventHub(os.environ["FTRACK_SERVER"], os.environ["FTRACK_API_USER"],
                   os.environ["FTRACK_API_KEY"])
    hub.connect()
else:
    hub = ftrack_api.Session(auto_connect_event_hub=True).event_hub
received = []

def on_event(event):
    received.append({k: event[k] for k in ("id", "topic", "data", "target", "source")})
    if "question" in event["data"]:
        return {"answer": event["data"]["question"] * 2, "by": app_id}

hub.subscribe(subscription, on_event, subscriber={"id": subscriber_id, "applicationId": app_id})
deadline = time.time() + 90
while time.time() < deadline and not any(e["data"].get("stop") for e in received):
    hub.wait(0.1)
print(json.dumps(received))
"""

# A publisher process: argv = JSON list of [topic, data, target] to publish in order;
# it collects replies to every event and prints them with the event ids.
PUBLISHER = r"""
import json, os, sys, time
import ftrack_api
from ftrack_api.event.base import Event

if os.environ.get("PEER_HUB_ONLY"):
    from ftrack_api.event.hub import EventHub
    hub = EventHub(os.environ["FTRACK_SERVER"], os.environ["FTRACK_API_USER"],
                   os.environ["FTRACK_API_KEY"])
    hub.connect()
else:
    session = ftrack_api.Session(auto_connect_event_hub=True)
    session._auto_connect_event_hub_thread.join(30)   # connected and reply-subscribed
    hub = session.event_hub
assert hub.connected
replies, ids = [], []
for topic, data, target in json.loads(sys.argv[1]):
    event = Event(topic=topic, data=data, target=target)
    hub.publish(event, on_reply=lambda e: replies.append(
        {"data": e["data"], "in_reply_to_event": e["in_reply_to_event"]}))
    ids.append(event["id"])
expected = int(sys.argv[2])
deadline = time.time() + 60
while len(replies) < expected and time.time() < deadline:
    hub.wait(0.1)
print(json.dumps({"ids": ids, "replies": replies}))
"""


def start_subscriber(server, subscription, subscriber_id, app_id, **env):
    process = start_peer(
        SUBSCRIBER, env=peer_env(server, **env), args=(subscription, subscriber_id, app_id)
    )
    wait_until(
        lambda: (
            process.poll() is not None
            or any(
                s["id"] == subscriber_id
                for c in server.events.connections()
                for s in c["subscribers"]
            )
        ),
        90,
        message=f"peer subscriber {subscriber_id} registered",
    )
    assert process.poll() is None, process.communicate()
    return process


def finish(process, timeout=90):
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def check_publish_subscribe_reply_and_target(server, **env):
    alpha = start_subscriber(server, "topic=reviewd.peer.*", "sub-alpha", "alpha", **env)
    beta = start_subscriber(server, "topic=reviewd.peer.*", "sub-beta", "beta", **env)
    try:
        plan = [
            ["reviewd.peer.hello", {"n": 1}, ""],
            ["reviewd.peer.only-beta", {"n": 2}, "applicationId=beta"],
            ["reviewd.peer.question", {"question": 21}, "applicationId=alpha"],
            ["reviewd.peer.bye", {"stop": True}, ""],
        ]
        published = run_peer(PUBLISHER, env=peer_env(server, **env), args=(json.dumps(plan), "1"))
        got_alpha, got_beta = finish(alpha), finish(beta)
    finally:
        for process in (alpha, beta):
            if process.poll() is None:
                process.kill()
    assert [e["topic"] for e in got_alpha] == [
        "reviewd.peer.hello",
        "reviewd.peer.question",
        "reviewd.peer.bye",
    ]
    assert [e["topic"] for e in got_beta] == [
        "reviewd.peer.hello",
        "reviewd.peer.only-beta",
        "reviewd.peer.bye",
    ]
    assert [e["id"] for e in got_alpha] == [published["ids"][0], *published["ids"][2:]]
    assert got_alpha[0]["source"]["user"]["username"] == server.api_user
    # The reply returned by alpha's handler reached the publisher's on_reply.
    assert published["replies"] == [
        {"data": {"answer": 42, "by": "alpha"}, "in_reply_to_event": published["ids"][2]}
    ]


def test_official_sessions_publish_subscribe_reply_and_target(devserver, peer_python):
    """With ``Session(auto_connect_event_hub=True)`` against the full devserver."""
    check_publish_subscribe_reply_and_target(devserver)


def test_official_hubs_on_the_bare_event_server(event_app, peer_python):
    """The hub alone against an app that serves only the event server."""
    check_publish_subscribe_reply_and_target(event_app, PEER_HUB_ONLY=1)


COMMIT_STATUS_CHANGE = r"""
import json
import ftrack_api
session = ftrack_api.Session()
task = session.query("select id, status_id from Task").first()
statuses = session.query("select id, name from Status").all()
new = [s for s in statuses if s["id"] != task["status_id"]][0]
old_id = task["status_id"]
task["status"] = new
session.commit()
print(json.dumps({"task": task["id"], "old": old_id, "new": new["id"]}))
"""


def test_api_commit_reaches_an_official_subscriber_as_ftrack_update(devserver, peer_python):
    listener = start_subscriber(devserver, "topic=ftrack.update", "sub-updates", "listener")
    try:
        change = run_peer(COMMIT_STATUS_CHANGE, env=peer_env(devserver))
        devserver.emit("ftrack.update", {"stop": True, "entities": []})
        received = finish(listener)
    finally:
        if listener.poll() is None:
            listener.kill()
    updates = [e for e in received if not e["data"].get("stop")]
    assert len(updates) == 1, updates
    event = updates[0]
    assert event["topic"] == "ftrack.update"
    assert event["source"]["user"]["username"] == devserver.api_user
    [entity] = event["data"]["entities"]
    assert entity["entityId"] == change["task"]
    assert entity["entityType"] == "task" and entity["entity_type"] == "Task"
    assert entity["action"] == "update"
    assert entity["keys"] == ["statusid"]
    assert entity["changes"]["statusid"] == {"old": change["old"], "new": change["new"]}
    assert entity["parents"][0]["entityId"] == change["task"]
    assert entity["parents"][-1]["entityType"] == "show"
    assert entity["objectTypeId"]


def test_devserver_emit_command_prints_an_official_plugins_reply(devserver, peer_python):
    """`reviewd devserver emit` in its own process, as a pretend web UI."""
    import os
    import subprocess
    import sys

    plugin = start_subscriber(devserver, "topic=ftrack.action.discover", "sub-ui", "plugin")
    try:
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = {k: v for k, v in os.environ.items() if not k.startswith("FTRACK_")}
        env.update(peer_env(devserver))
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "reviewd.daemon.cli",
                "devserver",
                "emit",
                "ftrack.action.discover",
                "--data",
                '{"question": 5, "stop": true}',
                "--wait-reply",
                "30",
            ],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        received = finish(plugin)
    finally:
        if plugin.poll() is None:
            plugin.kill()
    assert done.returncode == 0, done.stderr
    reply = json.loads(done.stdout)
    assert reply["data"] == {"answer": 10, "by": "plugin"}
    assert reply["inReplyToEvent"] == received[0]["id"]
    assert received[0]["source"]["applicationId"] == "ftrack.client.web"
