"""Server-side defaults on create: what a real ftrack server fills in for a minimal create.

Scripts (and ftrack's own client tests) create a Sequence with only a name and a
parent, an AssetVersion with only its asset, a component with nothing at all, and let
the server complete the row.  The schema's ``default`` values cover constants; the rules
here cover what depends on other data — mostly on the *workflow schema of the project*
the new entity belongs to.  Every rule only fills an attribute the request left empty,
so a client can always override it.  The rules are listed in ``docs/devserver.md``.
"""

from __future__ import annotations

import uuid
from typing import Any

from reviewd.devserver.schema.model import EntityType, Model
from reviewd.devserver.store import Store, quote
from reviewd.devserver.values import now_text

# The asset type a new Asset without one gets, when present (ftrack's generic upload type).
DEFAULT_ASSET_TYPE = "Upload"
DEFAULT_COMPONENT_NAME = "main"
# Types whose ``user`` is whoever makes them (not, say, a Membership's member).
AUTHORED = {"AssetVersion", "Note", "Job", "Timer", "Timelog"}
# A real schema list gives components no classifier; the type says what it is.
SYSTEM_TYPES = {"SequenceComponent": "sequence", "ContainerComponent": "container"}


class ServerDefaults:
    """Fills the data-dependent defaults of a new row before its required check."""

    def __init__(self, model: Model, store: Store) -> None:
        self.model = model
        self.store = store

    # ------------------------------------------------------------------ entry point
    def apply(self, entity_type: EntityType, row: dict, user_id: str | None) -> None:
        """Complete *row* (a new row of *entity_type*, stored column names) in place."""
        columns = self.model.tables[entity_type.table]
        if entity_type.is_context and entity_type.storage == "Show":
            self._project(row)
        elif entity_type.is_context:
            self._typed_context(entity_type, row)
        elif entity_type.id == "Asset":
            self._asset(row)
        elif entity_type.id == "AssetVersion":
            self._asset_version(entity_type, row, user_id)
        elif entity_type.table == "component":
            if row.get("name") is None:
                row["name"] = DEFAULT_COMPONENT_NAME
            if row.get("system_type") is None:
                row["system_type"] = SYSTEM_TYPES.get(entity_type.id, "file")
        elif entity_type.id == "User":
            if row.get("username") is None:
                row["username"] = f"user-{str(row.get('id') or uuid.uuid4())[:8]}"
            if "resource_type" in columns and row.get("resource_type") is None:
                row["resource_type"] = "user"
            for flag, value in (("is_active", 1), ("is_otp_enabled", 0)):
                if flag in columns and row.get(flag) is None:
                    row[flag] = value
        # Who did it and when: the API user (as author, publisher or creator) and now.
        if user_id and entity_type.id in AUTHORED and row.get("user_id") is None:
            if "user_id" in columns:
                row["user_id"] = user_id
        if user_id and "created_by_id" in columns and row.get("created_by_id") is None:
            row["created_by_id"] = user_id
        for column in ("start", "created_at", "date"):
            if column in columns and row.get(column) is None and self._is_time(entity_type, column):
                row[column] = now_text()

    def _is_time(self, entity_type: EntityType, column: str) -> bool:
        attribute = entity_type.attributes.get(column)
        return attribute is not None and attribute.data_type == "datetime"

    # ------------------------------------------------------------------ rules
    def _project(self, row: dict) -> None:
        if row.get("full_name") is None and row.get("name") is not None:
            row["full_name"] = row["name"]
        for column, value in (("status", "active"), ("is_global", 0), ("is_private", 0)):
            if row.get(column) is None and column in self.model.tables["context"]:
                row[column] = value
        if row.get("project_schema_id") is None:
            first = self._first("ProjectSchema")
            row["project_schema_id"] = first and first.get("id")

    def _typed_context(self, entity_type: EntityType, row: dict) -> None:
        schema = self._project_schema(row.get("project_id") or self._project_id_of(row))
        object_type_id = row.get("object_type_id")
        is_task = entity_type.id == "Task" or self._is_task(object_type_id)
        if row.get("type_id") is None and "type_id" in self._columns(entity_type):
            row["type_id"] = self._default_type(schema, object_type_id, is_task)
        if row.get("status_id") is None and "status_id" in self._columns(entity_type):
            row["status_id"] = self._default_status(
                schema, object_type_id, row.get("type_id"), is_task
            )
        for column in ("bid", "sort"):  # a real schema requires these without defaults
            if row.get(column) is None and column in entity_type.attributes:
                row[column] = 0

    def _asset(self, row: dict) -> None:
        if row.get("type_id") is None:
            named = self._named("AssetType", DEFAULT_ASSET_TYPE) or self._first("AssetType")
            row["type_id"] = named and named.get("id")
        if row.get("project_id") is None and row.get("context_id"):
            row["project_id"] = self._project_id_of({"parent_id": row["context_id"]})

    def _asset_version(self, entity_type: EntityType, row: dict, user_id: str | None) -> None:
        asset_id = row.get("asset_id")
        if row.get("version") is None and asset_id is not None:
            siblings = self.store.rows_by(
                entity_type, "asset_id", [asset_id], ["__type__", "version"]
            )
            row["version"] = 1 + max((s.get("version") or 0 for s in siblings), default=0)
        if row.get("status_id") is None:
            schema = self._project_schema(self._project_of_asset(asset_id))
            flow = schema and schema.get("asset_version_workflow_schema_id")
            row["status_id"] = self._first_status_of_workflow(flow) or self._first_id("Status")
        if row.get("user_id") is None and user_id:
            row["user_id"] = user_id

    # ------------------------------------------------------------------ workflow lookups
    def _default_status(
        self, schema: dict | None, object_type_id: Any, type_id: Any, is_task: bool
    ) -> Any:
        if schema is not None:
            if is_task:
                for override in self._rows(
                    "ProjectSchemaOverride", "project_schema_id", schema["id"]
                ):
                    if override.get("type_id") == type_id:
                        found = self._first_status_of_workflow(override.get("workflow_schema_id"))
                        if found:
                            return found
                found = self._first_status_of_workflow(schema.get("task_workflow_schema_id"))
                if found:
                    return found
            else:
                found = self._first_linked(schema, object_type_id, "SchemaStatus", "status_id")
                if found:
                    return found
        return self._first_id("Status")

    def _default_type(self, schema: dict | None, object_type_id: Any, is_task: bool) -> Any:
        if schema is not None:
            if is_task:
                links = self._rows(
                    "TaskTypeSchemaType", "task_type_schema_id", schema.get("task_type_schema_id")
                )
                found = self._sorted_targets("Type", [link.get("type_id") for link in links])
                if found:
                    return found
            else:
                found = self._first_linked(schema, object_type_id, "SchemaType", "type_id")
                if found:
                    return found
        generic = self._named("Type", "Generic")
        return generic.get("id") if generic else self._first_id("Type")

    def _first_linked(self, schema: dict, object_type_id: Any, link_type: str, column: str) -> Any:
        for item in self._rows("Schema", "project_schema_id", schema["id"]):
            if item.get("type_id") == object_type_id:
                links = sorted(
                    self._rows(link_type, "schema_id", item.get("id")),
                    key=lambda link: link.get("sort") or 0,
                )
                if links:
                    return links[0].get(column)
        return None

    def _first_status_of_workflow(self, workflow_id: Any) -> Any:
        if workflow_id is None:
            return None
        links = self._rows("WorkflowSchemaStatus", "workflow_schema_id", workflow_id)
        return self._sorted_targets("Status", [link.get("status_id") for link in links])

    def _sorted_targets(self, type_name: str, ids: list) -> Any:
        entity_type = self.model.get(type_name)
        if entity_type is None or not ids:
            return None
        rows = self.store.rows_by(entity_type, "id", ids)
        rows.sort(key=lambda r: (r.get("sort") or 0, ids.index(r.get("id"))))
        return rows[0].get("id") if rows else None

    # ------------------------------------------------------------------ row lookups
    def _columns(self, entity_type: EntityType) -> set[str]:
        return set(self.model.tables[entity_type.table])

    def _is_task(self, object_type_id: Any) -> bool:
        object_type = self._row("ObjectType", object_type_id)
        return bool(object_type and object_type.get("is_leaf"))

    def _rows(self, type_name: str, column: str, value: Any) -> list[dict]:
        entity_type = self.model.get(type_name)
        if entity_type is None or value is None or column not in self._columns(entity_type):
            return []
        return self.store.rows_by(entity_type, column, [value])

    def _row(self, type_name: str, key: Any) -> dict | None:
        entity_type = self.model.get(type_name)
        if entity_type is None or key is None:
            return None
        return self.store.get_row(entity_type, [key])

    def _first(self, type_name: str) -> dict | None:
        entity_type = self.model.get(type_name)
        if entity_type is None:
            return None
        order = '"sort", rowid' if "sort" in self._columns(entity_type) else "rowid"
        columns = list(self.model.tables[entity_type.table])
        for values in self.store.select(
            f"SELECT {', '.join(quote(c) for c in columns)} "
            f"FROM {quote(entity_type.table)} ORDER BY {order}"
        ):
            row = dict(zip(columns, values, strict=True))
            if row["__type__"] in entity_type.subtypes:
                return row
        return None

    def _first_id(self, type_name: str) -> Any:
        first = self._first(type_name)
        return first.get("id") if first else None

    def _named(self, type_name: str, name: str) -> dict | None:
        rows = self._rows(type_name, "name", name)
        return rows[0] if rows else None

    def _project_id_of(self, row: dict) -> Any:
        context = self.model.get("Context")
        seen: set = set()
        parent_id = row.get("parent_id")
        while parent_id and context is not None and parent_id not in seen:
            seen.add(parent_id)
            parent = self.store.get_row(context, [parent_id])
            if parent is None:
                return None
            if self.model.types[parent["__type__"]].storage == "Show":
                return parent.get("id")
            if parent.get("project_id"):
                return parent["project_id"]
            parent_id = parent.get("parent_id")
        return None

    def _project_of_asset(self, asset_id: Any) -> Any:
        asset = self._row("Asset", asset_id)
        if asset is None:
            return None
        return asset.get("project_id") or self._project_id_of(
            {"parent_id": asset.get("context_id")}
        )

    def _project_schema(self, project_id: Any) -> dict | None:
        project = self._row("Project", project_id)
        return self._row("ProjectSchema", project and project.get("project_schema_id"))
