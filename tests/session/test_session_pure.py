"""Unit tests of the Session's pure parts: optimiser, caches, key makers, codec, schemas."""

from __future__ import annotations

import datetime as dt
import json
import os

import arrow
import pytest

from reviewd.api.cache import (
    FileCache,
    LayeredCache,
    MemoryCache,
    ObjectKeyMaker,
    SerialisedCache,
    StringKeyMaker,
)
from reviewd.api.operation import (
    CreateEntityOperation,
    DeleteEntityOperation,
    Operations,
    UpdateEntityOperation,
    optimise,
)
from reviewd.api.query import split_offset_limit
from reviewd.api.schema import build_types, check_server_version, read_cached, write_cached
from reviewd.api.symbol import NOT_SET
from reviewd.api.transport import decode, encode


# ------------------------------------------------------------------ optimiser
class Ref:
    """A stand-in for an entity value: the optimiser only needs its identity."""

    def __init__(self, entity_type, key):
        self.identity = (entity_type, (key,))

    def __ftrack_wire__(self):
        return {"__entity_type__": self.identity[0], "id": self.identity[1][0]}


def identity_of(value):
    return getattr(value, "identity", None)


def create(t, k, **data):
    return CreateEntityOperation(t, {"id": k}, {"id": k, **data})


def update(t, k, name, old, new):
    return UpdateEntityOperation(t, {"id": k}, name, old, new)


def delete(t, k):
    return DeleteEntityOperation(t, {"id": k})


def test_create_then_delete_disappears_with_its_updates():
    ops = [
        create("Note", "n1", content="a"),
        update("Note", "n1", "content", "a", "b"),
        create("Note", "n2", content="x"),
        delete("Note", "n1"),
    ]
    batch = optimise(ops, identity_of)
    assert [(p["action"], p["entity_key"]) for p in batch] == [("create", ["n2"])]


def test_updates_fold_into_create_keeping_last_value():
    ops = [
        create("Note", "n1", content="a"),
        update("Note", "n1", "content", "a", "b"),
        update("Note", "n1", "content", "b", "c"),
        update("Note", "n1", "is_todo", False, True),
    ]
    (payload,) = optimise(ops, identity_of)
    assert payload == {
        "action": "create",
        "entity_type": "Note",
        "entity_key": ["n1"],
        "entity_data": {"__entity_type__": "Note", "id": "n1", "content": "c", "is_todo": True},
    }


def test_consecutive_updates_fold_and_only_the_last_update_of_an_attribute_is_sent():
    ops = [
        update("Task", "t", "name", "a", "b"),
        update("Task", "u", "name", "x", "y"),
        update("Task", "t", "name", "b", "c"),
        update("Task", "t", "priority", 1, 2),
    ]
    batch = optimise(ops, identity_of)
    # ftrack_api's rule: t's first name update is withdrawn (a later one follows) and
    # only consecutive updates of one entity share a payload, so changes reach the
    # server in the order they were made.
    assert batch == [
        {
            "action": "update",
            "entity_type": "Task",
            "entity_key": ["u"],
            "entity_data": {"__entity_type__": "Task", "name": "y"},
        },
        {
            "action": "update",
            "entity_type": "Task",
            "entity_key": ["t"],
            "entity_data": {"__entity_type__": "Task", "name": "c", "priority": 2},
        },
    ]


def test_a_withdrawn_update_folded_into_a_create_gives_the_create_its_value_back():
    ops = [
        create("Note", "n1", content="c"),
        update("Note", "n1", "content", "c", "d"),
        create("Note", "n2"),
        update("Note", "n1", "content", "d", "e"),
    ]
    batch = optimise(ops, identity_of)
    assert [p["action"] for p in batch] == ["create", "create", "update"]
    assert batch[0]["entity_data"]["content"] == "c"
    assert batch[2]["entity_data"] == {"__entity_type__": "Note", "content": "e"}


def test_update_back_to_original_value_is_skipped():
    ops = [update("Task", "t", "name", "a", "b"), update("Task", "t", "name", "b", "a")]
    assert optimise(ops, identity_of) == []


def test_update_referring_to_a_later_create_keeps_its_position():
    note = Ref("Note", "n2")
    ops = [
        create("Note", "n1"),
        create("Note", "n2"),
        update("Note", "n1", "in_reply_to", None, note),
    ]
    # Folding into n1's create would reference n2 before it exists: kept separate.
    batch = optimise(ops, identity_of)
    assert [p["action"] for p in batch] == ["create", "create", "update"]
    assert batch[2]["entity_data"] == {"__entity_type__": "Note", "in_reply_to": note}


def test_update_after_another_payload_is_not_folded_back():
    status = Ref("Status", "s1")
    ops = [
        create("Status", "s1"),
        update("Task", "t", "status", None, status),
        create("Note", "n1"),
        update("Task", "t", "name", "a", "b"),
    ]
    batch = optimise(ops, identity_of)
    assert [p["action"] for p in batch] == ["create", "update", "create", "update"]
    assert batch[1]["entity_data"] == {"__entity_type__": "Task", "status": status}
    assert batch[3]["entity_data"] == {"__entity_type__": "Task", "name": "b"}


def test_updates_before_a_delete_are_dropped():
    ops = [update("Task", "t", "name", "a", "b"), delete("Task", "t")]
    assert optimise(ops, identity_of) == [
        {"action": "delete", "entity_type": "Task", "entity_key": ["t"]}
    ]


def test_unknown_old_value_never_cancels_an_update():
    ops = [update("Task", "t", "name", NOT_SET, "b")]
    assert optimise(ops, identity_of)[0]["entity_data"] == {"__entity_type__": "Task", "name": "b"}


def test_operations_is_an_ordered_list():
    ops = Operations()
    first, second = create("Note", "a"), delete("Note", "a")
    ops.push(first, second)
    assert list(ops) == [first, second] and len(ops) == 2
    assert ops.pop() is second
    ops.clear()
    assert not ops


# ------------------------------------------------------------------ caches
def test_memory_cache_interface():
    cache = MemoryCache()
    cache.set("a", 1)
    assert cache.get("a") == 1 and cache.keys() == ["a"] and cache.values() == [1]
    cache.remove("a")
    with pytest.raises(KeyError):
        cache.get("a")
    with pytest.raises(KeyError):
        cache.remove("a")


def test_layered_cache_fills_upper_layers_on_lower_hit():
    top, bottom = MemoryCache(), MemoryCache()
    layered = LayeredCache([top, bottom])
    bottom.set("k", "v")
    assert layered.get("k") == "v"
    assert top.get("k") == "v"
    layered.set("j", 2)
    assert top.get("j") == bottom.get("j") == 2
    layered.remove("j")
    with pytest.raises(KeyError):
        layered.remove("j")
    layered.clear()
    assert layered.keys() == []


def test_cache_clear_with_pattern():
    cache = MemoryCache({"Task-1": 1, "Note-1": 2})
    cache.clear(pattern="^Task")
    assert cache.keys() == ["Note-1"]


def test_file_cache_persists_across_instances(tmp_path):
    path = tmp_path / "sub" / "cache.sqlite"
    cache = FileCache(path)
    cache.set("k", "value")
    cache.set(b"b", b"bytes")
    cache.close()
    again = FileCache(path)
    assert again.get("k") == "value" and again.get(b"b") == b"bytes"
    assert sorted(again.keys()) == ["b", "k"]
    again.remove("k")
    with pytest.raises(KeyError):
        again.get("k")
    with pytest.raises(TypeError, match="SerialisedCache"):
        again.set("x", {"not": "text"})
    again.close()


def test_serialised_cache_round_trips():
    store = MemoryCache()
    cache = SerialisedCache(store, encode=json.dumps, decode=json.loads)
    cache.set("k", {"a": [1, 2]})
    assert store.get("k") == '{"a": [1, 2]}'
    assert cache.get("k") == {"a": [1, 2]}


def test_key_makers():
    assert StringKeyMaker().key(("Task", ["1"])) == "('Task', ['1'])"
    maker = ObjectKeyMaker()
    assert maker.key((1, "a")) != maker.key(("1", "a"))
    assert maker.key({"b": 1, "a": 2}) == maker.key({"a": 2, "b": 1})
    assert isinstance(maker.key("x"), bytes)


# ------------------------------------------------------------------ codec
def test_codec_round_trips_datetimes_and_dates():
    value = {
        "when": dt.datetime(2022, 10, 10, 10, 12, 9, tzinfo=dt.timezone.utc),
        "day": dt.date(2024, 2, 29),
        "n": [1, "x"],
    }
    text = encode(value)
    wire = json.loads(text)
    assert wire["when"] == {"__type__": "datetime", "value": "2022-10-10T10:12:09+00:00"}
    assert wire["day"] == {"__type__": "date", "value": "2024-02-29"}
    decoded = decode(text)
    # ftrack_api's types: dates and datetimes come back as arrow.Arrow (dates at UTC midnight)
    assert isinstance(decoded["when"], arrow.Arrow) and isinstance(decoded["day"], arrow.Arrow)
    assert decoded["when"] == value["when"]
    assert decoded["day"].date() == value["day"]
    assert decoded["n"] == value["n"]
    # and an arrow value encodes like the datetime it stands for
    assert json.loads(encode({"when": decoded["when"]}))["when"] == wire["when"]


def test_decoded_dates_are_arrow_values_plugins_can_shift():
    start = decode('{"__type__": "datetime", "value": "2022-10-10T10:12:09+02:00"}')
    assert start.shift(days=3).format("YYYY-MM-DD HH:mm ZZ") == "2022-10-13 10:12 +02:00"
    assert start.floor("day").isoformat() == "2022-10-10T00:00:00+02:00"


def test_codec_parses_server_forms():
    # a naive server value is UTC, as ftrack_api reads it
    assert decode('{"__type__": "datetime", "value": "2022-10-10T10:12:09"}') == dt.datetime(
        2022, 10, 10, 10, 12, 9, tzinfo=dt.timezone.utc
    )
    z = decode('{"__type__": "datetime", "value": "2022-10-10T10:12:09Z"}')
    assert z.utcoffset() == dt.timedelta(0)
    assert decode('{"__type__": "datetime", "value": null}') is None


def test_codec_refuses_unknown_objects_clearly():
    with pytest.raises(TypeError, match="Cannot encode a object"):
        encode(object())


# ------------------------------------------------------------------ query helpers
def test_split_offset_limit():
    assert split_offset_limit("select id from Task where x is 1 offset 10 limit 5") == (
        "select id from Task where x is 1",
        10,
        5,
    )
    assert split_offset_limit("Task") == ("Task", None, None)


# ------------------------------------------------------------------ schemas
@pytest.fixture(scope="module")
def fixture_schemas(fixtures_dir):
    with open(os.path.join(fixtures_dir, "ftrack_schemas.json")) as handle:
        return json.load(handle)


def test_builds_all_fixture_types(fixture_schemas):
    types = build_types(fixture_schemas)
    assert len(types) == len(fixture_schemas) == 116
    shot = types["Shot"]
    assert shot.entity_type == "Shot" and shot.primary_key_attributes == ("id",)
    assert shot._schema["alias_for"]["classifiers"]
    metadata = types["Metadata"]
    assert metadata.primary_key_attributes == ("parent_id", "key")
    attrs = types["Task"]._attributes()
    assert attrs.get("parent").kind == "reference"
    assert attrs.get("children").kind == "collection"
    assert attrs.get("metadata").kind == "mapped"
    assert attrs.get("metadata").key_attribute == "key"
    assert not attrs.get("id").mutable


def test_construct_hook_may_supply_a_class(fixture_schemas):
    from reviewd.api.schema import build_type

    custom = build_type({"id": "Note", "primary_key": ["id"], "properties": {}})
    types = build_types(fixture_schemas, lambda s: custom if s["id"] == "Note" else None)
    assert types["Note"] is custom
    # Something that is not an entity class is refused and logged, not fatal.
    types = build_types(fixture_schemas, lambda s: object if s["id"] == "Note" else None)
    assert types["Note"] is not object


def test_schema_cache_file_round_trip_and_corruption(tmp_path, fixture_schemas, caplog):
    folder = str(tmp_path)
    path = write_cached(folder, "abc", fixture_schemas)
    assert read_cached(folder, "abc") == fixture_schemas
    assert read_cached(folder, "other") is None
    write_cached(folder, "def", fixture_schemas)
    assert not os.path.exists(path), "stale cache files are removed"
    with open(os.path.join(folder, "reviewd-schemas-def.json"), "w") as handle:
        handle.write("{not json")
    assert read_cached(folder, "def") is None
    assert "Ignoring unreadable schema cache" in caplog.text


def test_schema_cache_unwritable_is_not_fatal(tmp_path, fixture_schemas, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert write_cached(str(blocker / "sub"), "abc", fixture_schemas) is None
    assert "Could not write the schema cache" in caplog.text


def test_server_version_check():
    from reviewd.api.exception import ServerCompatibilityError

    for ok in ("dev", "4.13.8", "3.3.11", None):
        check_server_version(ok)
    with pytest.raises(ServerCompatibilityError, match="3.3.10"):
        check_server_version("3.3.10")
