"""Attribute descriptions and the live collection wrappers entities hand out.

Entities keep their values in two plain dicts (remote and local) so that merging a large
query result costs one dict per entity.  The objects here exist for introspection
(``entity.attributes``) and for values that must stay live: a collection you can append
to, a mapped collection (``metadata``) you can index by key.  They are built lazily, per
entity type, the first time something asks for them.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping, MutableSequence
from typing import Any

from reviewd.api.symbol import NOT_SET

SCALAR = "scalar"
REFERENCE = "reference"
COLLECTION = "collection"
MAPPED = "mapped"


class Attribute:
    """One attribute of an entity type, as the schema defines it."""

    __slots__ = (
        "name",
        "kind",
        "mutable",
        "computed",
        "default_value",
        "target_type",
        "key_attribute",
        "value_attribute",
        "data_type",
        "format",
    )

    def __init__(
        self,
        name: str,
        spec: dict[str, Any] | None = None,
        *,
        mutable: bool = True,
        computed: bool = False,
    ) -> None:
        spec = spec if isinstance(spec, dict) else {}
        self.name = name
        self.mutable = mutable
        self.computed = computed
        self.default_value = spec.get("default", NOT_SET)
        self.data_type = spec.get("type")
        self.format = spec.get("format")
        self.key_attribute = self.value_attribute = None
        if "$ref" in spec:
            self.kind = REFERENCE
            self.target_type = spec["$ref"]
        elif spec.get("type") == "array" and "items" in spec:
            self.kind = COLLECTION
            self.target_type = spec["items"].get("$ref")
        elif spec.get("type") == "mapped_array":
            self.kind = MAPPED
            self.target_type = spec.get("items", {}).get("$ref")
            key_values = spec.get("key_value_attributes") or {}
            self.key_attribute = key_values.get("key", "key")
            self.value_attribute = key_values.get("value", "value")
        else:
            self.kind = SCALAR
            self.target_type = None

    # ftrack-familiar accessors -------------------------------------------------
    def get_local_value(self, entity: Any) -> Any:
        return entity._local.get(self.name, NOT_SET)

    def get_remote_value(self, entity: Any) -> Any:
        return entity._remote.get(self.name, NOT_SET)

    def get_value(self, entity: Any) -> Any:
        return entity[self.name]

    def set_local_value(self, entity: Any, value: Any) -> None:
        entity[self.name] = value

    def set_remote_value(self, entity: Any, value: Any) -> None:
        entity._remote[self.name] = value

    def is_modified(self, entity: Any) -> bool:
        return self.name in entity._local

    def is_set(self, entity: Any) -> bool:
        return self.name in entity._local or self.name in entity._remote

    def __repr__(self) -> str:
        return f"<{self.kind} attribute {self.name!r}>"


class Attributes:
    """The attributes of one entity type, by name, in schema order."""

    def __init__(self, attributes: list[Attribute] | None = None) -> None:
        self._by_name = {attribute.name: attribute for attribute in attributes or ()}

    def add(self, attribute: Attribute) -> None:
        """Add *attribute*; a second attribute of the same name is refused."""
        if attribute.name in self._by_name:
            from reviewd.api.exception import NotUniqueError

            raise NotUniqueError(f"Attribute {attribute.name!r} is already defined.")
        self._by_name[attribute.name] = attribute

    def remove(self, attribute: Attribute) -> None:
        """Remove *attribute*; ``KeyError`` when it is not here."""
        del self._by_name[attribute.name]

    def get(self, name: str) -> Attribute | None:
        return self._by_name.get(name)

    def keys(self) -> list[str]:
        return list(self._by_name)

    def __contains__(self, item: object) -> bool:
        name = item.name if isinstance(item, Attribute) else item
        return name in self._by_name

    def __iter__(self) -> Iterator[Attribute]:
        return iter(list(self._by_name.values()))

    def __len__(self) -> int:
        return len(self._by_name)


class Collection(MutableSequence[Any]):
    """A list of entities held by one attribute of an owner entity.

    Normally a live view: reads see the owner's current value and every change
    writes a new list back through the owner's ``__setitem__``, so it is recorded
    as one update with old and new value.  Built with *data* (ftrack_api's
    signature) it holds that list itself instead, records an update operation on
    each change, and is what a copy of a collection becomes: changing a copy never
    changes the entity.  An immutable collection refuses changes; an entity
    already present (same identity) cannot be added twice.
    """

    __slots__ = ("entity", "attribute_name", "_attribute", "_data", "mutable")

    def __init__(self, entity: Any, attribute: Any, mutable: bool = True, data: Any = None) -> None:
        self.entity = entity
        if isinstance(attribute, str):
            self.attribute_name, self._attribute = attribute, None
        else:
            self.attribute_name, self._attribute = attribute.name, attribute
        self.mutable = mutable
        self._data = None if data is None else list(data)

    @property
    def attribute(self) -> Any:
        if self._attribute is None:
            self._attribute = self.entity._attributes().get(self.attribute_name)
        return self._attribute

    @attribute.setter
    def attribute(self, value: Any) -> None:
        self._attribute = value
        self.attribute_name = value.name

    def _items(self) -> list[Any]:
        if self._data is not None:
            return self._data
        answer: list[Any] = self.entity._current_list(self.attribute_name)
        return answer

    def __getitem__(self, index: Any) -> Any:
        return self._items()[index]

    def __len__(self) -> int:
        return len(self._items())

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._items()))

    def __contains__(self, value: Any) -> bool:
        return any(item is value for item in self._items())

    def __copy__(self) -> Collection:
        return Collection(
            self.entity,
            self.attribute if self._attribute is not None else self.attribute_name,
            self.mutable,
            list(self._items()),
        )

    def __ftrack_wire__(self) -> list[Any]:
        """Encoded as the list of its entities (each then written as a reference)."""
        return list(self)

    def _check_mutable(self) -> None:
        if not self.mutable:
            from reviewd.api.exception import ImmutableCollectionError

            raise ImmutableCollectionError(f"The collection {self.attribute_name!r} is immutable.")

    def _check_unique(self, items: list[Any], value: Any, skip: int | None = None) -> None:
        from reviewd.api import inspection
        from reviewd.api.exception import DuplicateItemInCollectionError

        wanted = _identity(inspection, value)
        for position, item in enumerate(items):
            if position != skip and (item is value or _identity(inspection, item) == wanted):
                raise DuplicateItemInCollectionError(
                    f"{value!r} is already in {self.attribute_name!r}."
                )

    def _replace(self, items: list[Any]) -> None:
        if self._data is None:
            self.entity[self.attribute_name] = items
            return
        old = Collection(self.entity, self.attribute_name, self.mutable, list(self._data))
        self._data[:] = items
        session = self.entity.session
        if getattr(session, "record_operations", False):
            from reviewd.api.inspection import primary_key
            from reviewd.api.operation import UpdateEntityOperation

            session.recorded_operations.push(
                UpdateEntityOperation(
                    self.entity.entity_type,
                    primary_key(self.entity),
                    self.attribute_name,
                    old,
                    self,
                )
            )

    def __setitem__(self, index: Any, value: Any) -> None:
        self._check_mutable()
        items = list(self._items())
        if not isinstance(index, slice):
            self._check_unique(items, value, skip=index if index >= 0 else len(items) + index)
        items[index] = value
        self._replace(items)

    def __delitem__(self, index: Any) -> None:
        self._check_mutable()
        items = list(self._items())
        del items[index]
        self._replace(items)

    def insert(self, index: int, value: Any) -> None:
        self._check_mutable()
        items = list(self._items())
        self._check_unique(items, value)
        items.insert(index, value)
        self._replace(items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Collection):
            other = other._items()
        elif not isinstance(other, list):
            return False
        mine = self._items()
        if len(mine) != len(other):
            return False
        from reviewd.api import inspection

        return all(
            a is b or _identity(inspection, a) == _identity(inspection, b)
            for a, b in zip(mine, other, strict=False)
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, so unhashable, like list

    def __repr__(self) -> str:
        return f"<Collection {self.attribute_name} {self._items()!r}>"


def _identity(inspection: Any, item: Any) -> Any:
    try:
        return inspection.identity(item)
    except (KeyError, TypeError, AttributeError):
        return id(item)


class KeyValueMappedCollectionProxy(MutableMapping[str, Any]):
    """A mapped collection (``metadata``) seen as a mapping of key → value.

    Setting a new key creates the item entity (for example a ``Metadata`` with the
    owner as parent) and appends it to the owner's collection; setting an existing key
    updates the item; deleting a key deletes the item.
    """

    def __init__(
        self, entity: Any, attribute: Attribute, collection: Collection | None = None
    ) -> None:
        self.entity = entity
        self._key_name = attribute.key_attribute
        self._value_name = attribute.value_attribute
        self._target_type = attribute.target_type
        self.collection = collection if collection is not None else Collection(entity, attribute)

    @property
    def attribute(self) -> Any:
        """The attribute of the underlying collection."""
        return self.collection.attribute

    @attribute.setter
    def attribute(self, value: Any) -> None:
        self.collection.attribute = value

    @property
    def mutable(self) -> bool:
        return self.collection.mutable

    @mutable.setter
    def mutable(self, value: bool) -> None:
        self.collection.mutable = value

    def __copy__(self) -> KeyValueMappedCollectionProxy:
        """A proxy over a detached copy: changing it never changes the entity."""
        copied = KeyValueMappedCollectionProxy.__new__(KeyValueMappedCollectionProxy)
        copied.entity = self.entity
        copied._key_name, copied._value_name = self._key_name, self._value_name
        copied._target_type = self._target_type
        copied.collection = self.collection.__copy__()
        return copied

    def _find(self, key: Any) -> Any:
        key_name = self._key_name
        for item in self.collection._items():
            if item[key_name] == key:
                return item
        return None

    def __getitem__(self, key: Any) -> Any:
        item = self._find(key)
        if item is None:
            raise KeyError(key)
        return item[self._value_name]

    def __setitem__(self, key: Any, value: Any) -> None:
        item = self._find(key)
        if item is not None:
            item[self._value_name] = value
            return
        session = self.entity.session
        data = {self._key_name: key, self._value_name: value}
        item_type = session.types.get(self._target_type)
        if item_type is not None and "configuration_id" in item_type.primary_key_attributes:
            # A custom attribute value: it exists only for a configured key.
            configuration = _custom_attribute_configuration(self.entity, key)
            data = {
                "configuration_id": configuration["id"],
                "entity_id": self.entity.primary_key_values()[0],
                self._key_name: key,
                self._value_name: value,
            }
        elif item_type is not None:
            properties = item_type._schema.get("properties", {})
            if "parent_id" in properties and "parent_type" in properties:
                data["parent_id"] = self.entity.primary_key_values()[0]
                data["parent_type"] = self.entity.entity_type
        item = session.create(self._target_type, data)
        self.collection.append(item)

    def __delitem__(self, key: Any) -> None:
        item = self._find(key)
        if item is None:
            raise KeyError(key)
        self.collection.remove(item)
        self.entity.session.delete(item)

    def __iter__(self) -> Iterator[Any]:
        key_name = self._key_name
        return iter([item[key_name] for item in self.collection._items()])

    def __len__(self) -> int:
        return len(self.collection)

    # ftrack_api returns a list here (code indexes it), where Mapping promises a KeysView.
    def keys(self) -> list[Any]:  # type: ignore[override]
        return list(iter(self))

    def __repr__(self) -> str:
        return f"<KeyValueMappedCollectionProxy {dict(self.items())!r}>"


# ftrack_api's attribute class names, for code that checks ``isinstance`` or reads ``kind``.
ScalarAttribute = ReferenceAttribute = CollectionAttribute = Attribute
KeyValueMappedCollectionAttribute = CustomAttributeCollectionAttribute = Attribute


def _custom_attribute_configuration(entity: Any, key: str) -> Any:
    """The ``CustomAttributeConfiguration`` of *key* for *entity*'s type; ``KeyError``
    when there is none (a value cannot be written for an unconfigured key).

    Hierarchical configurations apply everywhere; contexts (entities with an object
    type) use configurations of entity type ``task`` for all object types or for
    theirs; projects ``show``; lists ``list``; others their type name in lower case.
    """
    found = entity.session.query(
        "select id, entity_type, object_type_id, is_hierarchical from "
        f'CustomAttributeConfiguration where key is "{key}"'
    ).all()
    for configuration in found:
        if configuration["is_hierarchical"]:  # applies at every level
            return configuration
    if "object_type_id" in entity.keys():
        object_type_id = entity["object_type_id"]
        for configuration in found:
            if configuration["entity_type"] == "task" and configuration["object_type_id"] in (
                None,
                object_type_id,
            ):
                return configuration
    else:
        wanted = {"Project": "show"}.get(entity.entity_type, entity.entity_type.lower())
        if entity.entity_type.endswith("List"):
            wanted = "list"
        for configuration in found:
            if configuration["entity_type"] == wanted:
                return configuration
    raise KeyError(f"{entity.entity_type} has no custom attribute {key!r}.")
