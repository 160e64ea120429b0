"""Helpers for the embedded server's tests: talk to ``/api`` over a real socket."""

from __future__ import annotations

import pytest
import requests

from tests.support import wait_until as wait_for  # noqa: F401 - re-exported


class Api:
    """A minimal HTTP caller for one DevServer (deliberately not reviewd's client)."""

    def __init__(self, server) -> None:
        self.server = server
        self.http = requests.Session()

    def headers(self, user=None, key=None, strict=False) -> dict:
        return {
            "ftrack-user": user or self.server.api_user,
            "ftrack-api-key": key or self.server.api_key,
            "content-type": "application/json",
            "accept": "application/json",
            "ftrack-strict-api": "true" if strict else "false",
        }

    def post(self, body, *, raw: bool = False, **header_options) -> requests.Response:
        kwargs = {"data": body} if raw else {"json": body}
        return self.http.post(
            self.server.url + "/api", headers=self.headers(**header_options), timeout=30, **kwargs
        )

    def call(self, batch, **header_options):
        return self.post(batch, **header_options).json()

    def query(self, expression: str) -> list[dict]:
        reply = self.call([{"action": "query", "expression": expression}])
        assert isinstance(reply, list), reply
        return reply[0]["data"]

    def query_reply(self, expression: str) -> dict:
        reply = self.call([{"action": "query", "expression": expression}])
        assert isinstance(reply, list), reply
        return reply[0]


@pytest.fixture
def api(devserver) -> Api:
    return Api(devserver)


@pytest.fixture
def shared_api(devserver_session) -> Api:
    return Api(devserver_session)
