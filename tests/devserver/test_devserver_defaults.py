"""Server-side defaults on create, many-to-many assignment and derived attributes.

Each rule of ``docs/devserver.md`` that a minimal create relies on, checked over HTTP;
and a create that still misses a required attribute when its batch ends is refused in
the error form with nothing written.
"""

from __future__ import annotations

import uuid

from tests.devserver.conftest import Api


def create(entity_type: str, **data) -> dict:
    entity_id = data.setdefault("id", str(uuid.uuid4()))
    return {
        "action": "create",
        "entity_type": entity_type,
        "entity_key": [entity_id],
        "entity_data": {"__entity_type__": entity_type, **data},
    }


def update(entity_type: str, entity_id: str, **data) -> dict:
    return {
        "action": "update",
        "entity_type": entity_type,
        "entity_key": [entity_id],
        "entity_data": {"__entity_type__": entity_type, **data},
    }


def test_a_tree_from_names_and_parents_only(devserver):
    api = Api(devserver)
    [project] = api.query("select id from Project where name is demo_production")
    sequence, shot, task = (
        create("Sequence", name="SQ500"),
        create("Shot", name="SH010"),
        create("Task", name="comp"),
    )
    shot["entity_data"]["parent_id"] = sequence["entity_key"][0]
    task["entity_data"]["parent_id"] = shot["entity_key"][0]
    sequence["entity_data"]["parent_id"] = project["id"]
    asset = create("Asset", name="plate", context_id=shot["entity_key"][0])
    first = create("AssetVersion", asset_id=asset["entity_key"][0])
    second = create("AssetVersion", asset_id=asset["entity_key"][0])
    reply = api.call([sequence, shot, task, asset, first, second])
    assert isinstance(reply, list), reply
    [seq] = api.query(
        f"select status.name, type.name, project_id from Sequence "
        f'where id is "{sequence["entity_key"][0]}"'
    )
    assert seq["status"]["name"] == "Not started" and seq["type"]["name"] == "Generic"
    assert seq["project_id"] == project["id"]
    [new_task] = api.query(
        f'select status.name, type.name, bid, sort from Task where id is "{task["entity_key"][0]}"'
    )
    # The project's task type schema starts with Animation; its task workflow with Not started.
    assert new_task["type"]["name"] == "Animation"
    assert new_task["status"]["name"] == "Not started"
    versions = api.query(
        f"select version, status.name, user.username from AssetVersion "
        f'where asset_id is "{asset["entity_key"][0]}" order by version'
    )
    assert [v["version"] for v in versions] == [1, 2]
    assert {v["status"]["name"] for v in versions} == {"Pending Review"}
    assert {v["user"]["username"] for v in versions} == {devserver.api_user}
    [new_asset] = api.query(f'select type.name from Asset where id is "{asset["entity_key"][0]}"')
    assert new_asset["type"]["name"] == "Upload"


def test_minimal_user_and_component(devserver):
    api = Api(devserver)
    user, component = create("User"), create("Component")
    [user_reply, component_reply] = api.call([user, component])
    assert user_reply["data"]["username"].startswith("user-")
    assert user_reply["data"]["is_active"] is True
    assert "email" not in user_reply["data"]  # unset stays unloaded for the client
    assert component_reply["data"]["name"] == "main"
    assert component_reply["data"]["system_type"] == "file"


def test_required_attributes_are_checked_when_the_batch_ends(devserver):
    api = Api(devserver)
    scope = create("Scope")
    scope_id = scope["entity_key"][0]
    reply = api.call([scope, update("Scope", scope_id, name="fx")])
    assert isinstance(reply, list), reply
    assert api.query(f'select name from Scope where id is "{scope_id}"')[0]["name"] == "fx"

    lonely = create("Scope")
    other = create("Scope", name="kept?")
    refused = api.call([other, lonely])
    assert refused["exception"] == "ValidationError"
    assert refused["content"].startswith("Operation 2 of 2 (create Scope) failed: ")
    assert "name" in refused["content"]
    assert api.query(f'select id from Scope where id is "{lonely["entity_key"][0]}"') == []
    assert api.query(f'select id from Scope where id is "{other["entity_key"][0]}"') == []


def test_many_to_many_scopes_are_added_removed_and_queryable(devserver):
    api = Api(devserver)
    [task] = api.query("select id from Task limit 1")
    one, two = create("Scope", name="lookdev"), create("Scope", name="fx-heavy")
    api.call([one, two])
    ids = [one["entity_key"][0], two["entity_key"][0]]
    refs = [{"__entity_type__": "Scope", "id": scope_id} for scope_id in ids]
    [reply] = api.call([update("Task", task["id"], scopes=refs)])
    assert sorted(s["id"] for s in reply["data"]["scopes"]) == sorted(ids)
    assert api.query('select id from Task where scopes.name is "fx-heavy"') == [
        {"__entity_type__": "Task", "id": task["id"]}
    ]
    api.call([update("Task", task["id"], scopes=refs[:1])])
    assert api.query('select id from Task where scopes.name is "fx-heavy"') == []
    [again] = api.query(f'select scopes.name from Task where id is "{task["id"]}"')
    assert [s["name"] for s in again["scopes"]] == ["lookdev"]
    missing = api.call(
        [update("Task", task["id"], scopes=[{"__entity_type__": "Scope", "id": str(uuid.uuid4())}])]
    )
    assert missing["exception"] == "NoResultFoundError"
    [still] = api.query(f'select scopes.name from Task where id is "{task["id"]}"')
    assert [s["name"] for s in still["scopes"]] == ["lookdev"]


def test_latest_version_filter_and_several_metadata_keys(devserver):
    api = Api(devserver)
    latest = api.query("select asset_id, version from AssetVersion where is_latest_version is true")
    every = api.query("select asset_id, version from AssetVersion")
    top = {}
    for version in every:
        top[version["asset_id"]] = max(top.get(version["asset_id"], 0), version["version"])
    assert sorted((v["asset_id"], v["version"]) for v in latest) == sorted(top.items())
    [project] = api.query("select id from Project where name is demo_production")
    metadata = [
        create("Metadata", parent_id=project["id"], parent_type="Project", key=k, value=v)
        for k, v in (("a", "1"), ("b", "2"))
    ]
    for operation in metadata:
        operation["entity_key"] = [project["id"], operation["entity_data"]["key"]]
        del operation["entity_data"]["id"]
    api.call(metadata)
    [again] = api.query(
        f'select metadata.key, metadata.value from Project where id is "{project["id"]}"'
    )
    stored = {m["key"]: m["value"] for m in again["metadata"]}
    assert stored.items() >= {"a": "1", "b": "2"}.items()


def test_a_second_running_timer_is_refused(devserver):
    api = Api(devserver)
    [user] = api.query(f'select id from User where username is "{devserver.api_user}"')
    assert isinstance(api.call([create("Timer", user_id=user["id"])]), list)
    refused = api.call([create("Timer", user_id=user["id"])])
    assert refused["exception"] == "DuplicateEntryError"
    assert len(api.query(f'select id from Timer where user_id is "{user["id"]}"')) == 1


def test_custom_attribute_values_must_fit_their_owner(devserver):
    api = Api(devserver)
    [config] = api.query('select id from CustomAttributeConfiguration where key is "fstart"')
    [version] = api.query("select id from AssetVersion limit 1")
    for owner_id, words in ((version["id"], "does not apply"), (str(uuid.uuid4()), "no entity")):
        refused = api.call(
            [
                {
                    "action": "create",
                    "entity_type": "CustomAttributeValue",
                    "entity_key": [config["id"], owner_id],
                    "entity_data": {
                        "__entity_type__": "CustomAttributeValue",
                        "configuration_id": config["id"],
                        "entity_id": owner_id,
                        "value": 5,
                    },
                }
            ]
        )
        assert refused["exception"] == "ValidationError" and words in refused["content"], refused
    assert (
        api.query(
            f"select entity_id from CustomAttributeValue "
            f'where configuration_id is "{config["id"]}" and entity_id is "{version["id"]}"'
        )
        == []
    )
    # Its dense list on a Shot has the configuration with its default when nothing is stored.
    [shot] = api.query("select custom_attributes.key, custom_attributes.value from Shot limit 1")
    assert {"fstart", "fend", "handles"} <= {item["key"] for item in shot["custom_attributes"]}
