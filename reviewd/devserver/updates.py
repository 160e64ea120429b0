"""The ``ftrack.update`` event a real server publishes after entities change.

One event per committed batch, listing every added, updated and removed entity with
its changed attributes under their *database* names (``statusid``), old/new values as
strings, and the chain of parents up to the project with the legacy lower-case entity
types (``task``, ``show``).  Plugins filter on exactly these fields, so the form follows
the real server's events (see the shared ``fixtures/events/ftrack.update.*.json``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from reviewd.devserver.schema.model import Attribute, EntityType, Model
from reviewd.devserver.store import Store
from reviewd.devserver.values import event_text

# Reference attributes that point at an entity's place in the hierarchy, best first.
# The order decides between two paths: a ReviewSessionObject belongs to its review
# session (not to the version it shows), a component sits under its version before its
# container.  Types with none of these fall back to any reference to a context.
_STRUCTURAL = (
    "parent",
    "asset",
    "version",
    "component",
    "container",
    "review_session_object",
    "review_session",
    "invitee",
    "asset_version",
    "note",
    "in_reply_to",
    "list",
    "context",
    "project",
)


@dataclass
class Change:
    """One entity changed inside a batch, captured while the transaction is open."""

    action: str  # "add" | "update" | "remove"
    entity_type: EntityType
    row: dict  # the row after the change (before it, for "remove")
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # column -> (old, new)
    parents: list[dict] = field(default_factory=list)


def entity_id(entity_type: EntityType, row: dict) -> Any:
    if len(entity_type.primary_key) == 1:
        return row.get(entity_type.primary_key[0])
    return ",".join(str(row.get(k)) for k in entity_type.primary_key)


def structural_parent(model: Model, store: Store, entity_type: EntityType, row: dict) -> Any:
    """The (type, row) one level up from *row* in the production hierarchy, or None."""
    if entity_type.is_context:
        context = model.get("Context")
        if row.get("parent_id") and context is not None:
            parent = store.get_row(context, [row["parent_id"]])
            if parent is not None:
                return model.types[parent["__type__"]], parent
        return None
    parent_type = row.get("parent_type")
    if row.get("parent_id") and isinstance(parent_type, str) and model.get(parent_type):
        candidate = model.types[parent_type]
        parent = store.get_row(candidate, [row["parent_id"]])
        if parent is not None:
            return model.types[parent["__type__"]], parent
    for attribute in _upward_references(model, entity_type):
        target = model.get(attribute.target or "")
        value = row.get(attribute.fk)
        if target is None or value is None:
            continue
        parent = store.get_row(target, [value])
        if parent is not None:
            return model.types[parent["__type__"]], parent
    return None


def _upward_references(model: Model, entity_type: EntityType) -> list[Attribute]:
    """Stored references of *entity_type* that lead up the hierarchy, best first."""
    references = [
        attribute
        for attribute in entity_type.attributes.values()
        if attribute.kind == "reference" and attribute.fk
    ]
    named = {attribute.name: attribute for attribute in references}
    ordered = [named[name] for name in _STRUCTURAL if name in named]
    for attribute in references:  # e.g. a real schema's Timelog.context, by any name
        target = model.get(attribute.target or "")
        if attribute not in ordered and target is not None and target.is_context:
            ordered.append(attribute)
    return ordered


def parent_chain(model: Model, store: Store, entity_type: EntityType, row: dict) -> list[dict]:
    """``parents`` of an event entity: itself, then each ancestor up to the project."""
    chain: list[tuple[EntityType, dict]] = [(entity_type, row)]
    seen = {entity_id(entity_type, row)}
    while len(chain) < 64:
        found = structural_parent(model, store, *chain[-1])
        if found is None or entity_id(*found) in seen:
            break
        seen.add(entity_id(*found))
        chain.append(found)
    entries = []
    for index, (item_type, item_row) in enumerate(chain):
        parent_id = entity_id(*chain[index + 1]) if index + 1 < len(chain) else None
        entries.append(
            {
                "entityId": entity_id(item_type, item_row),
                "entityType": item_type.legacy,
                "entity_type": item_type.id,
                "parentId": parent_id,
            }
        )
    return entries


def added_changes(entity_type: EntityType, row: dict) -> dict[str, tuple[Any, Any]]:
    """``changes`` of an ``add`` entry: every value the new *row* holds, old ``None``."""
    return {
        column: (None, value)
        for column, value in row.items()
        if value is not None and column != "__type__" and column not in entity_type.primary_key
    }


def removed_changes(entity_type: EntityType, row: dict) -> dict[str, tuple[Any, Any]]:
    """``changes`` of a ``remove`` entry: every value the removed *row* held, new ``None``.

    A real server lists the removed entity's attributes this way, so a plugin can tell
    which task a deleted version belonged to without querying what no longer exists.
    """
    return {column: (old, None) for column, (_none, old) in added_changes(entity_type, row).items()}


def _db_name(entity_type: EntityType, column: str) -> str:
    attribute = entity_type.attributes.get(column)
    return attribute.db_name if attribute is not None else column.lstrip("_")


def _data_type(entity_type: EntityType, column: str) -> str | None:
    attribute = entity_type.attributes.get(column)
    return attribute.data_type if attribute is not None else "string"


def event_entity(change: Change) -> dict:
    """One element of ``data.entities``."""
    entity_type = change.entity_type
    keys = []
    changes = {}
    for column, (old, new) in change.changes.items():
        name = _db_name(entity_type, column)
        data_type = _data_type(entity_type, column)
        keys.append(name)
        changes[name] = {"old": event_text(data_type, old), "new": event_text(data_type, new)}
    entity = {
        "entityId": entity_id(entity_type, change.row),
        "entityType": entity_type.legacy,
        "entity_type": entity_type.id,
    }
    if entity_type.is_context and change.row.get("object_type_id"):
        entity["objectTypeId"] = change.row["object_type_id"]
    entity.update(
        {
            "action": change.action,
            "keys": keys,
            "changes": changes,
            "parentId": change.parents[1]["entityId"] if len(change.parents) > 1 else None,
            "parents": change.parents,
        }
    )
    return entity


def build_update_event(
    changes: list[Change], username: str, user_id: str | None, source_id: str
) -> dict:
    """The single wire-form ``ftrack.update`` event for a committed batch's *changes*.

    Every change here comes through the API, so ``data`` carries no ``pushToClient``:
    the real server sets that flag on changes made in the web UI (the task-status
    fixture) and leaves it out for API-originated ones (the version-added fixture).
    """
    return {
        "id": uuid.uuid4().hex,
        "topic": "ftrack.update",
        "data": {"entities": [event_entity(change) for change in changes]},
        "source": {
            "id": source_id,
            "applicationId": "ftrack.api.python",
            "user": {"username": username, "userid": user_id},
        },
        "target": "",
        "sent": None,
        "inReplyToEvent": None,
    }
