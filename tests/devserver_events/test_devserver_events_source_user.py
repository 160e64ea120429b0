"""``emit --source-user NAME`` and ``POST /devserver/emit`` send as a real user.

Actions often compare ``event['source']['user']`` with the people allowed to run them,
so the event must name an existing user with its id, and naming nobody is refused.
"""

from __future__ import annotations

import requests

from tests.devserver_events.devserver_events_support import RawClient, wait_until
from tests.devserver_events.test_devserver_events_emit import run_emit


def user_id(server, username: str) -> str:
    response = requests.post(
        f"{server.url}/api",
        timeout=30,
        json=[
            {"action": "query", "expression": f'select id from User where username is "{username}"'}
        ],
        headers={"ftrack-user": server.api_user, "ftrack-api-key": server.api_key},
    )
    return response.json()[0]["data"][0]["id"]


def test_emit_command_sends_as_the_named_user(devserver):
    credentials = [
        "--server",
        devserver.url,
        "--api-user",
        devserver.api_user,
        "--api-key",
        devserver.api_key,
    ]
    with RawClient(devserver) as plugin:
        plugin.subscribe("topic=ftrack.action.launch")
        done = run_emit(
            "ftrack.action.launch",
            "--data",
            '{"actionIdentifier": "x"}',
            "--source-user",
            "jane.doe",
            *credentials,
        )
        assert done.returncode == 0, done.stderr
        wait_until(lambda: plugin.events(), message="the launch event")
        [event] = plugin.events()
    assert event["source"]["user"] == {"username": "jane.doe", "id": user_id(devserver, "jane.doe")}
    assert event["source"]["applicationId"] == "ftrack.client.web"


def test_emit_endpoint_refuses_an_unknown_source_user_and_sends_nothing(devserver):
    headers = {"ftrack-user": devserver.api_user, "ftrack-api-key": devserver.api_key}
    with RawClient(devserver) as plugin:
        plugin.subscribe("topic=ftrack.action.launch")
        refused = requests.post(
            f"{devserver.url}/devserver/emit",
            headers=headers,
            timeout=30,
            json={"topic": "ftrack.action.launch", "source_user": "nobody"},
        )
        assert refused.status_code == 400
        body = refused.json()
        assert body["exception"] == "ValidationError" and "nobody" in body["content"]
        accepted = requests.post(
            f"{devserver.url}/devserver/emit",
            headers=headers,
            timeout=30,
            json={"topic": "ftrack.action.launch", "source_user": "tom.lee"},
        )
        assert accepted.status_code == 200
        wait_until(lambda: plugin.events(), message="the accepted event")
        assert [e["source"]["user"]["username"] for e in plugin.events()] == ["tom.lee"]


def test_devserver_emit_method_names_the_user(devserver):
    with RawClient(devserver) as plugin:
        plugin.subscribe("topic=demo.ping")
        devserver.emit("demo.ping", {"n": 1}, source_user="sam.patel")
        wait_until(lambda: plugin.events(), message="the ping")
    assert plugin.events()[0]["source"]["user"]["id"] == user_id(devserver, "sam.patel")
