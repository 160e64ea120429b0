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
from reviewd.devserver.schema.model import EntityType, Model
from reviewd.devserver.store import Store
from reviewd.devserver.values import parse_datetime

VALUE_STORAGE = "Variable_Value"


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
