"""``ProjectSchema``: which statuses and types a project's workflow allows."""

from __future__ import annotations

from typing import Any

from reviewd.api.entity.base import Entity


class ProjectSchema(Entity):
    """A project's workflow scheme (statuses per object type, task types)."""

    __slots__ = ()

    def _object_type_schema(self, schema: str) -> dict[str, Any]:
        """The ``Schema`` of this project schema for object type *schema* (e.g. "Shot")."""
        entity_class = self.session.types.get(schema)
        if entity_class is None:
            raise ValueError(f"Schema {schema} does not exist.")
        attribute = entity_class._attributes().get("object_type_id")
        object_type_id = getattr(attribute, "default_value", None)
        if not object_type_id:
            raise ValueError(f"Schema {schema} has no object type, so no statuses or types.")
        for object_schema in self["_schemas"]:
            if object_schema["type_id"] == object_type_id:
                answer: dict[str, Any] = object_schema
                return answer
        raise ValueError(f"Project schema {self['name']!r} defines nothing for {schema}.")

    def get_statuses(self, schema: str, type_id: str | None = None) -> list[Any]:
        """Statuses allowed for entities of type *schema*.

        For ``Task``, a *type_id* whose workflow is overridden in this project
        schema answers with the override's statuses.
        """
        if schema == "Task":
            if type_id is not None:
                for override in self["_overrides"]:
                    if override["type_id"] == type_id:
                        return list(override["workflow_schema"]["statuses"])
            return list(self["_task_workflow"]["statuses"])
        if schema == "AssetVersion":
            return list(self["_version_workflow"]["statuses"])
        object_schema = self._object_type_schema(schema)
        rows = self.session.query(
            f"select task_status from SchemaStatus where schema_id is {object_schema['id']}"
        )
        return [row["task_status"] for row in rows]

    def get_types(self, schema: str) -> list[Any]:
        """Types allowed for entities of type *schema*."""
        if schema == "Task":
            return list(self["_task_type_schema"]["types"])
        object_schema = self._object_type_schema(schema)
        rows = self.session.query(
            f"select task_type from SchemaType where schema_id is {object_schema['id']}"
        )
        return [row["task_type"] for row in rows]
