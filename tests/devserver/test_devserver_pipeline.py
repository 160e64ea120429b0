"""Acceptance (issue 12, point 2): a publishing script through the official client.

The script gives only names and parents; the server fills statuses, types, the version
number and the component name, stores the uploaded bytes in the ``ftrack.server``
location, and keeps custom attributes queryable.  Everything is checked again from a
fresh session, as a second tool in the pipeline would see it.
"""

from __future__ import annotations

import pytest

from tests.peer import peer_env, run_peer

pytestmark = [pytest.mark.peer, pytest.mark.slow]

PIPELINE = r"""
import hashlib, json, os, sys, tempfile, uuid
import requests
import ftrack_api

payload = os.urandom(200_000) + b"end-of-frame"
path = os.path.join(tempfile.mkdtemp(), "comp_v001.mov")
with open(path, "wb") as handle:
    handle.write(payload)

session = ftrack_api.Session(auto_connect_event_hub=False)
project = session.query("Project where name is demo_production").one()
suffix = uuid.uuid4().hex[:6]
sequence = session.create("Sequence", {"name": "SQ900_" + suffix, "parent": project})
shot = session.create("Shot", {"name": "SH010", "parent": sequence})
task = session.create("Task", {"name": "compositing", "parent": shot})
asset = session.create("Asset", {"name": "comp", "parent": shot})
version = session.create("AssetVersion", {"asset": asset, "task": task})
session.commit()

server_location = session.query('Location where name is "ftrack.server"').one()
component = version.create_component(path, location=server_location)
session.commit()

shot["custom_attributes"]["fstart"] = 1001
shot["custom_attributes"]["fend"] = 1120
version["custom_attributes"]["delivery"] = True
session.commit()

fresh = ftrack_api.Session(auto_connect_event_hub=False)
found = fresh.query(
    'select name, status.name, type.name, parent.name from Shot '
    'where custom_attributes any (key is "fend" and value > 1100) and id is "%s"' % shot["id"]
).all()
again_task = fresh.get("Task", task["id"])
again_version = fresh.query(
    'select version, status.name, user.username, asset.type.name, components.name, '
    'components.size from AssetVersion where id is "%s"' % version["id"]
).one()
again_component = fresh.get("FileComponent", component["id"])
fresh_location = fresh.query('Location where name is "ftrack.server"').one()
url = fresh_location.get_url(again_component)
downloaded = requests.get(url, timeout=30)
out = {
    "found": [[s["name"], s["parent"]["name"], bool(s["status"]), bool(s["type"])] for s in found],
    "task_status": again_task["status"]["name"] if again_task["status"] else None,
    "task_type": again_task["type"]["name"] if again_task["type"] else None,
    "sequence_status": fresh.get("Sequence", sequence["id"])["status"]["name"],
    "version": again_version["version"],
    "version_status": again_version["status"]["name"],
    "version_user": again_version["user"]["username"],
    "asset_type": again_version["asset"]["type"]["name"],
    "components": sorted(c["name"] for c in again_version["components"]),
    "component_size": again_component["size"],
    "availability": fresh_location.get_component_availability(again_component),
    "download_status": downloaded.status_code,
    "same_bytes": hashlib.sha256(downloaded.content).hexdigest() == hashlib.sha256(payload).hexdigest(),
    "custom": {
        "fstart": fresh.get("Shot", shot["id"])["custom_attributes"]["fstart"],
        "fend": fresh.get("Shot", shot["id"])["custom_attributes"]["fend"],
        "handles_default": fresh.get("Shot", shot["id"])["custom_attributes"]["handles"],
        "delivery": fresh.get("AssetVersion", version["id"])["custom_attributes"]["delivery"],
    },
    "url_has_key": fresh.api_key in url,
}
print(json.dumps(out))
"""


def test_publish_a_version_through_the_official_client(devserver):
    out = run_peer(PIPELINE, env=peer_env(devserver), timeout=240)
    assert out["found"] == [["SH010", out["found"][0][1], True, True]]
    assert out["found"][0][1].startswith("SQ900_")
    # Defaults from the demo project's workflow schema and the server's rules.
    assert out["task_status"] == "Not started" and out["task_type"] == "Animation"
    assert out["sequence_status"] == "Not started"
    assert out["version"] == 1
    assert out["version_status"] == "Pending Review"
    assert out["version_user"] == devserver.api_user
    assert out["asset_type"] == "Upload"
    assert out["components"] == ["main"]  # no name given: the server default, as ftrack's
    assert out["component_size"] == 200_000 + len(b"end-of-frame")
    assert out["availability"] == 100.0
    assert out["download_status"] == 200 and out["same_bytes"] is True
    assert out["custom"] == {"fstart": 1001, "fend": 1120, "handles_default": 0, "delivery": True}
    # The official client builds download URLs with the key (as against ftrack); the
    # server accepts them, and nothing else about the key leaks into the reply.
    assert out["url_has_key"] is True
