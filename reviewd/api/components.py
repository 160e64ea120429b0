"""Components and locations on the session: ``create_component``, availability and
``pick_location``, and the built-in locations every session starts with.

Kept apart from :mod:`reviewd.api.session` (the core client) because it is a
feature layered on top: it only uses the session's public operations
(``create``, ``get``, ``query``, ``populate``, ``commit``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from reviewd.api.entity.location import (
    OriginLocationMixin,
    ServerLocationMixin,
    UnmanagedLocationMixin,
)
from reviewd.api.mixin import mixin
from reviewd.api.symbol import (
    ORIGIN_LOCATION_ID,
    REVIEW_LOCATION_ID,
    SERVER_LOCATION_ID,
    UNMANAGED_LOCATION_ID,
)

_REVIEW_COMPONENT_NAMES = ("ftrackreview-mp4", "ftrackreview-webm", "ftrackreview-image")


class ComponentsAndLocations:
    if TYPE_CHECKING:  # what this mixin uses of the Session it is mixed into
        types: dict[str, Any]

        def get(self, entity_type: str, entity_key: Any) -> Any: ...
        def create(self, *args: Any, **kwargs: Any) -> Any: ...
        def query(self, expression: str, page_size: int = 500) -> Any: ...
        def populate(self, entities: Any, projections: str | Iterable[str]) -> None: ...
        def _publish_local(self, topic: str, data: dict[str, Any]) -> list[Any]: ...
        def operation_recording(
            self, record_operations: bool
        ) -> contextlib.AbstractContextManager[None]: ...

    """Session methods for components and locations (mixed into ``Session``)."""

    def _configure_locations(self) -> None:
        """Equip the four locations every ftrack server has (no server call: merged
        locally, as the server's own ids are fixed)."""
        if "Location" not in self.types:
            return
        builtins = (
            (ORIGIN_LOCATION_ID, "ftrack.origin", OriginLocationMixin, "OriginLocation", 100),
            (
                UNMANAGED_LOCATION_ID,
                "ftrack.unmanaged",
                UnmanagedLocationMixin,
                "UnmanagedLocation",
                90,
            ),
            (REVIEW_LOCATION_ID, "ftrack.review", UnmanagedLocationMixin, "UnmanagedLocation", 110),
            (SERVER_LOCATION_ID, "ftrack.server", ServerLocationMixin, "ServerLocation", 150),
        )
        for location_id, name, helper, class_name, priority in builtins:
            location = self.create(
                "Location", {"id": location_id, "name": name}, reconstructing=True
            )
            mixin(location, helper, name=class_name)
            location.priority = priority
            # The accessor and structure are built on first use (see Location's
            # __getattr__): their modules are not needed by most sessions' start-up.
            location.__dict__["_equip_later"] = equip_builtin_location

    # ------------------------------------------------------------ picking
    def _get_locations(self, filter_inaccessible: bool = True) -> list[Any]:
        locations = list(self.query("Location"))
        if filter_inaccessible:
            locations = [location for location in locations if location.accessor]
        return sorted(locations, key=lambda location: location.priority)

    def pick_location(self, component: Any = None) -> Any:
        """The preferred accessible location (holding *component*, when given)."""
        if component is not None:
            return self.pick_locations([component])[0]
        locations = self._get_locations()
        return locations[0] if locations else None

    def pick_locations(self, components: list[Any]) -> list[Any]:
        """For each component, the preferred accessible location holding any of it."""
        candidates = self._get_locations()
        availabilities = self.get_component_availabilities(components, locations=candidates)
        picked = []
        for availability in availabilities:
            picked.append(
                next(
                    (
                        location
                        for location in candidates
                        if availability.get(location["id"], 0.0) > 0.0
                    ),
                    None,
                )
            )
        return picked

    # ------------------------------------------------------------ availability
    def get_component_availability(
        self, component: Any, locations: list[Any] | None = None
    ) -> dict[str, Any]:
        return self.get_component_availabilities([component], locations=locations)[0]

    def get_component_availabilities(
        self, components: list[Any], locations: list[Any] | None = None
    ) -> list[dict[str, Any]]:
        """Per component, location id -> percentage of its data present (0-100).

        A container's availability is the average of its members'.
        """
        if locations is None:
            locations = list(self.query("Location"))
        containers = [c for c in components if "members" in c.keys()]
        plain = [c for c in components if "members" not in c.keys()]
        if plain:
            self.populate(plain, "component_locations.location_id")
        if containers:
            self.populate(containers, "members, component_locations.location_id")
        results = []
        for component in components:
            availability = {location["id"]: 0.0 for location in locations}
            members = list(component["members"]) if "members" in component.keys() else []
            if members:
                share = 1.0 / len(members)
                for found in self.get_component_availabilities(members, locations=locations):
                    for location_id, percentage in found.items():
                        availability[location_id] += percentage * share
            else:
                # Only registrations on the server count: the origin location keeps
                # its own in memory, so a component only "there" is 0% available.
                for link in component["component_locations"]:
                    if link["location_id"] in availability:
                        availability[link["location_id"]] = 100.0
            results.append(
                {key: max(0.0, min(round(value, 9), 100.0)) for key, value in availability.items()}
            )
        return results

    # ------------------------------------------------------------ creating
    def _file_type_of(self, path: str) -> str:
        results = []
        try:
            results = self._publish_local(
                "ftrack.api.session.get-file-type-from-string", {"file_path": path}
            )
        except Exception:  # noqa: BLE001 - a plugin's failure must not block the upload
            results = []
        found = next((result for result in results if result), None)
        return found or os.path.splitext(path)[-1]

    def create_component(
        self, path: str, data: dict[str, Any] | None = None, location: Any = "auto"
    ) -> Any:
        """Create a component for the file or sequence at *path* and add it to *location*.

        *path* in sequence notation (``/r/f.%04d.exr [1-3]``) makes a
        ``SequenceComponent`` with one ``FileComponent`` member per frame.
        ``location="auto"`` picks the preferred location (the review location for
        ``ftrackreview-*`` names); ``None`` leaves it only in the origin location.
        """
        from reviewd.api import sequences

        data = dict(data or {})
        if location == "auto":
            if data.get("name") in _REVIEW_COMPONENT_NAMES:
                location = self.get("Location", REVIEW_LOCATION_ID)
            else:
                location = self.pick_location()
        sequence = sequences.parse(path)
        if sequence is None:
            data.setdefault("size", _size_of(path))
            data.setdefault("file_type", self._file_type_of(path))
            return self._create_component("FileComponent", path, data, location)

        sizes = {}
        total = data.get("size")
        if total is not None and sequence.indexes:
            each = int(round(total / len(sequence.indexes)))
            sizes = {member: each for member in sequence.members}
        else:
            sizes = {member: _size_of(member) for member in sequence.members}
            total = sum(sizes.values())
        file_type = self._file_type_of(sequence.pattern)
        data.setdefault("padding", sequence.padding)
        data.setdefault("file_type", file_type)
        data.setdefault("size", total)
        container = self._create_component("SequenceComponent", sequence.pattern, data, None)
        for index in sequence.indexes:
            member_path = sequence.member(index)
            member = self._create_component(
                "FileComponent",
                member_path,
                {
                    "name": sequence.index_text(index),
                    "container": container,
                    "size": sizes[member_path],
                    "file_type": file_type,
                },
                None,
            )
            # The member's container_id already says it; the list is kept in step
            # locally only (a server refuses writes to the reverse side).
            with self.operation_recording(False):
                container["members"].append(member)
        if location:
            origin = self.get("Location", ORIGIN_LOCATION_ID)
            location.add_component(container, origin, recursive=True)
        return container

    def _create_component(
        self, entity_type: str, path: str, data: dict[str, Any], location: Any
    ) -> Any:
        component = self.create(entity_type, data)
        origin = self.get("Location", ORIGIN_LOCATION_ID)
        origin.add_component(component, path, recursive=False)
        if location:
            location.add_component(component, origin, recursive=False)
        return component


def _size_of(path: str) -> int:
    """Bytes at *path*: a file's size, or a directory's total; 0 when it does not
    exist (a component may be registered before or without its data on this host)."""
    if os.path.isdir(path):
        return sum(
            os.path.getsize(os.path.join(folder, name))
            for folder, _, names in os.walk(path)
            for name in names
        )
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def equip_builtin_location(location: Any) -> None:
    """Give a built-in location its accessor and structure (called on first use)."""
    if location["id"] == SERVER_LOCATION_ID:
        from reviewd.api.accessor.server import ServerAccessor
        from reviewd.api.structure.entity_id import EntityIdStructure

        location.accessor = ServerAccessor(session=location.session)
        location.structure = EntityIdStructure()
    else:
        from reviewd.api.accessor.disk import DiskAccessor
        from reviewd.api.structure.origin import OriginStructure

        location.accessor = DiskAccessor(prefix="")
        location.structure = OriginStructure()
