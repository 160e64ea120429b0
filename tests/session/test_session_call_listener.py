"""``Session.add_call_listener``: the metrics hook called after every call to /api."""

from __future__ import annotations

import logging
import threading

import pytest

from reviewd.api.exception import ConnectionFailedError, NotUniqueError, ServerError
from reviewd.api.transport import CallInfo


def test_listener_sees_successful_calls(devserver_session, connect):
    session = connect(devserver_session)
    seen: list[tuple[CallInfo, int]] = []
    session.add_call_listener(lambda info: seen.append((info, threading.get_ident())))

    session.call(
        [
            {"action": "query_server_information"},
            {"action": "query", "expression": "select name from Task limit 1"},
        ]
    )
    tasks = session.query("select name from Task").all()
    assert tasks

    assert [info.actions for info, _ in seen] == [("query_server_information", "query"), ("query",)]
    for info, thread_id in seen:
        assert info.error is None and info.status == 200
        assert isinstance(info.duration, float) and info.duration >= 0
        assert thread_id == threading.get_ident(), "called in the calling thread"


def test_listener_is_called_from_the_thread_that_made_the_call(devserver_session, connect):
    session = connect(devserver_session)
    seen: list[int] = []
    session.add_call_listener(lambda info: seen.append(threading.get_ident()))
    other: list[int] = []

    def work():
        other.append(threading.get_ident())
        session.query("select name from Task").first()

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(30)
    assert not thread.is_alive() and seen == other


def test_listener_sees_a_server_error_object(devserver_session, connect):
    session = connect(devserver_session)
    seen: list[CallInfo] = []
    session.add_call_listener(seen.append)
    with pytest.raises(ServerError) as caught:
        session.query("select nonsense from NoSuchType").all()
    (info,) = seen
    assert info.actions == ("query",)
    assert info.error is caught.value, "the exception the caller gets"
    # An error object may come with any status (ftrack servers often answer 200).
    assert isinstance(info.status, int)
    assert caught.value.exception_name == "UnknownEntityTypeError"
    assert info.duration >= 0


def test_listener_sees_an_unreachable_server(devserver, connect):
    session = connect(devserver)
    seen: list[CallInfo] = []
    session.add_call_listener(seen.append)
    devserver.stop()
    with pytest.raises(ConnectionFailedError) as caught:
        session.call([{"action": "query_server_information"}])
    (info,) = seen
    assert info.actions == ("query_server_information",)
    assert info.error is caught.value and info.status is None and info.duration >= 0
    assert devserver.api_key not in repr(info)


def test_failing_listener_is_logged_and_ignored(devserver_session, connect, caplog):
    session = connect(devserver_session)
    after: list[CallInfo] = []

    def broken(info):
        raise RuntimeError(f"metrics exploded with {devserver_session.api_key}")

    remove_broken = session.add_call_listener(broken)
    remove_after = session.add_call_listener(after.append)
    with caplog.at_level(logging.WARNING, logger="reviewd.api.transport"):
        result = session.call([{"action": "query_server_information"}])
    assert result[0]["version"], "the call itself succeeded"
    assert len(after) == 1, "later listeners still run"
    assert "broken" in caplog.text and "metrics exploded" in caplog.text
    assert devserver_session.api_key not in caplog.text

    remove_broken()
    remove_broken()  # harmless twice
    remove_after()
    caplog.clear()
    session.call([{"action": "query_server_information"}])
    assert len(after) == 1 and "metrics exploded" not in caplog.text


def test_listener_must_be_callable(devserver_session, connect):
    session = connect(devserver_session)
    with pytest.raises(TypeError, match="callable"):
        session.add_call_listener("not a function")


def test_duplicate_subscriber_id_raises_not_unique(devserver_session, connect):
    hub = connect(devserver_session).event_hub
    hub.subscribe("topic=a", lambda event: None, subscriber={"id": "only-one"})
    with pytest.raises(NotUniqueError, match="only-one"):
        hub.subscribe("topic=b", lambda event: None, subscriber={"id": "only-one"})
    assert [s.subscription for s in hub.subscribers] == ["topic=a"]
