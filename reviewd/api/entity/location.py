"""Locations: where component data lives, and moving data in and out of them.

A location is an ordinary entity that a session (or a plugin listening to
``ftrack.api.session.configure-location``) equips with an *accessor* (how to
read and write bytes), a *structure* (where in the accessor a component goes)
and optionally a *resource_identifier_transformer*.  ftrack_api equips them by
mixing classes into the entity (``ftrack_api.mixin``), so this class keeps a
``__dict__`` to accept those attributes.
"""

from __future__ import annotations

from typing import Any

from reviewd.api.entity.base import Entity
from reviewd.api.exception import (
    ComponentInLocationError,
    ComponentNotInLocationError,
    LocationError,
)
from reviewd.api.symbol import (
    COMPONENT_ADDED_TO_LOCATION_TOPIC,
    COMPONENT_REMOVED_FROM_LOCATION_TOPIC,
)


class Location(Entity):
    """A storage location; see the module docstring for accessor/structure."""

    def __init__(self, session, data: dict | None = None, reconstructing: bool = False) -> None:
        self.accessor = None
        self.structure = None
        self.resource_identifier_transformer = None
        self.priority = 95
        super().__init__(session, data, reconstructing)

    def __getattr__(self, name: str) -> Any:
        # Entities merged before a configure-location listener ran lack the defaults.
        if name in ("accessor", "structure", "resource_identifier_transformer"):
            return None
        if name == "priority":
            return 95
        raise AttributeError(name)

    # ------------------------------------------------------------ adding data
    def add_component(self, component: Entity, source: Any, recursive: bool = True) -> None:
        """Copy *component*'s data from *source* (a location) here and register it."""
        self.add_components([component], [source] if not isinstance(source, list) else source,
                            recursive=recursive)

    def add_components(self, components: list, sources: Any, recursive: bool = True) -> None:
        """Copy each component's data from its source location and register them here."""
        if not isinstance(sources, (list, tuple)):
            sources = [sources] * len(components)
        if len(sources) != len(components):
            raise ValueError("add_components needs one source per component, or a single source.")
        availability = self.session.get_component_availabilities(components, locations=[self])
        present = [c for c, a in zip(components, availability, strict=False)
                   if a.get(self["id"], 0.0) >= 100.0]
        if present:
            raise ComponentInLocationError(present, self)
        session = self.session
        for component, source in zip(components, sources, strict=False):
            identifier = self._store(component, source)
            session.create("ComponentLocation", {
                "component_id": component["id"],
                "location_id": self["id"],
                "resource_identifier": identifier,
            })
            if recursive and component.entity_type == "ContainerComponent":
                members = list(component["members"])
                if members:
                    self.add_components(members, source, recursive=True)
        session.commit()
        for component in components:
            session._publish_local(COMPONENT_ADDED_TO_LOCATION_TOPIC,
                                   {"component_id": component["id"], "location_id": self["id"]})

    def _store(self, component: Entity, source: Any) -> str:
        """Resource identifier for *component* here, copying its bytes when both ends can."""
        if self.structure is None:
            raise LocationError(f"Location {self['name']!r} has no structure to place data.")
        identifier = self.structure.get_resource_identifier(component)
        if self.accessor is not None and getattr(source, "accessor", None) is not None:
            source_identifier = source.get_resource_identifier(component)
            _copy(source.accessor, source_identifier, self.accessor, identifier, component)
        if self.resource_identifier_transformer is not None:
            identifier = self.resource_identifier_transformer.encode(
                identifier, context={"component": component})
        return identifier

    # ------------------------------------------------------------ removing data
    def remove_component(self, component: Entity, recursive: bool = True) -> None:
        self.remove_components([component], recursive=recursive)

    def remove_components(self, components: list, recursive: bool = True) -> None:
        """Delete each component's data here (when accessible) and unregister it."""
        session = self.session
        for component in components:
            links = session.query(
                "ComponentLocation where component_id is "
                f'"{component["id"]}" and location_id is "{self["id"]}"'
            ).all()
            if not links:
                raise ComponentNotInLocationError([component], self)
            if self.accessor is not None:
                identifier = self.get_resource_identifier(component)
                if self.accessor.exists(identifier):
                    if self.accessor.is_container(identifier):
                        self.accessor.remove_container(identifier)
                    else:
                        self.accessor.remove(identifier)
            for link in links:
                session.delete(link)
        session.commit()
        for component in components:
            session._publish_local(COMPONENT_REMOVED_FROM_LOCATION_TOPIC,
                                   {"component_id": component["id"], "location_id": self["id"]})

    # ------------------------------------------------------------ reading
    def get_component_availability(self, component: Entity) -> float:
        return self.get_component_availabilities([component])[0]

    def get_component_availabilities(self, components: list) -> list[float]:
        found = self.session.get_component_availabilities(components, locations=[self])
        return [entry.get(self["id"], 0.0) for entry in found]

    def get_resource_identifier(self, component: Entity) -> str:
        return self.get_resource_identifiers([component])[0]

    def get_resource_identifiers(self, components: list) -> list[str]:
        """Where each component's data is in this location (decoded by the transformer)."""
        identifiers = []
        for component in components:
            link = self.session.query(
                "select resource_identifier from ComponentLocation where component_id is "
                f'"{component["id"]}" and location_id is "{self["id"]}"'
            ).first()
            if link is None:
                raise ComponentNotInLocationError([component], self)
            identifier = link["resource_identifier"]
            if self.resource_identifier_transformer is not None:
                identifier = self.resource_identifier_transformer.decode(
                    identifier, context={"component": component})
            identifiers.append(identifier)
        return identifiers

    def get_filesystem_path(self, component: Entity) -> str:
        return self._accessor_required().get_filesystem_path(
            self.get_resource_identifier(component))

    def get_url(self, component: Entity) -> str:
        return self._accessor_required().get_url(self.get_resource_identifier(component))

    def _accessor_required(self):
        if self.accessor is None:
            raise LocationError(f"Location {self['name']!r} has no accessor.")
        return self.accessor


class MemoryLocationMixin:
    """A location whose component data lives in this process (tests, scratch)."""


class UnmanagedLocationMixin:
    """A location whose data the user manages: only the registration is recorded."""

    def _store(self, component: Entity, source: Any) -> str:
        return source.get_resource_identifier(component) if source is not None else ""


class OriginLocationMixin(UnmanagedLocationMixin):
    """The origin: components created from a path start here (identifier = the path)."""


class ServerLocationMixin:
    """ftrack's server location: data is uploaded to and served by the server."""


def _copy(source_accessor, source_identifier: str, target_accessor, target_identifier: str,
          component: Entity) -> None:
    if source_accessor.is_container(source_identifier):
        target_accessor.make_container(target_identifier)
        return
    container = target_accessor.get_container(target_identifier)
    if container and not target_accessor.exists(container):
        target_accessor.make_container(container)
    source = source_accessor.open(source_identifier, "rb")
    target = target_accessor.open(target_identifier, "wb")
    try:
        while True:
            chunk = source.read(1024 * 1024)
            if not chunk:
                break
            target.write(chunk)
    finally:
        source.close()
        target.close()


__all__ = [
    "Location",
    "MemoryLocationMixin",
    "OriginLocationMixin",
    "ServerLocationMixin",
    "UnmanagedLocationMixin",
]
