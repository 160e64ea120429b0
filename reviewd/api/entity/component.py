"""Components (availability across locations) and thumbnails on any entity with one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reviewd.api.entity.base import Entity
from reviewd.api.symbol import ORIGIN_LOCATION_ID, SERVER_LOCATION_ID

if TYPE_CHECKING:  # the mixin is only ever combined with Entity (see entity.factory)
    _ThumbnailHost = Entity
else:
    _ThumbnailHost = object


class Component(Entity):
    """A file, sequence or container of data registered with the server."""

    __slots__ = ()

    def get_availability(self, locations: list[Any] | None = None) -> dict[str, Any]:
        """Percentage (0-100) of this component present in each location, by location id."""
        return self.session.get_component_availability(self, locations=locations)


class CreateThumbnailMixin(_ThumbnailHost):
    """Adds ``create_thumbnail`` to entity types that have a ``thumbnail_id``."""

    __slots__ = ()

    def create_thumbnail(self, path: str, data: dict[str, Any] | None = None) -> Entity:
        """Upload *path* to the server location and make it this entity's thumbnail.

        The component is named ``thumbnail`` unless *data* names it; the change
        is committed (the server must know the component before it is referenced).
        """
        data = dict(data or {})
        if not data.get("name"):
            data["name"] = "thumbnail"
        session = self.session
        component = session.create_component(path, data, location=None)
        origin = session.get("Location", ORIGIN_LOCATION_ID)
        # Any: built-in locations get their behaviour (add_component) from mixins.
        server_location: Any = session.get("Location", SERVER_LOCATION_ID)
        server_location.add_component(component, [origin])
        self["thumbnail_id"] = component["id"]
        session.commit()
        answer: Entity = component
        return answer
