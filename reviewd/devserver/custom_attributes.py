"""Custom attribute values: complete and check them against their configuration.

A value row (``CustomAttributeValue`` and its per-owner variants, all stored in one
table) names its configuration and its owner's id.  A real server keeps the value typed
by the configuration's type — a ``number`` attribute refuses ``"abc"`` — and shows the
configuration's ``key`` on the value, which is what makes
``custom_attributes any (key is "fstart" and value > 1000)`` queryable.  Both happen
here, before anything is written, so a refused value writes nothing.
"""

from __future__ import annotations

import json
from typing import Any

from reviewd.devserver import errors
from reviewd.devserver.schema.model import VALUE_TABLE, EntityType, Model
from reviewd.devserver.store import Store, quote
from reviewd.devserver.values import parse_datetime

VALUE_STORAGE = VALUE_TABLE


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_enumeration(value: Any) -> bool:
    return isinstance(value, str) or (
        isinstance(value, list) and all(isinstance(item, str) for item in value)
    )


# What each configuration type accepts (None is always accepted: it clears the value).
CHECKS = {
    "text": lambda value: isinstance(value, str),
    "number": _is_number,
    "boolean": lambda value: isinstance(value, bool),
    "enumerator": _is_enumeration,
    "dynamic enumerator": _is_enumeration,
}


class CustomAttributes:
    """Knows which rows are custom attribute values and how to check them."""

    def __init__(self, model: Model, store: Store) -> None:
        self.model = model
        self.store = store

    @staticmethod
    def handles(entity_type: EntityType) -> bool:
        return entity_type.storage == VALUE_STORAGE

    def complete(self, entity_type: EntityType, row: dict) -> None:
        """Fill ``key`` from the configuration and check the value (a new row)."""
        configuration = self._configuration(row.get("configuration_id"))
        if configuration is None:
            raise errors.not_found("CustomAttributeConfiguration", [row.get("configuration_id")])
        if row.get("key") is None and "key" in self.model.tables[entity_type.table]:
            row["key"] = configuration.get("key")
        owner = find_owner(self.model, self.store, row.get("entity_id"))
        if owner is None:
            raise errors.validation(
                f"custom attribute {configuration.get('key')!r}: no entity with id "
                f"{row.get('entity_id')!r} to hold the value."
            )
        owner_type, owner_row = owner
        dense = DenseValues(self.model, self.store)
        if configuration["id"] not in {
            c["id"] for c in dense.applicable(owner_type, owner_row, [configuration])
        }:
            raise errors.validation(
                f"custom attribute {configuration.get('key')!r} does not apply to "
                f"{owner_type.id} {row.get('entity_id')}."
            )
        self.check(configuration, row.get("value"))

    def check_update(self, row: dict, stored_value: Any) -> None:
        configuration = self._configuration(row.get("configuration_id"))
        if configuration is not None:
            self.check(configuration, stored_value)

    def check(self, configuration: dict, stored_value: Any) -> None:
        """Raise a ValidationError when *stored_value* does not suit the configuration."""
        if stored_value is None:
            return
        value = json.loads(stored_value) if isinstance(stored_value, str) else stored_value
        if value is None:
            return
        type_name = self._type_name(configuration)
        key = configuration.get("key")
        if type_name == "date":
            if isinstance(value, dict) or isinstance(value, str):
                parse_datetime(value, f"custom attribute {key!r}")
                return
            raise errors.validation(f"custom attribute {key!r} expects a date, got {value!r}")
        check = CHECKS.get(type_name or "")
        if check is not None and not check(value):
            raise errors.validation(
                f"custom attribute {key!r} is of type {type_name!r}; {value!r} is not valid"
            )

    def _configuration(self, configuration_id: Any) -> dict | None:
        config_type = self.model.get("CustomAttributeConfiguration")
        if config_type is None or configuration_id is None:
            return None
        return self.store.get_row(config_type, [configuration_id])

    def _type_name(self, configuration: dict) -> str | None:
        type_type = self.model.get("CustomAttributeType")
        if type_type is None or configuration.get("type_id") is None:
            return None
        found = self.store.get_row(type_type, [configuration["type_id"]])
        return (found or {}).get("name")


# ---------------------------------------------------------------------- dense reading
# Which configurations apply to an owner: ftrack names owners by their storage table.
OWNER_KINDS = {
    "Show": "show",
    "AssetVersion": "assetversion",
    "Asset": "asset",
    "User": "user",
    "List": "list",
}
HIERARCHICAL_OWNERS = {"show", "task", "asset", "assetversion"}


def owner_kind(entity_type: EntityType) -> str | None:
    """The ``entity_type`` a configuration names for owners of *entity_type*."""
    if entity_type.is_context and entity_type.storage != "Show":
        return "task"
    return OWNER_KINDS.get(entity_type.storage)


class DenseValues:
    """Project ``custom_attributes`` as a real server does: one item per configuration.

    The official client treats ``<Owner>CustomAttributeValue`` collections as *dense*:
    every configuration that applies to the owner has an item (with the configuration's
    default when nothing is stored), and setting a value on a stored owner updates that
    item in place.  So unset values are served as virtual items, and an update of one
    creates the row (see ``BatchExecutor._update``).
    """

    def __init__(self, model: Model, store: Store) -> None:
        self.model = model
        self.store = store

    def configurations(self) -> list[dict]:
        config_type = self.model.get("CustomAttributeConfiguration")
        if config_type is None:
            return []
        columns = self.store.columns(config_type)
        order = '"sort", rowid' if "sort" in columns else "rowid"
        rows = self.store.select(
            f"SELECT {', '.join(quote(c) for c in columns)} "
            f"FROM {quote(config_type.table)} ORDER BY {order}"
        )
        return [dict(zip(columns, row, strict=True)) for row in rows]

    def applicable(self, owner_type: EntityType, row: dict, configurations: list[dict]) -> list:
        kind = owner_kind(owner_type)
        if kind is None:
            return []
        project_id = row.get("id") if kind == "show" else row.get("project_id")
        found = []
        for config in configurations:
            if config.get("project_id") not in (None, project_id):
                continue
            if config.get("entity_type") == kind:
                if kind != "task" or config.get("object_type_id") == row.get("object_type_id"):
                    found.append(config)
            elif kind in HIERARCHICAL_OWNERS and config.get("is_hierarchical"):
                found.append(config)
        return found

    def rows_for(self, owner_type: EntityType, target: EntityType, members: list) -> list:
        """``(owner row, [value rows])`` for each owner, stored or virtual, typed *target*."""
        configurations = self.configurations()
        key_name = owner_type.primary_key[0]
        owner_ids = [row.get(key_name) for row, _entity in members]
        stored = {
            (value["entity_id"], value["configuration_id"]): value
            for value in self.store.rows_by(target, "entity_id", owner_ids)
        }
        result = []
        for row, _entity in members:
            concrete = self.model.types.get(row.get("__type__"), owner_type)
            values = []
            for config in self.applicable(concrete, row, configurations):
                value = stored.get((row.get(key_name), config["id"]))
                if value is None:
                    value = {
                        "entity_id": row.get(key_name),
                        "configuration_id": config["id"],
                        "value": config.get("default"),
                    }
                values.append({**value, "__type__": target.id, "key": config.get("key")})
            result.append(values)
        return result


def decoded(stored: Any) -> Any:
    """A stored (JSON text) value as its Python value."""
    if isinstance(stored, str):
        try:
            return json.loads(stored)
        except ValueError:
            return stored
    return stored


def find_owner(model: Model, store: Store, owner_id: Any) -> tuple[EntityType, dict] | None:
    """The entity a value belongs to (values name their owner by id alone)."""
    for name in ("Context", "AssetVersion", "Asset", "User", "List"):
        owner_type = model.get(name)
        if owner_type is None or owner_id is None:
            continue
        row = store.get_row(owner_type, [owner_id])
        if row is not None:
            return model.types[row["__type__"]], row
    return None
