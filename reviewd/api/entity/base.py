"""The entity base class: an ftrack object seen as a mapping of attribute → value.

Each entity keeps two plain dicts: ``_remote`` (values as the server last sent them) and
``_local`` (values changed here and not yet committed).  A read looks in local, then
remote; a value that is in neither was not loaded and is fetched through the session
(in bulk, see :mod:`reviewd.api.populate`) or reads as ``NOT_SET``
when auto-population is off.  Merging query results writes ``_remote`` directly, which
is what keeps decoding 10,000 entities cheap: no per-attribute objects on that path.

The session owns one object per (entity type, primary key) — its identity map — so two
reads of the same server entity give the same Python object.  That object is shared by
every thread using the session: ``_local`` holds the pending values of all threads (the
latest one per attribute), while which thread set which value, and so what each thread's
commit or rollback does to them, is the session's bookkeeping (see :mod:`reviewd.api.unit_of_work`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from reviewd.api.attribute import (
    COLLECTION,
    MAPPED,
    REFERENCE,
    Attribute,
    Attributes,
    Collection,
    KeyValueMappedCollectionProxy,
)
from reviewd.api.exception import ImmutableAttributeError, InvalidStateError
from reviewd.api.operation import UpdateEntityOperation
from reviewd.api.symbol import CREATED, DELETED, MODIFIED, NOT_SET, Symbol

if TYPE_CHECKING:  # annotations only: the session module imports this one
    from reviewd.api.session import Session

#: Shared, never-mutated local-values dict of an entity without local changes.
_NO_LOCAL: dict[str, Any] = {}


class Entity:
    """Base class of every entity type built from the server's schemas.

    Class attributes set per type: ``entity_type``, ``primary_key_attributes``,
    ``default_projections`` and ``_schema`` (the raw schema).
    """

    __slots__ = ("_session", "_remote", "_local", "_state", "_group", "__weakref__")

    entity_type: str = "Entity"
    primary_key_attributes: tuple[str, ...] = ("id",)
    default_projections: tuple[str, ...] = ()
    _schema: dict[str, Any] = {}
    _attributes_cache: Attributes | None = None

    def __init__(
        self, session: Any, data: dict[str, Any] | None = None, reconstructing: bool = False
    ) -> None:
        """Create a new entity through *session* (ftrack-compatible signature).

        Prefer ``session.create(type, data)``; with *reconstructing* the values are
        taken as remote ones (as from the server) instead of recorded as a creation.
        """
        self._session = session
        self._remote = {}
        self._local = _NO_LOCAL
        self._state: Symbol | None = None
        self._group = None
        if reconstructing:
            self._remote.update(data or {})
        else:
            session._initialise_created(self, data or {})

    # -------------------------------------------------------------- type information
    @classmethod
    def _attributes(cls) -> Attributes:
        attributes = cls.__dict__.get("_attributes_cache")
        if attributes is None:
            schema = cls._schema
            immutable = set(schema.get("immutable", ()))
            computed = set(schema.get("computed", ()))
            attributes = Attributes(
                [
                    Attribute(
                        name,
                        spec,
                        mutable=name not in immutable and name not in computed,
                        computed=name in computed,
                    )
                    for name, spec in schema.get("properties", {}).items()
                    # restricted projections cannot be selected by clients (ftrack_api too)
                    if not spec.get("restricted_projection")
                ]
            )
            cls._attributes_cache = attributes
        return attributes

    @property
    def attributes(self) -> Attributes:
        """Introspection of this type's attributes (built on first use)."""
        return self._attributes()

    @property
    def session(self) -> Session:
        session: Session = self._session
        return session

    def primary_key_values(self) -> list[Any]:
        """The primary key values, in schema order (local values win)."""
        local, remote = self._local, self._remote
        return [
            local.get(name, remote.get(name, NOT_SET)) if local else remote.get(name, NOT_SET)
            for name in self.primary_key_attributes
        ]

    # -------------------------------------------------------------- mapping interface
    def __getitem__(self, name: str) -> Any:
        local = self._local
        if local and name in local:
            value = local[name]
        else:
            value = self._remote.get(name, NOT_SET)
            if value is NOT_SET:
                return self._missing(name)
        if value.__class__ is list:
            return self._wrap(name)
        return value

    def _missing(self, name: str) -> Any:
        """Fetch an unloaded attribute (auto-populate) or answer NOT_SET."""
        attribute = self._attributes().get(name)
        if attribute is None:
            raise KeyError(f"{self.entity_type} has no attribute {name!r}.")
        value = self._fetch(name)
        if value is not NOT_SET:
            return self._wrap(name) if value.__class__ is list else value
        if attribute.kind in (COLLECTION, MAPPED) and self._state is CREATED:
            return self._wrap(name)
        return NOT_SET

    def _fetch(self, name: str) -> Any:
        """The raw remote value of *name*, loading it from caches or the server if allowed.

        New and deleted entities have nothing on the server to load.
        """
        if self._state is CREATED or self._state is DELETED:
            return NOT_SET
        session = self._session
        if not (session._lower_caches and session._load_from_lower(self, name)):
            session._auto_populate(self, name)
        return self._remote.get(name, NOT_SET)

    def _wrap(self, name: str) -> Any:
        attribute = self._attributes().get(name)
        if attribute is None or attribute.kind == COLLECTION:
            items = self._current_list(name)
            if items and items[0]._group is None:
                for item in items:  # members of a collection populate together
                    if item._group is None:
                        item._group = items
            return Collection(self, name)
        if attribute.kind == MAPPED:
            return KeyValueMappedCollectionProxy(self, attribute)
        # A scalar whose value happens to be a list (JSON attributes such as ``link``).
        local = self._local
        return local[name] if local and name in local else self._remote.get(name, NOT_SET)

    def _current_list(self, name: str) -> list[Any]:
        local = self._local
        if local and name in local:
            value = local[name]
        else:
            value = self._remote.get(name, NOT_SET)
            if value is NOT_SET:
                value = self._fetch(name)
        return value if isinstance(value, list) else []

    def __setitem__(self, name: str, value: Any) -> None:
        attribute = self._attributes().get(name)
        if attribute is None:
            raise KeyError(f"{self.entity_type} has no attribute {name!r}.")
        if self._state is DELETED:
            raise InvalidStateError(f"Cannot set {name!r} on deleted {self!r}.")
        if not attribute.mutable and self._state is not CREATED:
            raise ImmutableAttributeError(
                f"Cannot set immutable attribute {self.entity_type}.{name}."
            )
        if attribute.kind in (COLLECTION, MAPPED):
            if isinstance(value, (Collection, KeyValueMappedCollectionProxy)):
                value = list(
                    value._items() if isinstance(value, Collection) else value.collection._items()
                )
            elif attribute.kind == MAPPED and isinstance(value, dict):
                proxy = KeyValueMappedCollectionProxy(self, attribute)
                for key, item in value.items():
                    proxy[key] = item
                return
            value = list(value)
            for item in value:
                if not isinstance(item, Entity):
                    raise TypeError(
                        f"{self.entity_type}.{name} holds entities, not {type(item).__name__}."
                    )
        elif attribute.kind == REFERENCE and value is not None and not isinstance(value, Entity):
            raise TypeError(
                f"{self.entity_type}.{name} references an entity, not {type(value).__name__}."
            )
        self._session._set_local(self, name, value)

    def __delitem__(self, name: str) -> None:
        """Forget the value (local and remote) so that the next read fetches it again."""
        if self._attributes().get(name) is None:
            raise KeyError(f"{self.entity_type} has no attribute {name!r}.")
        if self._local:
            self._local.pop(name, None)
        self._remote.pop(name, None)

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default

    def keys(self) -> list[str]:
        return self._attributes().keys()

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._attributes())

    def __contains__(self, name: object) -> bool:
        return name in self._attributes()

    def values(self) -> list[Any]:
        return [self[name] for name in self.keys()]

    def items(self) -> list[tuple[str, Any]]:
        return [(name, self[name]) for name in self.keys()]

    def update(self, data: dict[str, Any] | None = None, **kwargs: Any) -> None:
        for name, value in dict(data or {}, **kwargs).items():
            self[name] = value

    def clear(self) -> None:
        """Forget every loaded and local value (they are fetched again when read)."""
        self._remote = {}
        self._local = _NO_LOCAL

    # -------------------------------------------------------------- wire and repr
    def __ftrack_wire__(self) -> dict[str, Any]:
        """The reference form of this entity: its type and primary key."""
        data = {"__entity_type__": self.entity_type}
        for name, value in zip(
            self.primary_key_attributes, self.primary_key_values(), strict=False
        ):
            data[name] = value
        return data

    def __repr__(self) -> str:
        key = ",".join(str(v) for v in self.primary_key_values())
        state = f" {self._state}" if self._state is not None else ""
        return f"<{self.entity_type}({key}){state}>"

    def __str__(self) -> str:
        return self.__repr__()

    # Equal when they stand for the same server entity (type and primary key), as in
    # ftrack_api: one session's identity map makes that the same object, but entities
    # of two sessions compare equal too.  Hashing stays by object, as ftrack_api's.
    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Entity):
            return NotImplemented
        return (
            self.entity_type == other.entity_type
            and self.primary_key_values() == other.primary_key_values()
        )

    def __ne__(self, other: object) -> bool:
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    __hash__ = object.__hash__


# ------------------------------------------------------------------ inspection helpers
def identity(entity: Entity) -> tuple[Any, ...]:
    """``(entity_type, (primary key values...))`` — what the identity map is keyed by."""
    return (entity.entity_type, tuple(entity.primary_key_values()))


def primary_key(entity: Entity) -> dict[str, Any]:
    """Ordered mapping of primary key attribute → value."""
    return dict(zip(entity.primary_key_attributes, entity.primary_key_values(), strict=False))


def state(entity: Entity) -> Any:
    """``CREATED``, ``MODIFIED``, ``DELETED`` or ``None`` (in sync with the server)."""
    return entity._state


def creation_values(
    cls: type[Entity], data: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(values, mapped)`` for a new entity of *cls* created with *data*.

    *values* holds the schema defaults (``"{uid}"`` becomes a fresh UUID) overlaid with
    *data*; mapped collections given as mappings (``metadata={"k": "v"}``) are returned
    apart in *mapped*, to be set item by item once the entity exists.  Unknown
    attributes raise ``KeyError``, a missing primary key ``ValueError``.
    """
    attributes = cls._attributes()
    values: dict[str, Any] = {}
    attribute: Attribute | None
    for attribute in attributes:
        default = attribute.default_value
        if default is not NOT_SET and attribute.name not in data:
            if default == "{uid}":
                default = _new_id()
            values[attribute.name] = default
    for name, value in data.items():
        attribute = attributes.get(name)
        if attribute is None:
            raise KeyError(f"{cls.entity_type} has no attribute {name!r}.")
        if attribute.kind in (COLLECTION, MAPPED):
            value = list(value) if not isinstance(value, Mapping) else value
        values[name] = value
    mapped = {
        name: values.pop(name)
        for name in list(values)
        if (attribute := attributes.get(name)) is not None
        and attribute.kind == MAPPED
        and isinstance(values[name], Mapping)
    }
    missing = [name for name in cls.primary_key_attributes if values.get(name) is None]
    if missing:
        raise ValueError(
            f"Cannot create {cls.entity_type} without primary key value(s) {', '.join(missing)}."
        )
    return values, mapped


def _new_id() -> str:
    import uuid  # imported on first create, not at start-up

    return str(uuid.uuid4())


def record_update(
    session: Any, entity: Entity, name: str, old: Any, new: Any
) -> UpdateEntityOperation:
    """Build the update operation for a change of *name* on *entity*."""
    return UpdateEntityOperation(entity.entity_type, primary_key(entity), name, old, new)


__all__ = ["Entity", "identity", "primary_key", "state", "CREATED", "MODIFIED", "DELETED"]
