"""Execute one ``/api`` batch: every operation or none, plus the changes it made.

Validation happens here, before anything is written, in the order a user needs the
answer: unknown type, unknown attribute, bad value, immutable attribute, missing
required attribute.  The whole batch runs in one SQLite transaction, so an error in the
third operation leaves the first two unwritten.
"""

from __future__ import annotations

import uuid
from typing import Any

from reviewd.devserver import actions, errors
from reviewd.devserver.custom_attributes import CustomAttributes, decoded, find_owner
from reviewd.devserver.defaults import ServerDefaults
from reviewd.devserver.errors import ApiError
from reviewd.devserver.schema import schema_hash
from reviewd.devserver.schema.model import NOT_SET, Attribute, EntityType, Model
from reviewd.devserver.sql import QueryEngine
from reviewd.devserver.store import Store, quote
from reviewd.devserver.updates import Change, added_changes, parent_chain, removed_changes
from reviewd.devserver.values import now_text, to_storage

SERVER_VERSION = "4.13.8"
# Collections whose items cannot outlive their owner: deleting the owner deletes them.
OWNING_KEYS = {
    "parent_id",
    "context_id",
    "asset_id",
    "version_id",
    "review_session_id",
    "review_session_object_id",
    "review_session_invitee_id",
    "in_reply_to_id",
    "note_id",
    "component_id",
    "list_id",
    "workflow_schema_id",
    "task_type_schema_id",
    "schema_id",
    "entity_id",
    "from_id",
    "to_id",
    "job_id",
}
_AUTOMATIC_TIMES = ("created_at", "date")
# Required whatever the schema list says: a version cannot exist without its asset (its
# number, status workflow and permissions all come from the asset's project).
ALWAYS_REQUIRED = {"AssetVersion": ("asset_id",)}
# Columns that must be unique per type (the only such rule clients rely on: one timer).
UNIQUE = {"Timer": ("user_id",)}


class BatchExecutor:
    """Runs batches of operations against one store."""

    def __init__(self, model: Model, store: Store, schemas: list[dict]) -> None:
        self.model = model
        self.store = store
        self.schemas = schemas
        self.schema_hash = schema_hash(schemas)
        self.queries = QueryEngine(model, store)
        self.defaults = ServerDefaults(model, store)
        self.custom_attributes = CustomAttributes(model, store)
        self.files: Any = None  # a FileStore, set by the server that owns this executor
        self._new_notes: list[dict] = []
        self._unfinished: list[tuple[int, EntityType, list]] = []
        self._index = 0
        self._lenient = False

    # ================================================================== entry point
    def server_information(self) -> dict:
        return {
            "version": SERVER_VERSION,
            "schema_hash": self.schema_hash,
            "storage_scenario": {"scenario": "ftrack.automatic", "data": {}},
            "is_timezone_support_enabled": True,
        }

    def execute(
        self, batch: list, username: str, lenient: bool = False
    ) -> tuple[list, list[Change]]:
        """Run *batch* for *username*; returns (results, changes) or raises ApiError.

        *lenient* (seeding only) fills required plain values the data leaves out, for
        schema lists from a real server whose server-side defaults are unknown here.
        """
        self._lenient = lenient
        changes: list[Change] = []
        results = []
        user_id = self.user_id(username)
        self._new_notes = []
        self._unfinished = []
        with self.store.transaction():
            for index, operation in enumerate(batch, start=1):
                self._index = index
                try:
                    results.append(self._dispatch(operation, user_id, changes))
                except ApiError as error:
                    raise error.with_prefix(_describe(index, len(batch), operation)) from None
            self._check_unfinished(batch)
            self._add_author_recipients(user_id, changes)
        return results, changes

    def _check_unfinished(self, batch: list) -> None:
        """Required attributes are checked when the batch ends, as a real server does.

        The official client may send ``create Scope {id}`` followed by ``update Scope
        {name}`` in one batch; only what is still missing at the end is an error, reported
        against the create that left it out.
        """
        for index, entity_type, key in self._unfinished:
            row = self.store.get_row(entity_type, key) or {}
            missing = self._missing_required(entity_type, row)
            if missing:
                raise errors.validation(
                    f"Missing required attribute(s) {', '.join(missing)} for a new {entity_type.id}."
                ).with_prefix(_describe(index, len(batch), batch[index - 1]))

    def _add_author_recipients(self, user_id: str | None, changes: list[Change]) -> None:
        """The user writing a note is one of its recipients, as on a real server.

        Done after the batch's own operations, so a client that lists the author among
        the recipients itself does not collide with it.
        """
        recipient_type = self.model.get("Recipient")
        if recipient_type is None or user_id is None:
            return
        for note in self._new_notes:
            key = [note.get("id"), user_id]
            if self.store.get_row(recipient_type, key) is None:
                # Stored quietly: the note's own "add" is what its ftrack.update reports.
                row = {"__type__": recipient_type.id, "note_id": key[0], "resource_id": user_id}
                self.store.insert(recipient_type, row)

    def _after_create(self, entity_type: EntityType, row: dict, changes: list[Change]) -> None:
        if entity_type.id == "Note":
            self._new_notes.append(row)
        elif entity_type.id == "NoteLabelLink":
            # A note given a category through the label API shows it as its category too.
            category_type, note_type = self.model.get("NoteCategory"), self.model.get("Note")
            if category_type is None or note_type is None:
                return
            if self.store.get_row(category_type, [row.get("label_id")]) is None:
                return
            note = self.store.get_row(note_type, [row.get("note_id")])
            if note is not None and note.get("category_id") is None:
                self._write_update(
                    note_type, [note["id"]], note, {"category_id": row["label_id"]}, changes
                )

    def user_id(self, username: str) -> str | None:
        user_type = self.model.get("User")
        if user_type is None or "username" not in self.model.tables[user_type.table]:
            return None
        rows = self.store.rows_by(user_type, "username", [username])
        return rows[0].get("id") if rows else None

    def _dispatch(self, operation: Any, user_id: str | None, changes: list[Change]) -> Any:
        if not isinstance(operation, dict):
            raise ApiError("InvalidRequestError", "An operation must be a JSON object.")
        action = operation.get("action")
        if action == "query_server_information":
            return self.server_information()
        if action == "query_schemas":
            return self.schemas
        if action == "query":
            return self.queries.run(operation.get("expression"))
        if action == "create":
            return self._create(operation, user_id, changes)
        if action == "update":
            return self._update(operation, changes)
        if action == "delete":
            return self._delete(operation, changes)
        if action == "reset_remote":
            return self._reset_remote(operation, changes)
        if action == "get_upload_metadata":
            return actions.get_upload_metadata(self, operation)
        if action == "get_widget_url":
            return actions.get_widget_url(self, operation)
        if action == "encode_media":
            return actions.encode_media(self, operation, user_id, changes)
        raise ApiError(
            "UnknownActionError", f"The action {action!r} is not supported by this server."
        )

    # ================================================================== helpers
    def _entity_type(self, operation: dict) -> EntityType:
        name = operation.get("entity_type")
        entity_type = self.model.get(name) if isinstance(name, str) else None
        if entity_type is None:
            raise errors.unknown_type(name)
        return entity_type

    def _entity_data(self, operation: dict) -> dict:
        data = operation.get("entity_data", {})
        if not isinstance(data, dict):
            raise errors.validation("entity_data must be a JSON object.")
        return data

    def _key(self, entity_type: EntityType, operation: dict, data: dict | None = None) -> list:
        key = operation.get("entity_key")
        if isinstance(key, dict):
            key = [key.get(k) for k in entity_type.primary_key]
        if key is None and data is not None:
            key = [data.get(k) for k in entity_type.primary_key]
        if not isinstance(key, list) or len(key) != len(entity_type.primary_key):
            raise errors.validation(
                f"entity_key must list the primary key {entity_type.primary_key} of {entity_type.id}."
            )
        return key

    def _attribute(self, entity_type: EntityType, name: str) -> Attribute:
        attribute = entity_type.attributes.get(name)
        if attribute is None:
            raise errors.unknown_attribute(entity_type.id, name)
        return attribute

    def _reference_key(self, attribute: Attribute, value: Any) -> Any:
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, dict):
            target = self.model.get(value.get("__entity_type__") or attribute.target or "")
            key_name = target.primary_key[0] if target else "id"
            if key_name in value:
                return value[key_name]
        raise errors.validation(
            f"{attribute.name}: expected an entity reference or an id, got {value!r}"
        )

    def _stored_changes(self, entity_type: EntityType, data: dict) -> tuple[dict, dict]:
        """Split wire *data* into stored columns and collection assignments."""
        columns: dict[str, Any] = {}
        collections: dict[str, Any] = {}
        for name, value in data.items():
            if name == "__entity_type__":
                continue
            attribute = self._attribute(entity_type, name)
            where = f"{entity_type.id}.{name}"
            if attribute.kind == "scalar":
                columns[name] = to_storage(attribute.data_type, value, where)
            elif attribute.kind == "reference":
                if attribute.fk is None:
                    raise ApiError(
                        "ImmutableAttributeError", f"{where} is computed and cannot be set."
                    )
                columns[attribute.fk] = self._reference_key(attribute, value)
            else:
                collections[name] = value
        return columns, collections

    def entity_out(self, entity_type: EntityType, row: dict, assigned: Any = ()) -> dict:
        """The wire form of a stored *row* with all its stored scalar attributes.

        Collections the operation *assigned* are included too (as references), as a real
        server echoes them: the client takes them as the new remote value.
        """
        tree: dict[str, Any] = {
            name: {}
            for name, attribute in entity_type.attributes.items()
            if attribute.kind == "scalar" and not attribute.computed
        }
        tree.update({name: {} for name in assigned})
        return self.queries.project([row], tree)[0]

    def _record(
        self, action: str, entity_type: EntityType, row: dict, changes: dict, out: list
    ) -> None:
        if self.custom_attributes.handles(entity_type):
            # Real servers report a custom attribute change as an update of its owner,
            # under the attribute's key: {"keys": ["fstart"], "changes": {"fstart": ...}}.
            owner = find_owner(self.model, self.store, row.get("entity_id"))
            key = row.get("key")
            if owner is not None and key:
                old, new = changes.get("value", (None, None))
                if action == "remove":
                    old, new = row.get("value"), None
                entity_type, row = owner
                changes = {key: (decoded(old), decoded(new))}
                action = "update"
        parents = parent_chain(self.model, self.store, entity_type, row)
        out.append(Change(action, entity_type, dict(row), changes, parents))

    # ================================================================== create
    def create(self, operation: dict, user_id: str | None, changes: list[Change]) -> dict:
        """Run one create operation inside the current batch (used by other actions)."""
        return self._create(operation, user_id, changes)

    def _create(self, operation: dict, user_id: str | None, changes: list[Change]) -> dict:
        entity_type = self._entity_type(operation)
        data = self._entity_data(operation)
        for name in data:
            if name != "__entity_type__":
                attribute = self._attribute(entity_type, name)
                if attribute.computed:
                    raise ApiError(
                        "ImmutableAttributeError",
                        f"{entity_type.id}.{name} is computed by the server and cannot be set.",
                    )
        columns, collections = self._stored_changes(entity_type, data)
        key = operation.get("entity_key")
        if isinstance(key, list) and len(key) == len(entity_type.primary_key):
            for name, value in zip(entity_type.primary_key, key, strict=True):
                if value is not None and columns.get(name) is None:
                    columns[name] = value
        row = {"__type__": entity_type.id}
        row.update(columns)
        self._apply_defaults(entity_type, row, user_id)
        self.defaults.apply(entity_type, row, user_id)
        if self.custom_attributes.handles(entity_type):
            self.custom_attributes.complete(entity_type, row)
        missing = self._missing_required(entity_type, row)
        if missing and self._lenient:
            self._fill_blanks(entity_type, row, missing)
            missing = self._missing_required(entity_type, row)
        key = [row.get(k) for k in entity_type.primary_key]
        if missing and any(value is None for value in key):
            raise errors.validation(
                f"Missing required attribute(s) {', '.join(missing)} for a new {entity_type.id}."
            )
        if self._row_exists(entity_type, key):
            raise ApiError("DuplicateEntityError", f"{entity_type.id} {key!r} already exists.")
        self._check_unique(entity_type, row)
        if missing:
            self._unfinished.append((self._index, entity_type, key))
        self.store.insert(entity_type, row)
        self._record("add", entity_type, row, added_changes(entity_type, row), changes)
        self._assign_collections(entity_type, row, collections, changes)
        self._after_create(entity_type, row, changes)
        out = self.entity_out(entity_type, row, _sent(entity_type, data))
        return {"action": "create", "data": _without_unset(out, data)}

    def _check_unique(self, entity_type: EntityType, row: dict) -> None:
        """Uniqueness a real server's database enforces beyond the primary key."""
        for column in UNIQUE.get(entity_type.id, ()):
            value = row.get(column)
            if value is not None and self.store.rows_by(entity_type, column, [value], ["__type__"]):
                raise ApiError(
                    "DuplicateEntryError",
                    f"A {entity_type.id} with {column} {value!r} already exists "
                    "(a user has at most one running timer).",
                )

    def _row_exists(self, entity_type: EntityType, key: list) -> bool:
        """True when the table already holds *key*, whatever the row's concrete type."""
        where = " AND ".join(f"{quote(k)} = ?" for k in entity_type.primary_key)
        sql = f"SELECT 1 FROM {quote(entity_type.table)} WHERE {where} LIMIT 1"
        return bool(self.store.select(sql, key))

    def _apply_defaults(self, entity_type: EntityType, row: dict, user_id: str | None) -> None:
        for name, attribute in entity_type.attributes.items():
            if attribute.kind != "scalar" or attribute.computed or row.get(name) is not None:
                continue
            if attribute.default is not NOT_SET:
                default = attribute.default
                if default == "{uid}":
                    default = str(uuid.uuid4())
                row[name] = to_storage(attribute.data_type, default, f"{entity_type.id}.{name}")
            elif name in _AUTOMATIC_TIMES and attribute.data_type == "datetime":
                row[name] = now_text()
            elif name == "created_by_id" and user_id:
                row[name] = user_id
        for name, value in entity_type.classifiers.items():
            row[name] = value
        if "project_id" in self.model.tables[entity_type.table] and row.get("project_id") is None:
            project = self._project_of(entity_type, row)
            if project:
                row["project_id"] = project

    def _project_of(self, entity_type: EntityType, row: dict) -> str | None:
        """Derive ``project_id`` from the parent, as a real server does for contexts."""
        if not entity_type.is_context:
            return None
        if entity_type.storage == "Show":
            return row.get("id")
        context = self.model.get("Context")
        parent = (
            self.store.get_row(context, [row.get("parent_id")])
            if context and row.get("parent_id")
            else None
        )
        if parent is None:
            return None
        return parent.get("id") if parent["__type__"] == "Project" else parent.get("project_id")

    @staticmethod
    def _fill_blanks(entity_type: EntityType, row: dict, missing: list[str]) -> None:
        blanks = {"string": "", "integer": 0, "number": 0, "boolean": 0, "datetime": now_text()}
        for name in missing:
            attribute = entity_type.attributes[name]
            if attribute.kind == "scalar" and attribute.data_type in blanks:
                row[name] = blanks[attribute.data_type]

    def _missing_required(self, entity_type: EntityType, row: dict) -> list[str]:
        missing = []
        required = dict.fromkeys([*entity_type.required, *ALWAYS_REQUIRED.get(entity_type.id, ())])
        for name in required:
            attribute = entity_type.attributes.get(name)
            if attribute is None or attribute.computed:
                continue
            column = attribute.fk if attribute.kind == "reference" else name
            if attribute.kind in ("collection", "mapped"):
                continue
            if row.get(column) is None:
                missing.append(name)
        return missing

    def _assign_collections(
        self, entity_type: EntityType, row: dict, collections: dict, changes: list[Change]
    ) -> None:
        """Setting ``notes`` or ``children`` links each listed item to this entity."""
        owner_key = row.get(entity_type.primary_key[0])
        for name, value in collections.items():
            attribute = entity_type.attributes[name]
            target = self.model.get(attribute.target or "")
            if not attribute.computed and target is not None and attribute.link is not None:
                self._assign_links(owner_key, attribute, target, value, changes)
                continue
            if attribute.computed or target is None or attribute.fk is None:
                raise ApiError("ImmutableAttributeError", f"{entity_type.id}.{name} cannot be set.")
            if attribute.kind == "mapped" and isinstance(value, dict):
                self._assign_mapping(entity_type, owner_key, target, value, changes)
                continue
            if not isinstance(value, list):
                raise errors.validation(f"{entity_type.id}.{name}: expected a list of entities.")
            kept = set()
            for item in value:
                item_type, item_key, item_row = self._collection_item(target, item)
                kept.add(tuple(item_key))
                link = {attribute.fk: owner_key}
                if attribute.polymorphic and "parent_type" in item_row:
                    link["parent_type"] = entity_type.id
                link = {k: v for k, v in link.items() if item_row.get(k) != v}
                if link:
                    self._write_update(
                        self.model.types[item_row["__type__"]], item_key, item_row, link, changes
                    )
            if attribute.fk not in OWNING_KEYS and attribute.kind == "collection":
                # Items left out of the new list leave the collection (a many-to-one link).
                for old in self.store.rows_by(target, attribute.fk, [owner_key]):
                    old_type = self.model.types[old["__type__"]]
                    old_key = [old.get(k) for k in old_type.primary_key]
                    if tuple(old_key) not in kept:
                        self._write_update(old_type, old_key, old, {attribute.fk: None}, changes)

    def _assign_links(
        self, owner_key: Any, attribute: Attribute, target: EntityType, value: Any, changes: list
    ) -> None:
        """Replace a many-to-many collection (``scopes``): add and remove link rows."""
        if not isinstance(value, list):
            raise errors.validation(f"{attribute.name}: expected a list of entities.")
        assert attribute.link is not None, "many-to-many collections have a link table"
        link_id, mine, theirs = attribute.link
        link_type = self.model.types[link_id]
        wanted = []
        for item in value:
            _item_type, item_key, _row = self._collection_item(target, item)
            if item_key[0] not in wanted:
                wanted.append(item_key[0])
        current = {row[theirs]: row for row in self.store.rows_by(link_type, mine, [owner_key])}
        public = not link_type.id.startswith("__")  # hidden link tables make no events
        for item_id, row in current.items():
            if item_id not in wanted:
                self.store.delete(link_type, [row.get(k) for k in link_type.primary_key])
                if public:
                    self._record("remove", link_type, row, removed_changes(link_type, row), changes)
        for item_id in wanted:
            if item_id not in current:
                row = {"__type__": link_type.id, mine: owner_key, theirs: item_id}
                self.store.insert(link_type, row)
                if public:
                    self._record("add", link_type, row, added_changes(link_type, row), changes)

    def _collection_item(self, target: EntityType, item: Any) -> tuple[EntityType, list, dict]:
        """Resolve one element of a collection assignment (a reference or a bare id)."""
        if isinstance(item, dict):
            item_type = self.model.get(item.get("__entity_type__") or target.id)
            if item_type is None:
                raise errors.unknown_type(item.get("__entity_type__"))
            item_key = [item.get(k) for k in item_type.primary_key]
        else:
            item_type, item_key = target, [item]
        item_row = self.store.get_row(item_type, item_key)
        if item_row is None:
            raise errors.not_found(item_type.id, item_key)
        return item_type, item_key, item_row

    def _assign_mapping(
        self,
        owner: EntityType,
        owner_key: Any,
        target: EntityType,
        value: dict,
        changes: list[Change],
    ) -> None:
        for key, item_value in value.items():
            existing = self.store.get_row(target, [owner_key, key])
            text = None if item_value is None else str(item_value)
            if existing is None:
                row = {
                    "__type__": target.id,
                    "parent_id": owner_key,
                    "parent_type": owner.id,
                    "key": key,
                    "value": text,
                }
                self.store.insert(target, row)
                self._record(
                    "add", target, row, {"key": (None, key), "value": (None, text)}, changes
                )
            elif existing.get("value") != text:
                self._write_update(target, [owner_key, key], existing, {"value": text}, changes)

    def _write_update(
        self, entity_type: EntityType, key: list, row: dict, columns: dict, changes: list[Change]
    ) -> dict:
        self.store.update(entity_type, key, columns)
        new_row = {**row, **columns}
        diff = {c: (row.get(c), v) for c, v in columns.items() if row.get(c) != v}
        if diff:
            self._record("update", entity_type, new_row, diff, changes)
        return new_row

    # ================================================================== update
    def _update(self, operation: dict, changes: list[Change]) -> dict:
        entity_type = self._entity_type(operation)
        data = self._entity_data(operation)
        key = self._key(entity_type, operation, data)
        row = self.store.get_row(entity_type, key)
        if row is None and self.custom_attributes.handles(entity_type):
            # A dense custom attribute value that was never stored: setting it stores it.
            row = self._store_value_row(entity_type, key, changes)
        if row is None:
            raise errors.not_found(entity_type.id, key)
        concrete = self.model.types[row["__type__"]]
        columns, collections = self._stored_changes(concrete, data)
        for name in data:
            if name == "__entity_type__":
                continue
            attribute = concrete.attributes[name]
            column = attribute.fk if attribute.kind == "reference" else name
            protected = attribute.immutable or attribute.computed or name in concrete.primary_key
            if protected and column in columns and columns[column] != row.get(column):
                raise ApiError(
                    "ImmutableAttributeError",
                    f"{concrete.id}.{name} is immutable and cannot be changed.",
                )
        for name, value in concrete.classifiers.items():
            if name in columns and columns[name] != value:
                raise ApiError(
                    "ImmutableAttributeError", f"{concrete.id}.{name} cannot be changed."
                )
        columns = {c: v for c, v in columns.items() if row.get(c) != v}
        if "value" in columns and self.custom_attributes.handles(concrete):
            self.custom_attributes.check_update(row, columns["value"])
        if columns:
            row = self._write_update(concrete, key, row, columns, changes)
        self._assign_collections(concrete, row, collections, changes)
        out = self.entity_out(concrete, row, _sent(concrete, data))
        return {"action": "update", "data": _without_unset(out, data)}

    def _store_value_row(self, entity_type: EntityType, key: list, changes: list[Change]) -> dict:
        row = dict(zip(entity_type.primary_key, key, strict=True))
        row["__type__"] = entity_type.id
        self.custom_attributes.complete(entity_type, row)
        self.store.insert(entity_type, row)
        self._record("add", entity_type, row, added_changes(entity_type, row), changes)
        return row

    # ================================================================== delete
    def _delete(self, operation: dict, changes: list[Change]) -> dict:
        entity_type = self._entity_type(operation)
        key = self._key(entity_type, operation)
        row = self.store.get_row(entity_type, key)
        if row is None:
            raise errors.not_found(entity_type.id, key)
        doomed = self._cascade(self.model.types[row["__type__"]], row)
        doomed_ids = {doomed_row.get("id") for _type, doomed_row in doomed}
        for doomed_type, doomed_row in doomed:
            if (
                self.custom_attributes.handles(doomed_type)
                and doomed_row.get("entity_id") in doomed_ids
            ):
                continue  # values go with their owner; its "remove" says so
            if doomed_type.id.startswith("__"):
                continue  # a hidden link table's rows are no entities of their own
            removed = removed_changes(doomed_type, doomed_row)
            self._record("remove", doomed_type, doomed_row, removed, changes)
        for doomed_type, doomed_row in reversed(doomed):
            self.store.delete(doomed_type, [doomed_row.get(k) for k in doomed_type.primary_key])
        return {"action": "delete", "data": True}

    def _cascade(self, entity_type: EntityType, row: dict) -> list[tuple[EntityType, dict]]:
        """*row* and everything that cannot exist without it, parents before children."""
        found: list[tuple[EntityType, dict]] = [(entity_type, row)]
        seen = {(entity_type.table, tuple(row.get(k) for k in entity_type.primary_key))}
        index = 0
        while index < len(found):
            owner_type, owner_row = found[index]
            index += 1
            owner_key = owner_row.get(owner_type.primary_key[0])
            for attribute in owner_type.attributes.values():
                if attribute.kind not in ("collection", "mapped") or attribute.computed:
                    continue
                if attribute.link is not None:  # many-to-many: the link rows go, not the items
                    link_type = self.model.types[attribute.link[0]]
                    for link in self.store.rows_by(link_type, attribute.link[1], [owner_key]):
                        marker = (
                            link_type.table,
                            tuple(link.get(k) for k in link_type.primary_key),
                        )
                        if marker not in seen:
                            seen.add(marker)
                            found.append((link_type, link))
                    continue
                if attribute.fk not in OWNING_KEYS:
                    continue
                target = self.model.get(attribute.target or "")
                if target is None:
                    continue
                for child in self.store.rows_by(target, attribute.fk, [owner_key]):
                    child_type = self.model.types[child["__type__"]]
                    marker = (child_type.table, tuple(child.get(k) for k in child_type.primary_key))
                    if marker not in seen:
                        seen.add(marker)
                        found.append((child_type, child))
        return found

    # ================================================================== reset_remote
    def _reset_remote(self, operation: dict, changes: list[Change]) -> dict:
        """Reset one attribute of an entity to its default (``reset_type`` names it).

        Real servers know a fixed list of reset types (``thumbnail`` and others); here any
        mutable attribute can be reset: a reference to nothing, a value to its default.
        """
        entity_type = self._entity_type(operation)
        key = operation.get("entity_key")
        key = [key] if isinstance(key, str) else self._key(entity_type, operation)
        row = self.store.get_row(entity_type, key)
        if row is None:
            raise errors.not_found(entity_type.id, key)
        concrete = self.model.types[row["__type__"]]
        name = operation.get("reset_type") or operation.get("attribute")
        if name == "api_key" and concrete.id == "User":
            return {"action": "reset_remote", "data": actions.reset_api_key(self, row)}
        attribute = self._attribute(concrete, str(name))
        if (
            attribute.immutable
            or attribute.computed
            or attribute.kind not in ("scalar", "reference")
        ):
            raise ApiError("ImmutableAttributeError", f"{concrete.id}.{name} cannot be reset.")
        if attribute.kind == "reference":
            column, value = attribute.fk, None
        else:
            default = None if attribute.default is NOT_SET else attribute.default
            if default == "{uid}":
                default = str(uuid.uuid4())
            column, value = name, to_storage(attribute.data_type, default, str(name))
        if row.get(column) != value:
            row = self._write_update(concrete, key, row, {column: value}, changes)
        return {"action": "reset_remote", "data": self.entity_out(concrete, row)}


def _sent(entity_type: EntityType, data: dict) -> list[str]:
    """Attributes an operation set (references and collections are echoed back too).

    The client drops its local values after a commit and keeps what the reply holds as
    the remote value, so a reply without a just-set ``version`` reference would leave
    the entity pointing at its previous version.
    """
    sent = [
        name
        for name in data
        if name in entity_type.attributes and not entity_type.attributes[name].computed
    ]
    for name, attribute in entity_type.attributes.items():
        if attribute.kind == "reference" and attribute.fk in data and not attribute.computed:
            sent.append(name)  # ``version_id`` was set: the ``version`` reference changed
    return sent


def _without_unset(entity: dict, data: dict) -> dict:
    """Leave out attributes that have no value and were not sent.

    A client keeps an attribute the server did not return as "not loaded" and fetches
    it when read; returning ``None`` for everything would tell it "known to be empty".
    """
    return {k: v for k, v in entity.items() if v is not None or k in data}


def _describe(index: int, total: int, operation: Any) -> str:
    if isinstance(operation, dict):
        what = " ".join(
            str(part) for part in (operation.get("action"), operation.get("entity_type")) if part
        )
    else:
        what = type(operation).__name__
    return f"Operation {index} of {total} ({what or 'no action'}) failed: "
