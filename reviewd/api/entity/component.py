"""Components: availability across locations and thumbnails."""

from __future__ import annotations

from typing import Any

from reviewd.api.entity.base import Entity


class Component(Entity):
    """A file, sequence or container of data registered with the server."""

    __slots__ = ()

    def get_availability(self, locations: list[Any] | None = None) -> dict[str, Any]:
        """Percentage (0-100) of this component present in each location, by location id."""
        return self.session.get_component_availability(self, locations=locations)

    def create_thumbnail(self, path: str, data: dict[str, Any] | None = None) -> Entity:
        """Upload *path* as this component's entity thumbnail (see ``Session.create_thumbnail``)."""
        thumbnail = self.session.create_component(path, dict(data or {}, name="thumbnail"),
                                                  location=self.session.get(
                                                      "Location", _server_location_id()))
        self["thumbnail_id"] = thumbnail["id"]
        self.session.commit()
        answer: Entity = thumbnail
        return answer


def _server_location_id() -> Any:
    from reviewd.api.symbol import SERVER_LOCATION_ID

    return SERVER_LOCATION_ID
