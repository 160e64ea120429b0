"""Files in the ``ftrack.server`` location and the other non-CRUD actions, over real HTTP.

Each refused request must answer in the documented error form and write nothing.
"""

from __future__ import annotations

import json
import uuid

import requests

SERVER_LOCATION = "3a372bde-05bc-11e4-8908-20c9d081909b"


def call(server, operations, user=None, key=None):
    response = requests.post(
        f"{server.url}/api",
        data=json.dumps(operations),
        timeout=30,
        headers={
            "ftrack-user": user or server.api_user,
            "ftrack-api-key": key or server.api_key,
            "content-type": "application/json",
        },
    )
    return response.json()


def query(server, expression):
    return call(server, [{"action": "query", "expression": expression}])[0]["data"]


def counts(server):
    return {
        name: len(query(server, f"select id from {name}"))
        for name in ("Component", "Job", "ComponentLocation")
    }


def make_component(server, version_id=None):
    component_id = str(uuid.uuid4())
    data = {"__entity_type__": "FileComponent", "id": component_id, "file_type": ".bin"}
    if version_id:
        data["version_id"] = version_id
    [reply] = call(
        server,
        [
            {
                "action": "create",
                "entity_type": "FileComponent",
                "entity_key": [component_id],
                "entity_data": data,
            }
        ],
    )
    assert reply["data"]["name"] == "main"  # the server-side default
    return component_id


def upload(server, component_id, body: bytes):
    [meta] = call(
        server,
        [
            {
                "action": "get_upload_metadata",
                "component_id": component_id,
                "file_name": "main.bin",
                "file_size": len(body),
            }
        ],
    )
    assert server.api_key not in meta["url"]
    response = requests.put(meta["url"], data=body, headers=meta["headers"], timeout=30)
    assert response.status_code == 200, response.text
    return meta


def download(server, component_id, **params):
    query_params = {"id": component_id, "username": server.api_user, "apiKey": server.api_key}
    query_params.update(params)
    return requests.get(f"{server.url}/component/get", params=query_params, timeout=30)


def test_upload_then_download_and_remove(devserver):
    component_id = make_component(devserver)
    body = bytes(range(256)) * 40
    upload(devserver, component_id, body)
    response = download(devserver, component_id)
    assert response.status_code == 200 and response.content == body
    removed = requests.get(
        f"{devserver.url}/component/remove",
        timeout=30,
        params={"id": component_id, "username": devserver.api_user, "apiKey": devserver.api_key},
    )
    assert removed.status_code == 200
    assert download(devserver, component_id).status_code == 404


def test_file_routes_refuse_bad_credentials_signatures_and_ids(devserver):
    component_id = make_component(devserver)
    meta = upload(devserver, component_id, b"original")
    assert download(devserver, component_id, apiKey="wrong").status_code == 401
    tampered = meta["url"].replace("signature=", "signature=0")
    assert requests.put(tampered, data=b"evil", timeout=30).status_code == 403
    other = make_component(devserver)
    forged = meta["url"].replace(component_id, other)
    assert requests.put(forged, data=b"evil", timeout=30).status_code == 403
    assert download(devserver, "../../etc/passwd").status_code == 400
    # Nothing was overwritten or created by the refused uploads.
    assert download(devserver, component_id).content == b"original"
    assert download(devserver, other).status_code == 404


def test_get_upload_metadata_refuses_bad_input_in_the_error_form(devserver):
    before = counts(devserver)
    for operation, word in [
        ({"action": "get_upload_metadata", "file_name": "x"}, "component_id"),
        ({"action": "get_upload_metadata", "component_id": "c", "file_name": ""}, "file_name"),
        (
            {
                "action": "get_upload_metadata",
                "component_id": "c",
                "file_name": "x",
                "file_size": -1,
            },
            "file_size",
        ),
    ]:
        reply = call(devserver, [operation])
        assert reply["exception"] == "ValidationError" and word in reply["content"], reply
    assert counts(devserver) == before


def test_encode_media_makes_a_finished_job_with_components(devserver):
    version = query(devserver, "select id from AssetVersion")[0]["id"]
    source = make_component(devserver, version)
    upload(devserver, source, b"\x00movie-bytes")
    [reply] = call(
        devserver,
        [
            {
                "action": "encode_media",
                "component_id": source,
                "version_id": version,
                "keep_original": True,
            }
        ],
    )
    [job] = query(
        devserver,
        f"select status, data, job_components.component_id from Job "
        f'where id is "{reply["job_id"]}"',
    )
    assert job["status"] == "done"
    data = json.loads(job["data"])
    assert data["source_component_id"] == source and data["keep_original"] is True
    outputs = {o["format"]: o["component_id"] for o in data["output"]}
    assert set(outputs) == {"mp4", "image"}
    assert {c["component_id"] for c in job["job_components"]} == set(outputs.values())
    for component_id in outputs.values():
        [component] = query(
            devserver,
            f"select name, version_id, component_locations.location_id "
            f'from Component where id is "{component_id}"',
        )
        assert component["version_id"] == version
        assert component["component_locations"][0]["location_id"] == SERVER_LOCATION
        assert download(devserver, component_id).content == b"\x00movie-bytes"


def test_encode_media_refuses_a_component_without_data_and_writes_nothing(devserver):
    source = make_component(devserver)
    before = counts(devserver)
    reply = call(devserver, [{"action": "encode_media", "component_id": source}])
    assert reply["exception"] == "ValidationError" and "no data" in reply["content"]
    reply = call(devserver, [{"action": "encode_media", "component_id": str(uuid.uuid4())}])
    assert reply["exception"] == "NoResultFoundError"
    assert counts(devserver) == before


def test_widget_url_is_a_page_of_the_server(devserver):
    task = query(devserver, "select id, name from Task")[0]
    [reply] = call(
        devserver,
        [
            {
                "action": "get_widget_url",
                "name": "info",
                "theme": "light",
                "entity_type": "Task",
                "entity_key": [task["id"]],
            }
        ],
    )
    url = reply["widget_url"]
    assert url.startswith(devserver.url) and devserver.api_key not in url
    page = requests.get(url, timeout=30)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert task["name"] in page.text and "theme-light" in page.text
    assert requests.get(url.replace("entityId=", "entityId=x"), timeout=30).status_code == 403
    reply = call(
        devserver,
        [
            {
                "action": "get_widget_url",
                "name": "info",
                "entity_type": "Task",
                "entity_key": [str(uuid.uuid4())],
            }
        ],
    )
    assert reply["exception"] == "NoResultFoundError"


def test_reset_api_key_gives_a_new_working_key(devserver):
    user_id = str(uuid.uuid4())
    call(
        devserver,
        [
            {
                "action": "create",
                "entity_type": "User",
                "entity_key": [user_id],
                "entity_data": {"__entity_type__": "User", "id": user_id, "username": "reset.me"},
            }
        ],
    )
    [first] = call(
        devserver,
        [
            {
                "action": "reset_remote",
                "reset_type": "api_key",
                "entity_type": "User",
                "entity_key": user_id,
            }
        ],
    )
    [second] = call(
        devserver,
        [
            {
                "action": "reset_remote",
                "reset_type": "api_key",
                "entity_type": "User",
                "entity_key": user_id,
            }
        ],
    )
    old, new = first["data"]["api_key"], second["data"]["api_key"]
    assert old != new
    assert call(devserver, [{"action": "query_server_information"}], "reset.me", new)[0]["version"]
    refused = call(devserver, [{"action": "query_server_information"}], "reset.me", old)
    assert refused["exception"] == "InvalidCredentialsError"
    assert old not in json.dumps(refused) and new not in repr(devserver)


def test_files_live_beside_the_data_file_and_survive_a_restart(tmp_path):
    from reviewd.devserver import DevServer

    data = str(tmp_path / "dev.sqlite")
    with DevServer(data=data, api_key="persist-key-0123456789") as server:
        component_id = make_component(server)
        upload(server, component_id, b"kept across restarts")
    assert (tmp_path / "dev.sqlite.files" / component_id).read_bytes() == b"kept across restarts"
    with DevServer(data=data, api_key="persist-key-0123456789") as server:
        assert download(server, component_id).content == b"kept across restarts"


def test_an_in_memory_server_removes_its_temporary_files():
    import os

    from reviewd.devserver import DevServer

    with DevServer() as server:
        component_id = make_component(server)
        upload(server, component_id, b"temporary")
        root = server.files.root
        assert os.path.isfile(os.path.join(root, component_id))
    assert not os.path.exists(root)
