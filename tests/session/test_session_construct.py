"""Acceptance 1: every constructor parameter, each environment fallback, each error."""

from __future__ import annotations

import getpass
import logging
import os
import textwrap

import pytest

from reviewd.api.exception import AuthenticationError, SessionClosedError
from reviewd.api.session import Session
from reviewd.api.symbol import NOT_SET

from .conftest import wait_for


@pytest.fixture
def clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("FTRACK_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_arguments(devserver_session, connect):
    session = connect(devserver_session)
    assert session.server_url == devserver_session.url
    assert session.api_user == devserver_session.api_user
    assert session.api_key == devserver_session.api_key
    assert session.server_information["schema_hash"]
    assert "Task" in session.types and session.schemas


def test_environment_fallbacks(devserver_session, clean_env, schema_folder):
    clean_env.setenv("FTRACK_SERVER", devserver_session.url + "/")
    clean_env.setenv("FTRACK_API_KEY", devserver_session.api_key)
    clean_env.setenv("FTRACK_API_USER", devserver_session.api_user)
    with Session(schema_cache_path=schema_folder) as session:
        assert session.server_url == devserver_session.url
        assert session.query("Project").first() is not None


def test_legacy_apikey_variable(devserver_session, clean_env, schema_folder):
    clean_env.setenv("FTRACK_APIKEY", devserver_session.api_key)
    with Session(
        devserver_session.url, api_user=devserver_session.api_user, schema_cache_path=schema_folder
    ) as session:
        assert session.api_key == devserver_session.api_key


def test_os_user_fallback(clean_env, schema_folder):
    from reviewd.devserver import DevServer

    with DevServer(api_user=getpass.getuser()) as server:
        with Session(server.url, api_key=server.api_key, schema_cache_path=schema_folder) as s:
            assert s.api_user == getpass.getuser()


@pytest.mark.parametrize(
    "missing, words",
    [
        ("server_url", ["server_url", "FTRACK_SERVER"]),
        ("api_key", ["api_key", "FTRACK_API_KEY", "FTRACK_APIKEY"]),
    ],
)
def test_missing_values_raise_type_error(clean_env, missing, words):
    kwargs = {"server_url": "http://127.0.0.1:9", "api_key": "k" * 8, "api_user": "jane"}
    kwargs[missing] = None
    with pytest.raises(TypeError) as caught:
        Session(**kwargs)
    for word in words:
        assert word in str(caught.value)


def test_missing_user_when_os_user_unknown(clean_env):
    def no_user():
        raise OSError("no user")

    clean_env.setattr(getpass, "getuser", no_user)
    with pytest.raises(TypeError, match="api_user.*FTRACK_API_USER"):
        Session("http://127.0.0.1:9", api_key="k" * 8)


def test_bad_credentials_fail_at_construction_without_the_key(devserver_session):
    wrong = "wrong-key-0123456789abcdef"
    with pytest.raises(AuthenticationError) as caught:
        Session(
            devserver_session.url,
            api_key=wrong,
            api_user=devserver_session.api_user,
            schema_cache_path=False,
        )
    assert wrong not in str(caught.value) and wrong not in repr(caught.value)
    assert "API key" in str(caught.value)


def test_key_never_in_repr_or_logs(devserver_session, connect, caplog):
    caplog.set_level(logging.DEBUG)
    session = connect(devserver_session)
    session.query("Task").first()
    assert devserver_session.api_key not in repr(session)
    assert devserver_session.api_user in repr(session)
    assert devserver_session.api_key not in caplog.text


def test_auto_populate_flag(devserver_session, connect):
    off = connect(devserver_session, auto_populate=False)
    task = off.query("select name from Task").first()
    assert task["description"] is NOT_SET
    assert off.auto_populate is False
    on = connect(devserver_session)
    task = on.query("select name from Task").first()
    assert task["description"].startswith(task["name"].capitalize())
    with on.auto_populating(False):
        assert on.query("select name from Task").all()[1]["description"] is NOT_SET
    assert on.auto_populate is True


def test_per_thread_flags(devserver_session, connect):
    import threading

    session = connect(devserver_session)
    session.auto_populate = False
    session.record_operations = False
    seen = {}
    thread = threading.Thread(
        target=lambda: seen.update(populate=session.auto_populate, record=session.record_operations)
    )
    thread.start()
    thread.join()
    assert seen == {"populate": True, "record": True}
    assert session.auto_populate is False and session.record_operations is False


def _write_plugin(folder, body):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "probe_plugin.py").write_text(textwrap.dedent(body))


PLUGIN = """
    import json, os

    def register(session, colour=None):
        with open(os.environ["PROBE_OUT"], "a") as handle:
            handle.write(json.dumps({"types_built": hasattr(session, "types"),
                                     "colour": colour}) + "\\n")
"""


def test_plugin_paths_and_arguments_culled(
    devserver_session, connect, tmp_path, monkeypatch, caplog
):
    out = tmp_path / "out.jsonl"
    monkeypatch.setenv("PROBE_OUT", str(out))
    _write_plugin(tmp_path / "plugins", PLUGIN)
    caplog.set_level(logging.WARNING)
    connect(
        devserver_session,
        plugin_paths=[str(tmp_path / "plugins")],
        plugin_arguments={"colour": "red", "unknown": 1},
    )
    import json

    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert record == {"types_built": False, "colour": "red"}, "loaded before types are built"
    assert "unknown" in caplog.text, "culled arguments are named in a warning"


def test_plugin_path_from_environment(devserver_session, tmp_path, monkeypatch, schema_folder):
    out = tmp_path / "out.jsonl"
    monkeypatch.setenv("PROBE_OUT", str(out))
    _write_plugin(tmp_path / "a", PLUGIN)
    monkeypatch.setenv(
        "FTRACK_EVENT_PLUGIN_PATH",
        os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "missing")]),
    )
    with Session(
        devserver_session.url,
        api_key=devserver_session.api_key,
        api_user=devserver_session.api_user,
        schema_cache_path=schema_folder,
    ):
        pass
    assert len(out.read_text().splitlines()) == 1


def test_construct_entity_type_event(devserver_session, connect, tmp_path, monkeypatch):
    _write_plugin(
        tmp_path / "p",
        """
        from reviewd.api.schema import build_type

        def register(session):
            def construct(event):
                schema = event["data"]["schema"]
                if schema["id"] == "Note":
                    cls = build_type(schema)
                    cls.is_custom = True
                    return cls
            session.event_hub.subscribe(
                "topic=ftrack.api.session.construct-entity-type", construct)
    """,
    )
    session = connect(devserver_session, plugin_paths=[str(tmp_path / "p")])
    assert getattr(session.types["Note"], "is_custom", False) is True
    assert not hasattr(session.types["Task"], "is_custom")


def test_schema_cache_path_argument_env_default_and_false(devserver_session, tmp_path, clean_env):
    def make(**kwargs):
        return Session(
            devserver_session.url,
            api_key=devserver_session.api_key,
            api_user=devserver_session.api_user,
            **kwargs,
        )

    explicit = tmp_path / "explicit"
    make(schema_cache_path=str(explicit)).close()
    assert [p.name for p in explicit.iterdir()][0].startswith("reviewd-schemas-")

    env_folder = tmp_path / "env"
    clean_env.setenv("FTRACK_API_SCHEMA_CACHE_PATH", str(env_folder))
    make().close()
    assert any(env_folder.iterdir())
    clean_env.delenv("FTRACK_API_SCHEMA_CACHE_PATH")

    clean_env.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    clean_env.setenv("HOME", str(tmp_path / "home"))
    make().close()
    assert any((tmp_path / "xdg" / "reviewd").iterdir())

    disabled_home = tmp_path / "disabled"
    clean_env.setenv("XDG_CACHE_HOME", str(disabled_home))
    make(schema_cache_path=False).close()
    assert not disabled_home.exists(), "False disables the schema cache"


def test_cache_argument_instance_and_callable(devserver_session, connect):
    from reviewd.api.cache import MemoryCache

    extra = MemoryCache()
    session = connect(devserver_session, cache=extra)
    assert session.cache.caches[1] is extra
    assert isinstance(session.cache.caches[0], MemoryCache)  # the identity map

    received = []

    def maker(s):
        received.append(s)
        return None

    session = connect(devserver_session, cache=maker)
    assert received == [session] and len(session.cache.caches) == 1


def test_auto_connect_event_hub_queues_until_connected(devserver_session, connect):
    listener = connect(devserver_session)
    listener.event_hub.connect(timeout=10)
    received = []
    listener.event_hub.subscribe("topic=reviewd.test.session-hub", received.append)
    publisher = connect(devserver_session, auto_connect_event_hub=True)
    from reviewd.api.event.base import Event

    # Published at once, probably before the background connection is up: it queues.
    publisher.event_hub.publish(Event("reviewd.test.session-hub", data={"n": 1}))
    # The listener's callbacks run inside its wait(), as with ftrack_api.
    wait_for(
        lambda: listener.event_hub.wait(0.2) or received,
        timeout=15,
        message="queued event never arrived",
    )
    assert received[0]["data"] == {"n": 1}
    hub = publisher.event_hub
    assert hub.connected
    publisher.close()
    assert not hub.connected, "close() disconnects the hub"


def test_without_auto_connect_only_local_events(devserver_session, connect):
    session = connect(devserver_session)
    results = []
    session.event_hub.subscribe("topic=local.thing", lambda e: results.append(e) or "ok")
    from reviewd.api.event.base import Event

    assert session.event_hub.publish(Event("local.thing"), synchronous=True) == ["ok"]
    assert not session.event_hub.connected


def test_close_is_idempotent_and_closed_session_refuses(devserver_session, connect):
    session = connect(devserver_session)
    task = session.query("select name from Task").first()
    with session:
        pass
    assert session.closed
    session.close()
    for call in (
        lambda: session.query("Task"),
        lambda: session.get("Task", task["id"]),
        lambda: session.create("Note", {}),
        session.commit,
        lambda: task["description"],
    ):
        with pytest.raises(SessionClosedError, match="closed"):
            call()
    assert session.cache.caches[0].keys() == [], "memory cache cleared"
