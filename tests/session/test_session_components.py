"""Components and locations against the embedded server: create_component from a
file and from a sequence, the built-in origin location, a disk location equipped
the ftrack_api way (mixin + accessor + structure), availability, removal."""

from __future__ import annotations

import os
import uuid

from reviewd.api.accessor.disk import DiskAccessor
from reviewd.api.entity.location import Location
from reviewd.api.mixin import mixin
from reviewd.api.structure.id import IdStructure
from reviewd.api.symbol import ORIGIN_LOCATION_ID


def _disk_location(session, prefix):
    location = session.create("Location", {"name": f"test.disk.{uuid.uuid4().hex[:8]}"})
    session.commit()
    mixin(location, Location)  # already a Location: nothing changes, as in ftrack_api
    location.accessor = DiskAccessor(prefix=str(prefix))
    location.structure = IdStructure()
    location.priority = 10
    return location


def test_file_component_starts_in_origin_and_is_copied_to_a_disk_location(
    devserver, connect, tmp_path
):
    session = connect(devserver)
    source = tmp_path / "plate.exr"
    source.write_bytes(b"pixels" * 100)
    component = session.create_component(str(source), {"name": "main"}, location=None)
    origin = session.get("Location", ORIGIN_LOCATION_ID)
    assert origin.get_resource_identifier(component) == str(source)
    assert component["size"] == 600 and component["file_type"] == ".exr"
    session.commit()

    disk = _disk_location(session, tmp_path / "store")
    disk.add_component(component, origin)
    path = disk.get_filesystem_path(component)
    assert path.startswith(str(tmp_path / "store")) and open(path, "rb").read() == b"pixels" * 100
    availability = session.get_component_availability(component, locations=[disk, origin])
    # the origin keeps its registrations in memory: only the server's count (ftrack_api)
    assert availability == {disk["id"]: 100.0, origin["id"]: 0.0}
    assert session.pick_location(component) is disk  # lowest priority value wins

    # the registration is on the server: a fresh session finds it
    with connect(devserver) as other:
        (link,) = other.query(
            f"select resource_identifier from ComponentLocation where component_id is "
            f'"{component["id"]}"'
        ).all()
        assert link["resource_identifier"] == disk.get_resource_identifier(component)

    disk.remove_component(component)
    assert not os.path.exists(path)
    assert session.get_component_availability(component, locations=[disk])[disk["id"]] == 0.0


def test_sequence_component_has_one_member_per_frame(devserver, connect, tmp_path):
    session = connect(devserver)
    for frame in (1, 2, 3):
        (tmp_path / f"f.{frame:04d}.png").write_bytes(b"x" * frame)
    container = session.create_component(
        f"{tmp_path}/f.%04d.png [1-3]", {"name": "frames"}, location=None
    )
    members = list(container["members"])
    assert container.entity_type == "SequenceComponent"
    assert [m["name"] for m in members] == ["0001", "0002", "0003"]
    assert container["padding"] == 4 and container["size"] == 6
    session.commit()
    with connect(devserver) as other:
        stored = other.query(
            f'select name from FileComponent where container_id is "{container["id"]}"'
        ).all()
        assert sorted(c["name"] for c in stored) == ["0001", "0002", "0003"]
