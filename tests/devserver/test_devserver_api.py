"""POST /api: server information, schemas, credentials, and every kind of bad input.

Each refusal must come back in the documented error form, leave the store untouched,
and leave the server serving the next request.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from reviewd.devserver.seed import seed_id

SHOT = seed_id("Shot", "SQ010", "SH010")


def count(api, entity_type: str) -> int:
    return len(api.query(f"select id from {entity_type}"))


def assert_error(reply, exception: str, *fragments: str) -> None:
    assert isinstance(reply, dict), reply
    assert set(reply) == {"exception", "content", "error_code"}, reply
    assert reply["exception"] == exception, reply
    for fragment in fragments:
        assert fragment in reply["content"], reply


def test_server_information_looks_real_and_hash_matches_schemas(shared_api):
    info, schemas = shared_api.call(
        [{"action": "query_server_information"}, {"action": "query_schemas"}]
    )
    major, minor, patch = (int(part) for part in info["version"].split("."))
    assert (major, minor, patch) >= (3, 3, 11)
    assert info["is_timezone_support_enabled"] is True
    assert info["storage_scenario"]["scenario"]
    expected = hashlib.md5(json.dumps(schemas, sort_keys=True).encode("utf-8")).hexdigest()
    assert info["schema_hash"] == expected


def test_default_schema_covers_the_issue_types(shared_api):
    (schemas,) = shared_api.call([{"action": "query_schemas"}])
    by_id = {schema["id"]: schema for schema in schemas}
    wanted = (
        "Project TypedContext Context Sequence Shot Task Folder Episode AssetBuild Milestone "
        "ObjectType Type Status State Priority ProjectSchema User Asset AssetType AssetVersion "
        "Component FileComponent ContainerComponent SequenceComponent ComponentLocation Location "
        "Note NoteCategory NoteLabel Metadata ReviewSession ReviewSessionObject "
        "ReviewSessionInvitee ReviewSessionObjectStatus List Job Event"
    ).split()
    assert not [name for name in wanted if name not in by_id]
    assert by_id["Project"]["alias_for"] == "Show"
    assert by_id["Shot"]["alias_for"]["id"] == "Task"
    assert "object_typeid" in by_id["Shot"]["alias_for"]["classifiers"]
    version = by_id["AssetVersion"]["properties"]
    assert version["notes"]["items"]["$ref"] == "Note"
    assert version["metadata"]["type"] == "mapped_array"
    assert by_id["Context"]["properties"]["children"]["type"] == "array"
    assert by_id["Task"]["properties"]["id"]["default"] == "{uid}"
    for schema in schemas:
        assert set(schema["default_projections"]) <= set(schema["properties"]), schema["id"]


def test_fixture_schema_is_served_verbatim(fixtures_dir):
    from reviewd.devserver import DevServer

    path = f"{fixtures_dir}/ftrack_schemas.json"
    with open(path) as handle:
        fixture = json.load(handle)
    with DevServer(schema=path) as server:
        from tests.devserver.conftest import Api

        api = Api(server)
        info, schemas = api.call(
            [{"action": "query_server_information"}, {"action": "query_schemas"}]
        )
        assert schemas == fixture
        assert info["schema_hash"] == "23a1157b8b1730fd91c76f63dcd67a8f"
        # Scalars of every type work; references resolve through <name>_id keys.
        tasks = api.query(
            "select name, status.name, parent.name from Task where parent.name is SH010"
        )
        assert tasks and all(
            task["status"]["name"] and task["parent"]["name"] == "SH010" for task in tasks
        )
        assert api.query("select name, is_active from Status where is_active is True")
        # Every scalar and every reference of all 116 types can be projected.
        by_id = {schema["id"]: schema for schema in fixture}
        batch = []
        for schema in fixture:
            computed = set(schema.get("computed", []))
            paths = []
            for name, spec in schema["properties"].items():
                if name in computed:
                    continue
                if spec.get("type") not in (None, "array", "mapped_array"):
                    paths.append(name)
                elif "type" not in spec and spec.get("$ref") in by_id:
                    paths.append(f"{name}.{by_id[spec['$ref']]['primary_key'][0]}")
            batch.append(
                {"action": "query", "expression": f"select {', '.join(paths)} from {schema['id']}"}
            )
        replies = api.call(batch)
        assert isinstance(replies, list) and len(replies) == len(fixture), replies


def test_wrong_api_key_is_refused_in_documented_form(api):
    reply = api.call([{"action": "query", "expression": "select id from Task"}], key="not-the-key")
    assert_error(reply, "InvalidCredentialsError")
    reply = api.call([{"action": "query_server_information"}], user="nobody")
    assert_error(reply, "InvalidCredentialsError")
    assert api.query("select id from Project")  # still serving


def test_strict_mode_uses_http_status_codes(api):
    response = api.post([{"action": "query_server_information"}], key="wrong", strict=True)
    assert response.status_code == 401
    assert response.json()["exception"] == "InvalidCredentialsError"
    response = api.post([{"action": "nope"}], strict=True)
    assert response.status_code == 400
    response = api.post([{"action": "nope"}], strict=False)
    assert response.status_code == 200 and response.json()["exception"]


def test_api_key_never_appears_in_errors(api):
    key = api.server.api_key
    reply = api.call(
        [{"action": "query", "expression": f"select id from Task where name is {key} x"}]
    )
    assert reply["exception"] == "ParseError"
    assert key not in json.dumps(reply)


@pytest.mark.parametrize(
    "body, exception, fragment",
    [
        (b"this is not json", "InvalidRequestError", "not valid JSON"),
        (b'{"action": "query"}', "InvalidRequestError", "JSON list"),
        (b"[42]", "InvalidRequestError", "JSON object"),
    ],
)
def test_malformed_bodies(api, body, exception, fragment):
    before = count(api, "Note")
    reply = api.post(body, raw=True).json()
    assert_error(reply, exception, fragment)
    assert count(api, "Note") == before


def test_unknown_action(api):
    assert_error(api.call([{"action": "make_coffee"}]), "UnknownActionError", "make_coffee")


def test_unknown_entity_type(api):
    reply = api.call([{"action": "query", "expression": "select id from Spaceship"}])
    assert_error(reply, "UnknownEntityTypeError", "Spaceship")
    reply = api.call(
        [{"action": "create", "entity_type": "Spaceship", "entity_key": ["x"], "entity_data": {}}]
    )
    assert_error(reply, "UnknownEntityTypeError", "Spaceship")


def test_unknown_attribute(api):
    reply = api.call([{"action": "query", "expression": "select warp_speed from Shot"}])
    assert_error(reply, "UnknownAttributeError", "warp_speed")
    reply = api.call(
        [
            {
                "action": "update",
                "entity_type": "Shot",
                "entity_key": [SHOT],
                "entity_data": {"warp_speed": 9},
            }
        ]
    )
    assert_error(reply, "UnknownAttributeError", "warp_speed")
    assert api.query(f"select name from Shot where id is {SHOT}")[0]["name"] == "SH010"


def test_invalid_query_names_token_and_position(api):
    reply = api.call([{"action": "query", "expression": "select name from Task where name iz 'x'"}])
    assert_error(reply, "ParseError", "'iz'", "position 33")


def test_missing_required_attribute(api):
    before = count(api, "Status")
    reply = api.call(
        [
            {
                "action": "create",
                "entity_type": "Status",
                "entity_key": ["s-1"],
                "entity_data": {"__entity_type__": "Status", "id": "s-1", "color": "#fff"},
            }
        ]
    )
    assert_error(reply, "ValidationError", "name")
    assert count(api, "Status") == before


def test_changing_an_immutable_attribute(api):
    reply = api.call(
        [
            {
                "action": "update",
                "entity_type": "Shot",
                "entity_key": [SHOT],
                "entity_data": {"object_type_id": "11c137c0-ee7e-4f9c-91c5-8c77cec22b2c"},
            }
        ]
    )
    assert_error(reply, "ImmutableAttributeError", "object_type_id")
    assert api.query(f"select id from Shot where id is {SHOT}")  # still a Shot


def test_bad_value_type(api):
    reply = api.call(
        [
            {
                "action": "update",
                "entity_type": "Shot",
                "entity_key": [SHOT],
                "entity_data": {"start_date": "next tuesday"},
            }
        ]
    )
    assert_error(reply, "ValidationError", "start_date")


def test_batch_whose_third_operation_fails_writes_nothing(api):
    notes_before = count(api, "Note")
    version = api.query("select id from AssetVersion limit 1")[0]["id"]
    user = api.query("select id from User limit 1")[0]["id"]
    batch = [
        {
            "action": "create",
            "entity_type": "Note",
            "entity_key": ["n-1"],
            "entity_data": {
                "__entity_type__": "Note",
                "id": "n-1",
                "content": "first",
                "parent_id": version,
                "parent_type": "AssetVersion",
                "user_id": user,
            },
        },
        {
            "action": "update",
            "entity_type": "Shot",
            "entity_key": [SHOT],
            "entity_data": {"description": "changed in a failed batch"},
        },
        {
            "action": "update",
            "entity_type": "Shot",
            "entity_key": [SHOT],
            "entity_data": {"no_such_attribute": 1},
        },
        {"action": "delete", "entity_type": "Note", "entity_key": ["n-1"]},
    ]
    reply = api.call(batch)
    assert_error(reply, "UnknownAttributeError", "Operation 3 of 4 (update Shot)")
    assert count(api, "Note") == notes_before
    assert api.query(f"select description from Shot where id is {SHOT}")[0]["description"] != (
        "changed in a failed batch"
    )
    assert not api.query("select id from Note where id is n-1")


def test_update_and_delete_of_missing_entity(api):
    reply = api.call(
        [
            {
                "action": "update",
                "entity_type": "Shot",
                "entity_key": ["nope"],
                "entity_data": {"name": "x"},
            }
        ]
    )
    assert_error(reply, "NoResultFoundError", "nope")
    reply = api.call([{"action": "delete", "entity_type": "Shot", "entity_key": ["nope"]}])
    assert_error(reply, "NoResultFoundError", "nope")


def test_action_counts_and_batches_record_requests(api):
    server = api.server
    before = server.action_counts["query_schemas"]
    api.call([{"action": "query_schemas"}, {"action": "query_server_information"}])
    assert server.action_counts["query_schemas"] == before + 1
    assert server.batches[-1][0] == {"action": "query_schemas"}


def test_create_update_delete_round_trip(api):
    user = api.query("select id from User limit 1")[0]["id"]
    version = api.query("select id from AssetVersion limit 1")[0]["id"]
    (created,) = api.call(
        [
            {
                "action": "create",
                "entity_type": "Note",
                "entity_key": [None],
                "entity_data": {
                    "__entity_type__": "Note",
                    "content": "hello",
                    "author": {"__entity_type__": "User", "id": user},
                    "parent_id": version,
                    "parent_type": "AssetVersion",
                },
            }
        ]
    )
    note = created["data"]
    assert created["action"] == "create" and note["__entity_type__"] == "Note"
    assert len(note["id"]) == 36  # {uid} default
    assert note["user_id"] == user and note["date"]["__type__"] == "datetime"
    (updated,) = api.call(
        [
            {
                "action": "update",
                "entity_type": "Note",
                "entity_key": [note["id"]],
                "entity_data": {"content": "hello again"},
            }
        ]
    )
    assert updated["data"]["content"] == "hello again"
    (owner,) = api.query(f"select notes.content from AssetVersion where id is {version}")
    assert "hello again" in [n["content"] for n in owner["notes"]]
    (fetched,) = api.query(f"select content, author.username from Note where id is {note['id']}")
    assert fetched["content"] == "hello again" and fetched["author"]["username"]
    (deleted,) = api.call([{"action": "delete", "entity_type": "Note", "entity_key": [note["id"]]}])
    assert deleted == {"action": "delete", "data": True}
    assert not api.query(f"select id from Note where id is {note['id']}")


def test_deleting_a_context_deletes_its_descendants(api):
    sequence = seed_id("Sequence", "SQ020")
    assert len(api.query(f"select id from Shot where parent_id is {sequence}")) == 3
    versions_before = count(api, "AssetVersion")
    api.call([{"action": "delete", "entity_type": "Sequence", "entity_key": [sequence]}])
    assert not api.query("select id from TypedContext where parent.name is SQ020")
    assert not api.query("select id from Task where parent.parent.name is SQ020")
    assert not api.query("select id from Asset where parent.parent.name is SQ020")
    assert count(api, "AssetVersion") < versions_before
    assert api.query("select id from Shot where parent.name is SQ010")  # siblings untouched


def test_reset_remote_resets_an_attribute_to_its_default(api):
    api.call(
        [
            {
                "action": "update",
                "entity_type": "Shot",
                "entity_key": [SHOT],
                "entity_data": {"bid": 40, "thumbnail_id": "some-component"},
            }
        ]
    )
    (reset,) = api.call(
        [
            {
                "action": "reset_remote",
                "reset_type": "thumbnail",
                "entity_type": "Shot",
                "entity_key": SHOT,
            }
        ]
    )
    assert reset["data"]["thumbnail_id"] is None
    (reset,) = api.call(
        [{"action": "reset_remote", "reset_type": "bid", "entity_type": "Shot", "entity_key": SHOT}]
    )
    assert reset["data"]["bid"] == 0
    refused = api.call(
        [{"action": "reset_remote", "reset_type": "id", "entity_type": "Shot", "entity_key": SHOT}]
    )
    assert_error(refused, "ImmutableAttributeError", "id")


def test_execute_batch_raises_api_error_with_the_wire_form_of_post_api(devserver, api):
    from reviewd.devserver.errors import ApiError

    batch = [
        {
            "action": "update",
            "entity_type": "Shot",
            "entity_key": [SHOT],
            "entity_data": {"description": "never written"},
        },
        {
            "action": "update",
            "entity_type": "Shot",
            "entity_key": [SHOT],
            "entity_data": {"bogus": 1},
        },
    ]
    over_http = api.call(batch)
    with pytest.raises(ApiError) as raised:
        devserver.execute_batch(batch, devserver.api_user)
    assert raised.value.to_wire() == over_http
    assert_error(raised.value.to_wire(), "UnknownAttributeError", "Operation 2 of 2", "bogus")
    with pytest.raises(ApiError) as not_a_list:
        devserver.execute_batch({"action": "query"}, devserver.api_user)
    assert not_a_list.value.to_wire()["exception"] == "InvalidRequestError"
    assert (
        api.query(f"select description from Shot where id is {SHOT}")[0]["description"]
        != "never written"
    )
