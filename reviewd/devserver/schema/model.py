"""Turn a schema list (ftrack's format) into the storage model the server works with.

A schema only says *what* attributes exist; storing and joining them needs more:
which SQLite table holds a type (``Shot`` and ``Project`` share the context table so a
``parent`` can point at either), which column holds a reference (``status`` is stored as
``status_id``), and which column on the far side makes a collection (``children`` are
the contexts whose ``parent_id`` is mine).  ftrack's format leaves these implicit, so they
are inferred here by the conventions real schemas follow — the same inference works for
this project's schema and for a real server's schema list saved to a file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

NOT_SET: Any = object()

SCALAR_TYPES = {"string", "integer", "number", "boolean", "object", "variable"}
# Inheritance the schema format cannot express: a sequence is a kind of container, so a
# file's ``container`` may be a SequenceComponent.
KNOWN_SUBTYPES = {"ContainerComponent": ("SequenceComponent",)}
# Attributes a server derives from other data instead of storing, whether or not the
# schema lists them as ``computed`` (real schemas list ``ancestors`` as a plain array
# and ``is_latest_version`` as a plain boolean, and clients treat them accordingly).
DERIVED = {
    "link",
    "ancestors",
    "descendants",
    "is_latest_version",
    "latest_version",
    "time_logged",
    "bid_time_logged_difference",
    "thumbnail_url",
}
# Storage groups a real server keeps in one table: every context (projects and all
# typed contexts) is one hierarchy, every component kind is one table.
CONTEXT_GROUP = {"Context", "Task", "Show"}
VALUE_TABLE = "Variable_Value"
_FK_TARGET = re.compile(r"Foreign key\(s\):\s*([A-Za-z_]+)\.")


class SchemaError(ValueError):
    """The schema list cannot be used (unreadable, or not in ftrack's format)."""


@dataclass
class Attribute:
    """One property of an entity type, with how it is stored."""

    name: str
    kind: str  # "scalar" | "reference" | "collection" | "mapped"
    data_type: str | None = None  # scalar: string/integer/number/boolean/object/variable/datetime
    target: str | None = None  # reference/collection: the referenced type id
    db_name: str = ""
    default: Any = NOT_SET
    computed: bool = False
    immutable: bool = False
    fk: str | None = None  # reference: my column; collection: the column on the target
    polymorphic: bool = False  # collection joined on the target's generic ``parent_id``
    # many-to-many collection through a link type: (link type id, its key to me, its key to the item)
    link: tuple[str, str, str] | None = None


@dataclass
class EntityType:
    """A schema id with its attributes and where its rows live."""

    id: str
    schema: dict
    table: str
    storage: str
    legacy: str
    primary_key: list[str]
    required: list[str]
    immutable: set[str]
    computed: set[str]
    default_projections: list[str]
    attributes: dict[str, Attribute] = field(default_factory=dict)
    classifiers: dict[str, Any] = field(default_factory=dict)
    subtypes: frozenset[str] = frozenset()
    is_context: bool = False

    def attribute(self, name: str) -> Attribute | None:
        return self.attributes.get(name)


class Model:
    """All entity types of a schema list plus the tables they are stored in."""

    def __init__(self, schemas: list[dict]) -> None:
        self.schemas = schemas
        self.types: dict[str, EntityType] = {}
        self.tables: dict[str, dict[str, str]] = {}  # table -> column -> data type
        self._build()

    # ------------------------------------------------------------------ lookups
    def get(self, name: str) -> EntityType | None:
        return self.types.get(name)

    def is_a(self, sub: str, sup: str) -> bool:
        """True when rows of *sub* are rows of *sup* (a Shot is a TypedContext)."""
        sup_type = self.types.get(sup)
        return sup_type is not None and sub in sup_type.subtypes

    def resolve(self, entity_type: EntityType, name: str) -> Attribute | None:
        """*name* on *entity_type*, or on one of its subtypes (``parent.status`` on Context)."""
        attribute = entity_type.attributes.get(name)
        if attribute is not None:
            return attribute
        for sub in sorted(entity_type.subtypes):
            attribute = self.types[sub].attributes.get(name)
            if attribute is not None:
                return attribute
        return None

    # ------------------------------------------------------------------ building
    def _build(self) -> None:
        for schema in self.schemas:
            if not isinstance(schema, dict) or "id" not in schema:
                raise SchemaError("every schema needs an 'id'")
            self.types[schema["id"]] = self._make_type(schema)
        self._assign_subtypes()
        for entity_type in self.types.values():
            self._resolve_references(entity_type)
        for entity_type in list(self.types.values()):
            self._resolve_collections(entity_type)
        self._build_tables()

    def _make_type(self, schema: dict) -> EntityType:
        alias = schema.get("alias_for")
        storage = alias if isinstance(alias, str) else (alias or {}).get("id") or schema["id"]
        if schema["id"].endswith("CustomAttributeValue"):
            # Every owner's custom attribute values are rows of one table, whatever
            # the schema list calls their storage (real lists name only the base one).
            storage = table = VALUE_TABLE
        elif schema["id"] == "Context" or storage in CONTEXT_GROUP:
            table = "context"
        elif schema["id"].endswith("Component") and "system_type" in schema.get("properties", {}):
            table = "component"
        else:
            table = storage
        entity_type = EntityType(
            id=schema["id"],
            schema=schema,
            table=table,
            storage=storage,
            legacy=storage.lower(),
            primary_key=list(schema.get("primary_key") or ["id"]),
            required=list(schema.get("required") or []),
            immutable=set(schema.get("immutable") or []),
            computed=set(schema.get("computed") or []),
            default_projections=list(schema.get("default_projections") or []),
            is_context=table == "context",
        )
        for name, spec in (schema.get("properties") or {}).items():
            entity_type.attributes[name] = self._make_attribute(entity_type, name, spec)
        if isinstance(alias, dict):
            for db_name, value in (alias.get("classifiers") or {}).items():
                entity_type.classifiers[self._attribute_for_db(entity_type, db_name)] = value
        if entity_type.is_context and "context_type" in entity_type.attributes:
            if storage == "Show":
                entity_type.classifiers["context_type"] = "show"
            elif storage == "Task":
                entity_type.classifiers["context_type"] = "task"
        return entity_type

    @staticmethod
    def _attribute_for_db(entity_type: EntityType, db_name: str) -> str:
        for name, attribute in entity_type.attributes.items():
            if attribute.db_name == db_name and attribute.kind == "scalar":
                return name
        return db_name

    @staticmethod
    def _make_attribute(entity_type: EntityType, name: str, spec: dict) -> Attribute:
        data_type = spec.get("type")
        common = {
            "name": name,
            "db_name": spec.get("alias_for") or name,
            "default": spec.get("default", NOT_SET),
            "computed": name in entity_type.computed or name in DERIVED,
            "immutable": name in entity_type.immutable,
        }
        if data_type is None and "$ref" in spec:
            return Attribute(kind="reference", target=spec["$ref"], **common)
        if data_type == "array":
            return Attribute(
                kind="collection", target=(spec.get("items") or {}).get("$ref"), **common
            )
        if data_type == "mapped_array":
            return Attribute(kind="mapped", target=(spec.get("items") or {}).get("$ref"), **common)
        if data_type == "string" and spec.get("format") == "date-time":
            data_type = "datetime"
        if data_type not in SCALAR_TYPES and data_type != "datetime":
            data_type = "variable"
        return Attribute(kind="scalar", data_type=data_type, **common)

    def _assign_subtypes(self) -> None:
        by_table: dict[str, set[str]] = {}
        for entity_type in self.types.values():
            by_table.setdefault(entity_type.table, set()).add(entity_type.id)
        for entity_type in self.types.values():
            alias = entity_type.schema.get("alias_for")
            if entity_type.table == VALUE_TABLE:
                members = set(by_table[VALUE_TABLE])
            elif isinstance(alias, dict):
                members = {entity_type.id}
            elif entity_type.id == "Context" or entity_type.id == entity_type.table.capitalize():
                members = set(by_table[entity_type.table])
            elif isinstance(alias, str):
                members = {
                    other.id
                    for other in self.types.values()
                    if other.storage == entity_type.storage
                }
            else:
                members = {entity_type.id} | {
                    other.id
                    for other in self.types.values()
                    if isinstance(other.schema.get("alias_for"), dict)
                    and other.storage == entity_type.id
                }
            members |= {sub for sub in KNOWN_SUBTYPES.get(entity_type.id, ()) if sub in self.types}
            entity_type.subtypes = frozenset(members)

    def _resolve_references(self, entity_type: EntityType) -> None:
        attributes = entity_type.attributes
        foreign_keys = {
            name: attr
            for name, attr in attributes.items()
            if attr.kind == "scalar"
            and (name.endswith("_id") or "foreign_key" == attr_format(entity_type, name))
        }
        for name, attribute in attributes.items():
            if attribute.kind != "reference":
                continue
            bare = name.lstrip("_")
            candidates = [f"{name}_id", f"{bare}_id", f"{attribute.db_name}_id"]
            chosen = next((c for c in candidates if c in foreign_keys), None)
            if chosen is None:
                targeting = [
                    fk_name
                    for fk_name in foreign_keys
                    if self._fk_targets(entity_type, fk_name, attribute.target, exact=True)
                ] or [
                    fk_name
                    for fk_name in foreign_keys
                    if self._fk_targets(entity_type, fk_name, attribute.target, exact=False)
                ]
                if len(targeting) > 1:
                    targeting = [fk_name for fk_name in targeting if bare in fk_name] or targeting
                if len(targeting) == 1:
                    chosen = targeting[0]
            if chosen is None and not attribute.computed:
                chosen = f"__{name}_id"  # a hidden column keeps the link storable
            attribute.fk = chosen

    def _fk_targets(
        self, entity_type: EntityType, fk_name: str, target: str | None, exact: bool
    ) -> bool:
        spec = (entity_type.schema.get("properties") or {}).get(fk_name) or {}
        match = _FK_TARGET.search(spec.get("description") or "")
        if not match or target is None:
            return False
        named = match.group(1)
        if exact:
            return named == target
        return self.is_a(target, named) or self.is_a(named, target)

    def _resolve_collections(self, entity_type: EntityType) -> None:
        for attribute in entity_type.attributes.values():
            if attribute.kind not in ("collection", "mapped") or attribute.computed:
                continue
            target = self.types.get(attribute.target or "")
            if target is None:
                continue
            candidates = [
                ref
                for ref in target.attributes.values()
                if ref.kind == "reference"
                and ref.fk
                and not ref.computed
                and ref.target in self.types
                and self.is_a(entity_type.id, ref.target)
            ]
            if not candidates:
                # A sequence's members are components pointing at it as their container:
                # both are rows of one table, which the alias classifiers do not relate.
                candidates = [
                    ref
                    for ref in target.attributes.values()
                    if ref.kind == "reference"
                    and ref.fk
                    and ref.target in self.types
                    and self.types[ref.target].table == entity_type.table
                    and entity_type.table != entity_type.id
                ]
            if len(candidates) > 1:
                # Direction by name: incoming links point *to* me, outgoing come *from* me.
                for prefix, wanted in (("incoming", "to"), ("outgoing", "from")):
                    if attribute.name.startswith(prefix):
                        candidates = [ref for ref in candidates if ref.name == wanted] or candidates
            if len(candidates) > 1:
                preferred = [ref for ref in candidates if ref.name == "parent"]
                if attribute.name == "replies" or not preferred:
                    preferred = [
                        ref for ref in candidates if ref.target == entity_type.id
                    ] or candidates
                candidates = preferred[:1] if len(preferred) >= 1 else candidates
            scalar_keys = [
                name
                for name, spec in target.attributes.items()
                if spec.kind == "scalar"
                and self._fk_targets(target, name, entity_type.id, exact=True)
            ]
            if len(candidates) == 1:
                attribute.fk = candidates[0].fk
            elif not candidates and len(scalar_keys) == 1:
                # Only a foreign key column names the owner (a real schema's Schema has
                # ``project_schema_id`` but no ``project_schema`` reference).
                attribute.fk = scalar_keys[0]
            elif "parent_id" in target.attributes:
                attribute.fk = "parent_id"
                attribute.polymorphic = True
            elif "entity_id" in target.attributes:
                # Custom attribute values name their owner by id alone, whatever its type.
                attribute.fk = "entity_id"
            else:
                attribute.link = self._find_link(entity_type, target) or self._hidden_link(
                    entity_type, attribute, target
                )

    def _hidden_link(
        self, owner: EntityType, attribute: Attribute, item: EntityType
    ) -> tuple[str, str, str] | None:
        """A private link table for a many-to-many collection the schema gives no type for.

        A real schema list declares ``TypedContext.scopes`` but not the table behind it;
        a hidden ``__<table>_<attribute>`` type (not served by ``query_schemas``) stores
        the pairs, shared by every type of the owner's table.
        """
        if attribute.kind != "collection" or len(owner.primary_key) != 1:
            return None
        if len(item.primary_key) != 1:
            return None
        link_id = f"__{owner.table}_{attribute.name}"
        if link_id not in self.types:
            link = EntityType(
                id=link_id,
                schema={"id": link_id},
                table=link_id,
                storage=link_id,
                legacy=link_id,
                primary_key=["owner_id", "item_id"],
                required=[],
                immutable=set(),
                computed=set(),
                default_projections=[],
                subtypes=frozenset({link_id}),
            )
            for column in ("owner_id", "item_id"):
                link.attributes[column] = Attribute(name=column, kind="scalar", data_type="string")
            self.types[link_id] = link
        return link_id, "owner_id", "item_id"

    def _find_link(self, owner: EntityType, item: EntityType) -> tuple[str, str, str] | None:
        """A link type whose primary key joins *owner* to *item* (WorkflowSchemaStatus)."""
        for link in self.types.values():
            if len(link.primary_key) != 2:
                continue
            first, second = link.primary_key
            for mine, theirs in ((first, second), (second, first)):
                if self._key_targets(link, mine, owner) and self._key_targets(link, theirs, item):
                    return link.id, mine, theirs
        return None

    def _key_targets(self, link: EntityType, key: str, entity_type: EntityType) -> bool:
        for attribute in link.attributes.values():
            if attribute.kind == "reference" and attribute.fk == key:
                return attribute.target is not None and (
                    self.is_a(entity_type.id, attribute.target)
                    or attribute.target == entity_type.id
                )
        return self._fk_targets(link, key, entity_type.id, exact=True)

    def _build_tables(self) -> None:
        for entity_type in self.types.values():
            columns = self.tables.setdefault(entity_type.table, {"__type__": "string"})
            for attribute in entity_type.attributes.values():
                if attribute.kind == "scalar" and not attribute.computed:
                    columns.setdefault(attribute.name, attribute.data_type or "variable")
                elif (
                    attribute.kind == "reference" and attribute.fk and attribute.fk.startswith("__")
                ):
                    columns.setdefault(attribute.fk, "string")
            for key in entity_type.primary_key:
                columns.setdefault(key, "string")


def attr_format(entity_type: EntityType, name: str) -> str | None:
    spec = (entity_type.schema.get("properties") or {}).get(name) or {}
    return spec.get("format")


def build_model(schemas: list[dict]) -> Model:
    """Build the storage model for *schemas*; raises :class:`SchemaError` if unusable."""
    if not isinstance(schemas, list):
        raise SchemaError("a schema list must be a JSON list")
    return Model(schemas)
