"""Acceptance 1: round trips with the official ftrack-python-api client, both ways.

The official client runs in its own process and virtualenv (tests/peer.py) against the
same embedded DevServer as reviewd's hub.
"""

from __future__ import annotations

import json
import time

import pytest

from reviewd.api.event.base import Event
from reviewd.api.event.hub import EventHub
from tests.event.event_harness import wait_for
from tests.peer import peer_env, start_peer

pytestmark = pytest.mark.peer

# The official hub runs handlers only inside wait(); it answers each question with a
# reply (its handler's return value) and reports what it saw on its last line.
ANSWERING_PEER = """
import json, sys, time
import ftrack_api

session = ftrack_api.Session(auto_connect_event_hub=True)
hub = session.event_hub
deadline = time.time() + 60
while not hub.connected and time.time() < deadline:
    time.sleep(0.05)
seen = []

def answer(event):
    seen.append({"data": event["data"], "user": event["source"].get("user")})
    return {"answer": event["data"]["q"] * 2, "by": "ftrack_api"}

hub.subscribe("topic=reviewd.question", answer, subscriber={"id": "ftrack-peer-answerer"})
print("ready", flush=True)
while len(seen) < int(sys.argv[1]) and time.time() < deadline:
    hub.wait(0.1)
hub.wait(0.5)  # let the last reply go out
print(json.dumps({"seen": seen}))
"""

# The official hub asks; reviewd answers.  on_reply runs inside wait().
ASKING_PEER = """
import json, sys, time
import ftrack_api
from ftrack_api.event.base import Event

session = ftrack_api.Session(auto_connect_event_hub=True)
hub = session.event_hub
deadline = time.time() + 60
while not hub.connected and time.time() < deadline:
    time.sleep(0.05)
replies = []
received = []
hub.subscribe("topic=reviewd.announcement", lambda event: received.append(event["data"]))
print("ready", flush=True)
while not received and time.time() < deadline:
    hub.wait(0.1)
hub.publish(Event("peer.question", data={"q": 21}), on_reply=lambda e: replies.append(
    {"data": e["data"], "in_reply_to_event": e["in_reply_to_event"], "source": e["source"]}))
while not replies and time.time() < deadline:
    hub.wait(0.1)
print(json.dumps({"replies": replies, "received": received}))
"""


def _wait_for_ready(process, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.strip() == "ready":
            return
        if not line and process.poll() is not None:
            raise AssertionError(f"peer exited early: {process.stderr.read()}")
    raise AssertionError("peer never became ready")


def _finish(process, timeout: float = 60.0) -> dict:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines, err
    return json.loads(lines[-1])


def _registered(server, subscriber_id: str) -> bool:
    return any(
        s["id"] == subscriber_id for c in server.events.connections() for s in c["subscribers"]
    )


def test_hub_publishes_and_ftrack_api_replies(devserver, peer_python):
    peer = start_peer(ANSWERING_PEER, env=peer_env(devserver), args=("2",))
    hub = EventHub(devserver.url, devserver.api_user, devserver.api_key, dispatch_thread=True)
    try:
        _wait_for_ready(peer)
        wait_for(
            lambda: _registered(devserver, "ftrack-peer-answerer"),
            timeout=30,
            message="the official client's subscription",
        )
        hub.connect(timeout=10)
        replies = []
        hub.publish(Event("reviewd.question", data={"q": 4}), on_reply=replies.append)
        wait_for(lambda: replies, timeout=30, message="on_reply from ftrack_api")
        assert replies[0]["data"] == {"answer": 8, "by": "ftrack_api"}
        assert replies[0]["source"]["id"] == "ftrack-peer-answerer"

        reply = hub.publish_and_wait(Event("reviewd.question", data={"q": 50}), timeout=30)
        assert reply["data"] == {"answer": 100, "by": "ftrack_api"}
        assert reply["topic"] == "ftrack.meta.reply"
        result = _finish(peer)
    finally:
        hub.disconnect()
        if peer.poll() is None:
            peer.kill()
    assert [s["data"] for s in result["seen"]] == [{"q": 4}, {"q": 50}]
    assert result["seen"][0]["user"] == {"username": devserver.api_user}


def test_ftrack_api_publishes_and_hub_replies(devserver, peer_python):
    hub = EventHub(devserver.url, devserver.api_user, devserver.api_key, dispatch_thread=True)
    questions = []

    def answer(event):
        questions.append(event)
        return {"answer": event["data"]["q"] * 2, "by": "reviewd"}

    hub.subscribe("topic=peer.question", answer, subscriber={"id": "reviewd-answerer"})
    hub.connect(timeout=10)
    peer = start_peer(ASKING_PEER, env=peer_env(devserver))
    try:
        _wait_for_ready(peer)
        # Announce until the official client hears reviewd (its subscription is live).
        deadline = time.monotonic() + 30
        while peer.poll() is None and time.monotonic() < deadline:
            hub.publish(Event("reviewd.announcement", data={"hello": "from reviewd"}))
            if wait_for_peer_question(questions, 0.3):
                break
        result = _finish(peer)
    finally:
        hub.disconnect()
        if peer.poll() is None:
            peer.kill()
    assert result["received"][0] == {"hello": "from reviewd"}
    assert len(result["replies"]) == 1
    reply = result["replies"][0]
    assert reply["data"] == {"answer": 42, "by": "reviewd"}
    assert reply["in_reply_to_event"] == questions[0]["id"]
    assert reply["source"]["id"] == "reviewd-answerer"


def wait_for_peer_question(questions: list, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if questions:
            return True
        time.sleep(0.02)
    return bool(questions)
