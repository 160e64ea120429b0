"""Acceptance 1: the official ``ftrack-python-api==3.1.0`` client cannot tell us from ftrack.

The peer runs in its own virtualenv as a subprocess against a real DevServer socket.
"""

from __future__ import annotations

import json

import pytest

from tests.devserver.conftest import Api
from tests.peer import peer_env, run_peer

pytestmark = [pytest.mark.peer, pytest.mark.slow]

EVERYDAY_WORK = r"""
import json, os, sys
import ftrack_api

cache = sys.argv[1]
out = {}
session = ftrack_api.Session(schema_cache_path=cache)
out["types"] = sorted(session.types)

# all / first / one
tasks = session.query("Task").all()
out["task_count"] = len(tasks)
first = session.query(
    "select name, parent.name, parent.parent.name, status.name from Task "
    "where parent.name is SH010 and parent.parent.name is SQ010 order by name"
).first()
out["first"] = [first["name"], first["parent"]["name"], first["parent"]["parent"]["name"]]
shot = session.query(
    "select name, assets.name, assets.versions.version from Shot "
    "where name is SH020 and parent.name is SQ020"
).one()
out["collection"] = sorted(v["version"] for a in shot["assets"] for v in a["versions"])
try:
    session.query("Shot").one()
    out["one_many"] = "no error"
except ftrack_api.exception.MultipleResultsFoundError:
    out["one_many"] = "MultipleResultsFoundError"

# get / populate / ensure
out["get"] = session.get("Shot", shot["id"])["name"]
some = session.query("select id from Task where parent.name is SH030 and parent.parent.name is SQ010").all()
session.populate(some, "name, status.name")
out["populated"] = sorted(t["name"] for t in some)
ensured = session.ensure("Priority", {"name": "Blocker", "sort": 9})
again = session.ensure("Priority", {"name": "Blocker", "sort": 9})
out["ensure_same"] = ensured["id"] == again["id"]

# writes: a note on a version, a task's status, a deletion
version = session.query(
    "select id, asset.name from AssetVersion where asset.parent.name is SH010 order by version"
).first()
me = session.query("User where username is '%s'" % os.environ["FTRACK_API_USER"]).one()
note = version.create_note("Looks great, ship it", me)
task = session.query("select status.name from Task where name is lighting").first()
new_status = session.query(
    "Status where name is 'Requires changes'"
).one() if task["status"]["name"] != "Requires changes" else session.query(
    "Status where name is Approved").one()
task["status"] = new_status
doomed = session.query("NoteCategory where name is Internal").one()
for existing in session.query("Note where category.name is Internal").all():
    existing["category"] = None
session.delete(doomed)
session.commit()
out["ids"] = {"version": version["id"], "note": note["id"], "task": task["id"],
              "status": new_status["name"], "category": doomed["id"]}

# a fresh Session sees it all, and loads its schemas from the cache
fresh = ftrack_api.Session(schema_cache_path=cache)
notes = fresh.query("select content, author.username from Note where parent_id is '%s'" % version["id"]).all()
out["fresh_notes"] = sorted(n["content"] for n in notes)
out["fresh_status"] = fresh.get("Task", task["id"])["status"]["name"]
out["fresh_deleted"] = fresh.get("NoteCategory", doomed["id"]) is None
print(json.dumps(out))
"""


def test_official_client_everyday_work(devserver, peer_python, tmp_path):
    result = run_peer(EVERYDAY_WORK, env=peer_env(devserver), args=[str(tmp_path)])
    assert {"Task", "Shot", "AssetVersion", "ReviewSession"} <= set(result["types"])
    assert result["task_count"] == 18
    assert result["first"] == ["animation", "SH010", "SQ010"]
    assert result["collection"] == [1, 2, 3]
    assert result["one_many"] == "MultipleResultsFoundError"
    assert result["get"] == "SH020"
    assert result["populated"] == ["animation", "compositing", "lighting"]
    assert result["ensure_same"] is True
    assert "Looks great, ship it" in result["fresh_notes"]
    assert result["fresh_status"] == result["ids"]["status"]
    assert result["fresh_deleted"] is True
    # the second Session used its schema cache: schemas were fetched once
    assert devserver.action_counts["query_schemas"] == 1
    assert devserver.action_counts["query_server_information"] == 2
    # ... and what the peer committed is really stored
    api = Api(devserver)
    ids = result["ids"]
    (note,) = api.query(
        f"select content, parent_id, parent_type from Note where id is {ids['note']}"
    )
    assert note["parent_id"] == ids["version"] and note["parent_type"] == "AssetVersion"
    (task,) = api.query(f"select status.name from Task where id is {ids['task']}")
    assert task["status"]["name"] == ids["status"]
    assert not api.query(f"select id from NoteCategory where id is {ids['category']}")


FIXTURE_SCHEMA_SESSION = r"""
import json, sys
import ftrack_api
session = ftrack_api.Session(schema_cache_path=sys.argv[1])
tasks = session.query("select name, status.name, parent.name, project.full_name from Task").all()
shot = session.query("Shot where name is SH010 and parent.name is SQ010").one()
shot["description"] = "set through the fixture schema"
session.commit()
print(json.dumps({"types": len(session.types), "tasks": len(tasks),
                  "project": tasks[0]["project"]["full_name"], "status": tasks[0]["status"]["name"],
                  "shot": shot["id"]}))
"""


def test_official_client_with_fixture_schema(fixtures_dir, peer_python, tmp_path):
    from reviewd.devserver import DevServer

    path = f"{fixtures_dir}/ftrack_schemas.json"
    with open(path) as handle:
        expected_types = len(json.load(handle))
    with DevServer(schema=path) as server:
        result = run_peer(FIXTURE_SCHEMA_SESSION, env=peer_env(server), args=[str(tmp_path)])
        assert result["types"] == expected_types
        assert result["tasks"] == 18
        assert result["project"] == "Demo Production" and result["status"]
        (shot,) = Api(server).query(f"select description from Shot where id is {result['shot']}")
        assert shot["description"] == "set through the fixture schema"


METADATA_AND_CREATE = r"""
import json, sys
import ftrack_api
session = ftrack_api.Session(schema_cache_path=sys.argv[1])
shot = session.query("Shot where name is SH010 and parent.name is SQ010").one()
out = {"before": dict(shot["metadata"])}
shot["metadata"]["camera"] = "cam_A"
shot["metadata"]["frame_range"] = "1001-1100"
sequence = session.query("Sequence where name is SQ020").one()
created = session.create("Shot", {
    "name": "SH040", "parent": sequence,
    "status": session.query("Status where name is Ready").one(),
    "type": session.query("Type where name is Generic").one()})
session.commit()
fresh = ftrack_api.Session(schema_cache_path=sys.argv[1])
out["after"] = dict(fresh.get("Shot", shot["id"])["metadata"])
new_shot = fresh.get("Shot", created["id"])
out["created"] = [new_shot["name"], new_shot["project_id"], new_shot["object_type_id"]]
out["children"] = sorted(c["name"] for c in fresh.get("Sequence", sequence["id"])["children"])
schema = fresh.query("select project_schema from Project").one()["project_schema"]
out["task_statuses"] = [s["name"] for s in schema.get_statuses("Task")]
out["task_types"] = [t["name"] for t in schema.get_types("Task")]
out["shot_statuses"] = [s["name"] for s in schema.get_statuses("Shot")]
print(json.dumps(out))
"""


def test_official_client_metadata_and_create_with_references(devserver, peer_python, tmp_path):
    result = run_peer(METADATA_AND_CREATE, env=peer_env(devserver), args=[str(tmp_path)])
    assert result["before"] == {"frame_range": "1001-1060"}
    assert result["after"] == {"frame_range": "1001-1100", "camera": "cam_A"}
    project = Api(devserver).query("select id from Project")[0]["id"]
    assert result["created"] == ["SH040", project, "bad911de-3bd6-47b9-8b46-3476e237cb36"]
    assert result["children"] == ["SH010", "SH020", "SH030", "SH040"]
    # the workflow entities ProjectSchema.get_statuses()/get_types() walk
    assert "Pending Review" in result["task_statuses"] and len(result["task_statuses"]) == 8
    assert "Compositing" in result["task_types"]
    assert result["shot_statuses"] == [
        "Not started",
        "In progress",
        "Approved",
        "On hold",
        "Omitted",
    ]
