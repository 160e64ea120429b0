"""Helpers for the Session tests: sessions bound to the embedded server."""

from __future__ import annotations

import pytest

from tests.support import wait_until as wait_for  # noqa: F401 - re-exported


@pytest.fixture
def schema_folder(tmp_path):
    folder = tmp_path / "schemas"
    return str(folder)


@pytest.fixture
def connect(schema_folder):
    """``connect(server, **kwargs)`` → a Session on *server*, closed after the test."""
    from reviewd.api.session import Session

    sessions = []

    def make(server, **kwargs):
        kwargs.setdefault("schema_cache_path", schema_folder)
        kwargs.setdefault("plugin_paths", [])
        session = Session(server.url, api_key=server.api_key, api_user=server.api_user, **kwargs)
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        session.close()
