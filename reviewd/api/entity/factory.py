"""Choosing the class each schema's entities are built from.

Most types are plain :class:`~reviewd.api.entity.base.Entity`; a few get the
helpers ftrack_api gives them (``User.start_timer``, ``ProjectSchema.get_statuses``,
``create_note`` on every type with notes, ...).  The choice follows the schema's
id and, for components and notable types, what the schema declares.
"""

from __future__ import annotations

from typing import Any

from reviewd.api.entity.asset_version import AssetVersion
from reviewd.api.entity.base import Entity
from reviewd.api.entity.component import Component, CreateThumbnailMixin
from reviewd.api.entity.job import Job
from reviewd.api.entity.location import Location
from reviewd.api.entity.note import CreateNoteMixin, Note
from reviewd.api.entity.project_schema import ProjectSchema
from reviewd.api.entity.user import User

#: Entity type id -> the class its entities derive from.
BASE_CLASSES: dict[str, type[Entity]] = {
    "AssetVersion": AssetVersion,
    "Job": Job,
    "Location": Location,
    "Note": Note,
    "ProjectSchema": ProjectSchema,
    "User": User,
    "Component": Component,
    "FileComponent": Component,
    "SequenceComponent": Component,
    "ContainerComponent": Component,
}


def bases_for(schema: dict[str, Any]) -> tuple[type, ...]:
    """The base classes for entities of *schema*."""
    name = schema.get("id", "")
    base = BASE_CLASSES.get(name)
    if base is None:
        mixin_of = (schema.get("$mixin") or {}).get("$ref")
        base = BASE_CLASSES.get(mixin_of, Entity) if mixin_of else Entity
    properties = schema.get("properties") or {}
    helpers: list[type] = []
    if "notes" in properties and name != "Note":
        helpers.append(CreateNoteMixin)
    if "thumbnail_id" in properties:
        helpers.append(CreateThumbnailMixin)
    return (*helpers, base)


class StandardFactory:
    """ftrack_api's factory interface: ``create(schema, bases=None)`` builds a class."""

    def create(self, schema: dict[str, Any], bases: list[type] | None = None) -> type:
        from reviewd.api.schema import build_type

        chosen = tuple(bases) if bases else bases_for(schema)
        return build_type(schema, bases=chosen)
