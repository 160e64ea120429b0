"""Acceptance 4, 5 and 6: entity cache, schema cache, and the 116 fixture types."""

from __future__ import annotations

import json
import os

import pytest

from reviewd.api.cache import FileCache, SerialisedCache, StringKeyMaker


def persistent(path):
    def make(session):
        return SerialisedCache(FileCache(path), encode=session.encode, decode=session.decode)

    return make


def test_get_twice_returns_the_same_object(devserver_session, connect):
    session = connect(devserver_session)
    task_id = session.query("Task").first()["id"]
    session.cache.caches[0].clear()
    before = devserver_session.action_counts["query"]
    first = session.get("Task", task_id)
    second = session.get("Task", task_id)
    assert first is second
    assert devserver_session.action_counts["query"] - before == 1


def test_persistent_cache_is_reused_by_a_second_session(devserver_session, connect, tmp_path):
    path = str(tmp_path / "entities.sqlite")
    writer = connect(devserver_session, cache=persistent(path))
    task = writer.query("select name, description, status.name from Task").first()
    expected = (task["id"], task["name"], task["description"], task["status"]["name"])
    writer.close()

    reader = connect(devserver_session, cache=persistent(path))
    before = devserver_session.action_counts["query"]
    cached = reader.get("Task", expected[0])
    with reader.auto_populating(False):
        got = (cached["id"], cached["name"], cached["description"], cached["status"]["name"])
    assert got == expected
    assert devserver_session.action_counts["query"] == before, "no server round trip"
    assert reader.get("Task", expected[0]) is cached


def test_persistent_cache_keeps_datetimes(devserver_session, connect, tmp_path):
    import arrow

    path = str(tmp_path / "entities.sqlite")
    writer = connect(devserver_session, cache=persistent(path))
    shot = writer.query("select name, start_date from Shot").first()
    assert isinstance(shot["start_date"], arrow.Arrow)
    writer.close()
    reader = connect(devserver_session, cache=persistent(path))
    assert reader.get("Shot", shot["id"])["start_date"] == shot["start_date"]


class PrefixKeyMaker(StringKeyMaker):
    def key(self, *items):
        return "studio:" + super().key(*items)


def test_custom_key_maker_is_honoured(devserver_session, connect, tmp_path):
    path = str(tmp_path / "entities.sqlite")
    session = connect(devserver_session, cache=persistent(path), cache_key_maker=PrefixKeyMaker())
    task = session.query("select name from Task").first()
    keys = FileCache(path).keys()
    assert keys and all(key.startswith("studio:") for key in keys)
    assert "studio:" + str(("Task", [task["id"]])) in keys
    session.close()
    other = connect(devserver_session, cache=persistent(path), cache_key_maker=PrefixKeyMaker())
    before = devserver_session.action_counts["query"]
    assert other.get("Task", task["id"])["name"] == task["name"]
    assert devserver_session.action_counts["query"] == before


def test_broken_cache_layer_does_not_break_queries(devserver_session, connect, caplog):
    from reviewd.api.cache import Cache

    class Broken(Cache):
        def get(self, key):
            raise OSError("disk gone")

        def set(self, key, value):
            raise OSError("disk gone")

        def remove(self, key):
            raise KeyError(key)

    session = connect(devserver_session, cache=Broken())
    task = session.query("select name from Task").first()
    assert session.get("Task", task["id"]) is task
    assert "disk gone" in caplog.text


# ------------------------------------------------------------------ schema cache
def _cache_files(folder):
    return sorted(name for name in os.listdir(folder) if name.startswith("reviewd-schemas-"))


def test_schema_cache_written_then_read_without_query_schemas(devserver, connect, schema_folder):
    connect(devserver)
    assert devserver.action_counts["query_schemas"] == 1
    (name,) = _cache_files(schema_folder)
    assert devserver.url and name.endswith(".json")
    second = connect(devserver)
    assert devserver.action_counts["query_schemas"] == 1, "second session read the cache"
    assert second.query("Task").first() is not None


def test_changed_schema_hash_refreshes_the_cache(devserver, connect, schema_folder):
    first = connect(devserver)
    (old,) = _cache_files(schema_folder)
    # Plant a cache for a hash the server no longer has; it must not be used.
    os.rename(
        os.path.join(schema_folder, old), os.path.join(schema_folder, "reviewd-schemas-0000.json")
    )
    stale = os.path.join(schema_folder, "reviewd-schemas-0000.json")
    with open(stale, "w") as handle:
        json.dump([{"id": "Stale", "primary_key": ["id"], "properties": {}}], handle)
    session = connect(devserver)
    assert devserver.action_counts["query_schemas"] == 2
    assert "Stale" not in session.types and "Task" in session.types
    assert _cache_files(schema_folder) == [old], "fresh file written, stale one removed"
    assert first.server_information["schema_hash"] in old


def test_corrupt_schema_cache_is_tolerated(devserver, connect, schema_folder, caplog):
    connect(devserver)
    (name,) = _cache_files(schema_folder)
    with open(os.path.join(schema_folder, name), "w") as handle:
        handle.write('[{"id": "Task", "propert')
    session = connect(devserver)
    assert "Task" in session.types
    assert devserver.action_counts["query_schemas"] == 2
    assert "Ignoring unreadable schema cache" in caplog.text
    connect(devserver)
    assert devserver.action_counts["query_schemas"] == 2, "the cache was repaired"


def test_unwritable_schema_cache_is_tolerated(devserver, connect, tmp_path, caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    session = connect(devserver, schema_cache_path=str(blocker))
    assert "Task" in session.types
    assert "Could not write the schema cache" in caplog.text


# ------------------------------------------------------------------ 116 fixture types
def test_builds_all_types_of_the_fixture_schema(fixtures_dir, connect):
    from reviewd.devserver import DevServer

    path = os.path.join(fixtures_dir, "ftrack_schemas.json")
    with open(path) as handle:
        expected = {schema["id"] for schema in json.load(handle)}
    with DevServer(schema=path) as server:
        session = connect(server, schema_cache_path=False)
        assert set(session.types) == expected and len(expected) == 116
        assert server.action_counts["query_schemas"] == 1
        for name in ("Shot", "Task", "Sequence", "AssetBuild", "Milestone", "Folder", "Episode"):
            cls = session.types[name]
            assert cls.entity_type == name and cls._schema["alias_for"]["id"] == "Task"
            assert cls._attributes().get("parent").kind == "reference"
        for name in expected:
            assert len(session.types[name]._attributes()) > 0
        project = session.query("Project").first()
        assert project["name"]
        shot = session.query("Shot").first()
        assert shot["parent"]["name"] and shot.entity_type == "Shot"


@pytest.mark.parametrize("name", ["Metadata", "EntitySetting"])
def test_composite_primary_keys(fixtures_dir, name):
    from reviewd.api.schema import build_types

    with open(os.path.join(fixtures_dir, "ftrack_schemas.json")) as handle:
        types = build_types(json.load(handle))
    assert len(types[name].primary_key_attributes) > 1
