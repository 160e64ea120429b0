"""Locations: where component data lives, and moving data in and out of them.

A location is an ordinary entity that the session (for the built-in ones) or a
plugin listening to ``ftrack.api.session.configure-location`` equips with an
*accessor* (how to read and write bytes), a *structure* (where a component
goes in that storage), a *priority* (lower is preferred by
``Session.pick_location``) and optionally a *resource_identifier_transformer*.
As in ftrack_api the helpers are mixed into the entity's class
(``reviewd.api.mixin``), so this class keeps a ``__dict__``.

Adding a component is three steps with one hook each, which the mixins below
override: compute a context and resource identifier (``_get_context`` and the
structure), copy the bytes (``_add_data``), record where they are
(``_register_components_in_location``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from reviewd.api.entity.base import Entity
from reviewd.api.exception import (
    ComponentInLocationError,
    ComponentNotInLocationError,
    LocationError,
)
from reviewd.api.symbol import (
    CHUNK_SIZE,
    COMPONENT_ADDED_TO_LOCATION_TOPIC,
    COMPONENT_REMOVED_FROM_LOCATION_TOPIC,
)

_DEFAULTS = {
    "accessor": None,
    "structure": None,
    "resource_identifier_transformer": None,
    "priority": 95,
}


def _is_container(component: Entity) -> bool:
    return "members" in component.keys()


class Location(Entity):
    """A storage location; see the module docstring."""

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes not set on the instance: equipment not given yet.
        if name in _DEFAULTS:
            equip = self.__dict__.pop("_equip_later", None)
            if equip is not None:  # a built-in location, equipped on first use
                equip(self)
                return getattr(self, name)
            return _DEFAULTS[name]
        raise AttributeError(name)

    def __repr__(self) -> str:
        name = self._remote.get("name") or (self._local or {}).get("name")
        key = ",".join(str(v) for v in self.primary_key_values())
        return f'<Location("{name}", {key})>' if name else f"<Location({key})>"

    # ------------------------------------------------------------ adding
    def add_component(self, component: Entity, source: Any, recursive: bool = True) -> None:
        """Copy *component*'s data from *source* (a location, or a path for the origin)."""
        self.add_components([component], sources=source, recursive=recursive)

    def add_components(self, components: list[Any], sources: Any, recursive: bool = True) -> None:
        """Copy each component's data here from its source and register it.

        *sources* is one source for all components or one per component.  A
        component already here raises :class:`ComponentInLocationError`; a
        failure names the component and what was already transferred.
        """
        if isinstance(sources, str) or not isinstance(sources, Sequence):
            sources = [sources]
        if len(sources) not in (1, len(components)):
            raise ValueError("sources must be one source, or one per component.")
        if not self.structure:
            raise LocationError(f"Location {self.get('name')!r} has no structure.")
        if not components:
            return
        present = self._present(components)
        if present:
            raise ComponentInLocationError(present, self)
        transferred: list[Any] = []
        for index, component in enumerate(components):
            source = sources[0] if len(sources) == 1 else sources[index]
            try:
                if _is_container(component) and recursive:
                    self.add_components(list(component["members"]), source, recursive=True)
                context = self._get_context(component, source)
                identifier = self.structure.get_resource_identifier(component, context)
                self._add_data(component, identifier, source)
            except Exception as error:
                raise LocationError(
                    f"Failed to transfer the data of {component!r} to {self!r}: {error}. "
                    f"Transferred so far (may need cleanup): {transferred}"
                ) from error
            transferred.append((component, identifier))
        identifiers = []
        for component, identifier in transferred:
            if self.resource_identifier_transformer:
                identifier = self.resource_identifier_transformer.encode(
                    identifier, context={"component": component}
                )
            identifiers.append(identifier)
        try:
            self._register_components_in_location([c for c, _ in transferred], identifiers)
        except Exception as error:
            raise LocationError(
                f"Failed to register components with {self!r}: {error}. Transferred data "
                f"that may need cleanup: {transferred}"
            ) from error
        for component, _ in transferred:
            self._announce(COMPONENT_ADDED_TO_LOCATION_TOPIC, component)

    def _present(self, components: list[Any]) -> list[Any]:
        try:
            self.get_resource_identifiers(components)
        except ComponentNotInLocationError as error:
            missing = {c["id"] for c in error.components}
            return [c for c in components if c["id"] not in missing]
        return list(components)

    def _announce(self, topic: str, component: Entity) -> None:
        hub = self.session.event_hub
        from reviewd.api.event.base import Event

        try:
            hub.publish(
                Event(topic, data={"component_id": component["id"], "location_id": self["id"]}),
                on_error="ignore",
            )
        except Exception:  # noqa: BLE001 - an offline hub must not fail the transfer
            pass

    def _get_context(self, component: Entity, source: Any) -> dict[str, Any]:
        """What the structure may use: where the data comes from, when known."""
        if source is None or isinstance(source, str):
            return {}
        try:
            return {"source_resource_identifier": source.get_resource_identifier(component)}
        except ComponentNotInLocationError:
            return {}

    def _add_data(self, component: Entity, resource_identifier: str, source: Any) -> None:
        """Copy the bytes from *source*'s accessor to this one (containers are created)."""
        if self.accessor is None:
            raise LocationError(f"Location {self.get('name')!r} has no accessor to write with.")
        if _is_container(component):
            self.accessor.make_container(resource_identifier)
            return
        if self.accessor.exists(resource_identifier):
            raise LocationError(
                f"Cannot add {component!r} to {self!r}: data already exists at "
                f"{resource_identifier!r}."
            )
        container = self.accessor.get_container(resource_identifier)
        if container and not self.accessor.exists(container):
            self.accessor.make_container(container)
        if source.accessor is None:
            raise LocationError(f"Source {source!r} has no accessor to read from.")
        reader = source.accessor.open(source.get_resource_identifier(component), "rb")
        writer = self.accessor.open(resource_identifier, "wb")
        try:
            while True:
                chunk = reader.read(CHUNK_SIZE)
                if not chunk:
                    break
                writer.write(chunk)
        finally:
            reader.close()
            writer.close()

    def _register_components_in_location(
        self, components: list[Any], identifiers: list[Any]
    ) -> None:
        session = self.session
        for component, identifier in zip(components, identifiers, strict=False):
            session.create(
                "ComponentLocation",
                {"component": component, "location": self, "resource_identifier": identifier},
            )
        session.commit()

    # ------------------------------------------------------------ removing
    def remove_component(self, component: Entity, recursive: bool = True) -> None:
        self.remove_components([component], recursive=recursive)

    def remove_components(self, components: list[Any], recursive: bool = True) -> None:
        """Delete each component's data here (when the accessor can) and unregister it."""
        for component in components:
            self.get_resource_identifier(component)  # raises when not here
            if _is_container(component) and recursive:
                self.remove_components(list(component["members"]), recursive=True)
            self._remove_data(component)
            self._deregister_component_in_location(component)
            self._announce(COMPONENT_REMOVED_FROM_LOCATION_TOPIC, component)

    def _remove_data(self, component: Entity) -> None:
        if self.accessor is None:
            raise LocationError(
                f"Cannot remove the data of {component!r}: {self!r} has no accessor."
            )
        identifier = self.get_resource_identifier(component)
        if _is_container(component):
            self.accessor.remove_container(identifier)
        else:
            self.accessor.remove(identifier)

    def _deregister_component_in_location(self, component: Entity) -> None:
        session = self.session
        links = session.query(
            f'ComponentLocation where component_id is "{component["id"]}" and '
            f'location_id is "{self["id"]}"'
        ).all()
        for link in links:
            session.delete(link)
        session.commit()

    # ------------------------------------------------------------ reading
    def get_component_availability(self, component: Entity) -> float:
        return self.get_component_availabilities([component])[0]

    def get_component_availabilities(self, components: list[Any]) -> list[float]:
        found = self.session.get_component_availabilities(components, locations=[self])
        return [entry[self["id"]] for entry in found]

    def get_resource_identifier(self, component: Entity) -> str:
        return self.get_resource_identifiers([component])[0]

    def get_resource_identifiers(self, components: list[Any]) -> list[str]:
        """Where each component's data is here (decoded by the transformer, if any)."""
        identifiers = self._get_resource_identifiers(components)
        if self.resource_identifier_transformer:
            identifiers = [
                self.resource_identifier_transformer.decode(i, context={"component": c})
                for i, c in zip(identifiers, components, strict=False)
            ]
        return identifiers

    def _get_resource_identifiers(self, components: list[Any]) -> list[str]:
        if not components:
            return []
        ids = [c["id"] for c in components]
        quoted = ", ".join(f'"{i}"' for i in ids)
        links = self.session.query(
            "select component_id, resource_identifier from ComponentLocation where "
            f'location_id is "{self["id"]}" and component_id in ({quoted})'
        ).all()
        by_component = {link["component_id"]: link["resource_identifier"] for link in links}
        missing = [c for c in components if c["id"] not in by_component]
        if missing:
            raise ComponentNotInLocationError(missing, self)
        return [by_component[i] for i in ids]

    def get_filesystem_path(self, component: Entity) -> str:
        return self.get_filesystem_paths([component])[0]

    def get_filesystem_paths(self, components: list[Any]) -> list[str]:
        accessor = self._accessor_required()
        return [accessor.get_filesystem_path(i) for i in self.get_resource_identifiers(components)]

    def get_url(self, component: Entity) -> str:
        answer: str = self._accessor_required().get_url(self.get_resource_identifier(component))
        return answer

    def _accessor_required(self) -> Any:
        if self.accessor is None:
            raise LocationError(f"Location {self.get('name')!r} has no accessor.")
        return self.accessor


class MemoryLocationMixin:
    """Keeps where components are in this process only, not on the server."""

    @property
    def _memory(self) -> dict[str, Any]:
        store = self.__dict__.get("_memory_identifiers")
        if store is None:
            store = self.__dict__["_memory_identifiers"] = {}
        return store

    def _register_components_in_location(
        self, components: list[Any], identifiers: list[Any]
    ) -> None:
        for component, identifier in zip(components, identifiers, strict=False):
            self._memory[component["id"]] = identifier

    def _deregister_component_in_location(self, component: Entity) -> None:
        self._memory.pop(component["id"], None)

    def _get_resource_identifiers(self, components: list[Any]) -> list[str]:
        missing = [c for c in components if c["id"] not in self._memory]
        if missing:
            raise ComponentNotInLocationError(missing, self)
        return [self._memory[c["id"]] for c in components]


class UnmanagedLocationMixin:
    """A location whose data the user manages: registrations only, no copying."""

    def _add_data(self, component: Entity, resource_identifier: str, source: Any) -> None:
        """Data stays where it is."""

    def _remove_data(self, component: Entity) -> None:
        """Data stays where it is."""

    def _get_context(self, component: Entity, source: Any) -> dict[str, Any]:
        if isinstance(source, str):
            return {"source_resource_identifier": source}
        try:
            return {"source_resource_identifier": source.get_resource_identifier(component)}
        except (ComponentNotInLocationError, AttributeError):
            return {}


class OriginLocationMixin(MemoryLocationMixin, UnmanagedLocationMixin):
    """The origin: a component created from a path is "in" it at that path."""

    def _get_context(self, component: Entity, source: Any) -> dict[str, Any]:
        return {"source_resource_identifier": source}


if TYPE_CHECKING:  # the location mixins are only ever combined with Location
    _LocationHost = Location
else:
    _LocationHost = object


class ServerLocationMixin(_LocationHost):
    """ftrack's server location: data is uploaded to and served by the server."""

    def get_thumbnail_url(self, component: Entity, size: int | None = None) -> str:
        answer: str = self.accessor.get_thumbnail_url(self.get_resource_identifier(component), size)
        return answer


__all__ = [
    "Location",
    "MemoryLocationMixin",
    "OriginLocationMixin",
    "ServerLocationMixin",
    "UnmanagedLocationMixin",
]
