"""Storage: persistence across restarts (acceptance 4), defaults, and the standalone CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from reviewd.devserver import DevServer
from reviewd.devserver.schema import build_model, load_schemas
from reviewd.devserver.seed import seed_id
from tests.devserver.conftest import Api

SHOT = seed_id("Shot", "SQ010", "SH010")


def test_data_written_before_a_restart_is_there_after_it(tmp_path):
    data = str(tmp_path / "studio.sqlite")
    with DevServer(data=data) as server:
        api = Api(server)
        key, user = server.api_key, server.api_user
        project = api.query("select id from Project")[0]["id"]
        api.call(
            [
                {
                    "action": "update",
                    "entity_type": "Shot",
                    "entity_key": [SHOT],
                    "entity_data": {
                        "description": "kept",
                        "start_date": {
                            "__type__": "datetime",
                            "value": "2026-12-01T09:30:00+01:00",
                        },
                    },
                },
                {
                    "action": "create",
                    "entity_type": "Sequence",
                    "entity_key": ["seq-new"],
                    "entity_data": {
                        "__entity_type__": "Sequence",
                        "id": "seq-new",
                        "name": "SQ030",
                        "parent_id": project,
                        "status_id": seed_id("Status", "Ready"),
                        "type_id": seed_id("Type", "Generic"),
                    },
                },
            ]
        )
        shots_before = len(api.query("select id from Shot"))
    with DevServer(data=data) as server:
        api = Api(server)
        assert (server.api_user, server.api_key) == (user, key)  # credentials persist too
        (shot,) = api.query(f"select description, start_date from Shot where id is {SHOT}")
        assert shot["description"] == "kept"
        assert shot["start_date"] == {"__type__": "datetime", "value": "2026-12-01T08:30:00+00:00"}
        (sequence,) = api.query("select name, project_id from Sequence where id is 'seq-new'")
        assert sequence["name"] == "SQ030" and sequence["project_id"] == project
        assert len(api.query("select id from Shot")) == shots_before  # not seeded twice


def test_given_credentials_override_stored_ones(tmp_path):
    data = str(tmp_path / "studio.sqlite")
    with DevServer(data=data, api_user="pipeline", api_key="k" * 32) as server:
        assert Api(server).query("select username from User where username is pipeline")
    with DevServer(data=data, api_key="z" * 32) as server:
        assert server.api_user == "pipeline" and server.api_key == "z" * 32
        assert Api(server).call([{"action": "query_server_information"}])[0]["version"]
        refused = Api(server).call([{"action": "query_server_information"}], key="k" * 32)
        assert refused["exception"] == "InvalidCredentialsError"


def test_empty_seed_has_only_the_api_user():
    with DevServer(seed="empty") as server:
        api = Api(server)
        assert [u["username"] for u in api.query("select username from User")] == [server.api_user]
        assert api.query("select id from Project") == []


def test_unknown_seed_is_refused():
    with pytest.raises(ValueError, match="unknown seed"):
        DevServer(seed="galaxy")


def test_defaults_and_classifiers_are_applied_on_create(api):
    project = api.query("select id from Project")[0]["id"]
    (created,) = api.call(
        [
            {
                "action": "create",
                "entity_type": "Shot",
                "entity_key": [None],
                "entity_data": {
                    "__entity_type__": "Shot",
                    "name": "SH999",
                    "parent_id": project,
                    "status_id": seed_id("Status", "Ready"),
                    "type_id": seed_id("Type", "Generic"),
                },
            }
        ]
    )
    shot = created["data"]
    assert len(shot["id"]) == 36
    assert shot["object_type_id"] == "bad911de-3bd6-47b9-8b46-3476e237cb36"
    assert shot["context_type"] == "task" and shot["project_id"] == project
    assert shot["priority_id"] and shot["bid"] == 0
    assert shot["created_at"]["__type__"] == "datetime"
    (stored,) = api.query(f"select created_by.username from Shot where id is {shot['id']}")
    assert stored["created_by"]["username"] == api.server.api_user


def test_model_infers_keys_for_the_fixture_schema(fixtures_dir):
    model = build_model(load_schemas(f"{fixtures_dir}/ftrack_schemas.json"))
    # 116 served types, plus hidden link tables for collections the list gives no type.
    assert len([name for name in model.types if not name.startswith("__")]) == 116
    assert model.types["Task"].attributes["scopes"].link == (
        "__context_scopes",
        "owner_id",
        "item_id",
    )
    task = model.types["Task"]
    assert task.attributes["status"].fk == "status_id"
    assert task.attributes["children"].fk == "parent_id"
    assert task.table == model.types["Project"].table == model.types["Context"].table
    assert model.is_a("Shot", "TypedContext") and model.is_a("Project", "Context")
    assert not model.is_a("Project", "TypedContext")
    assert model.types["AssetVersion"].attributes["asset"].fk == "asset_id"
    assert model.types["AssetVersion"].attributes["notes"].polymorphic


def test_bad_schema_file_is_a_clear_error(tmp_path):
    from reviewd.devserver.schema import SchemaError

    path = tmp_path / "schemas.json"
    path.write_text('{"not": "a list"}')
    with pytest.raises(SchemaError, match="JSON list"):
        DevServer(schema=str(path)).start()


def _start_cli(*args, env=None):
    return subprocess.Popen(
        [sys.executable, "-m", "reviewd.daemon.cli", "devserver", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    )


def _read_settings(process) -> dict:
    settings = {}
    for line in process.stdout:
        if "=" in line:
            name, _, value = line.strip().partition("=")
            settings[name] = value
        if "FTRACK_API_KEY" in settings:
            return settings
    raise AssertionError(f"the CLI printed no credentials; stderr: {process.stderr.read()}")


def test_cli_serves_prints_credentials_and_stops_on_sigterm(tmp_path):
    data = str(tmp_path / "cli.sqlite")
    process = _start_cli(
        "--data", data, "--seed", "demo", env={"REVIEWD_DEVSERVER_API_KEY": "cli-key-0123456789"}
    )
    try:
        settings = _read_settings(process)
        assert settings["FTRACK_API_USER"] == "admin"
        assert settings["FTRACK_API_KEY"] == "cli-key-0123456789"

        class Target:
            url = settings["FTRACK_SERVER"]
            api_user = settings["FTRACK_API_USER"]
            api_key = settings["FTRACK_API_KEY"]

        assert len(Api(Target).query("select id from Shot")) == 6
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        assert "stopped" in process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert os.path.getsize(data) > 0


def test_cli_refuses_a_missing_schema_file_with_exit_78(tmp_path):
    process = _start_cli("--schema", str(tmp_path / "missing.json"))
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 78
    assert "cannot read schema file" in stderr and "Traceback" not in stderr


def test_a_busy_port_fails_start_cleanly(devserver):
    other = DevServer(port=devserver.port)
    with pytest.raises(OSError):
        other.start()
    assert not other.running
    other.stop()  # harmless after a failed start
    assert Api(devserver).query("select id from Project")  # the first one is unaffected
