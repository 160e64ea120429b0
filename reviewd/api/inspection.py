"""Questions about entities that are not attribute reads: identity, key, state.

State comes from the session's recorded operations (created, then modified or
deleted), the way ftrack_api defines it, so it agrees with what ``commit`` would
send.  ``states`` answers for many entities with one pass over the operations.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from reviewd.api import operation as _operation
from reviewd.api.symbol import CREATED, DELETED, MODIFIED, NOT_SET


def primary_key(entity: Any) -> OrderedDict[str, Any]:
    """Primary key attribute -> value (as text), in schema order.

    Raises ``KeyError`` naming the attribute when a key value is missing.
    """
    key: OrderedDict[str, Any] = OrderedDict()
    for name in entity.primary_key_attributes:
        value = entity[name]
        if value is NOT_SET:
            raise KeyError(f"Primary key attribute {name!r} of {entity!r} has no value.")
        key[str(name)] = str(value)
    return key


def identity(entity: Any) -> tuple[str, list[str]]:
    """``(entity type, [primary key values])`` — what names an entity across sessions."""
    return (str(entity.entity_type), list(primary_key(entity).values()))


_ENTITY_OPERATIONS = (
    _operation.CreateEntityOperation,
    _operation.UpdateEntityOperation,
    _operation.DeleteEntityOperation,
)


def _state(operation: Any, current: Any) -> Any:
    """The state after *operation*, given the *current* one."""
    if isinstance(operation, _operation.DeleteEntityOperation):
        return DELETED
    if current is NOT_SET:
        if isinstance(operation, _operation.CreateEntityOperation):
            return CREATED
        if isinstance(operation, _operation.UpdateEntityOperation):
            return MODIFIED
    return current


def _operation_key(operation: Any) -> tuple[str, str]:
    return (operation.entity_type, str(list(dict(operation.entity_key).values())))


def state(entity: Any) -> Any:
    """``CREATED``, ``MODIFIED``, ``DELETED`` or ``NOT_SET`` (in sync with the server)."""
    return states([entity])[0]


def states(entities: list[Any]) -> list[Any]:
    """The state of each of *entities* (all from one session), in order."""
    if not entities:
        return []
    session = entities[0].session
    keys = [(entity.entity_type, str(list(primary_key(entity).values()))) for entity in entities]
    found: dict[tuple[str, str], Any] = dict.fromkeys(keys, NOT_SET)
    for operation in session.recorded_operations:
        if isinstance(operation, _ENTITY_OPERATIONS):
            key = _operation_key(operation)
            if key in found:
                found[key] = _state(operation, found[key])
    return [found[key] for key in keys]
