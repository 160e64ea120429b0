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

    __slots__ = ("name", "kind", "mutable", "computed", "default_value", "target_type",
                 "key_attribute", "value_attribute", "data_type", "format")

    def __init__(self, name: str, spec: dict[str, Any] | None = None, *, mutable: bool = True,
                 computed: bool = False) -> None:
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

    def __init__(self, attributes: list[Attribute]) -> None:
        self._by_name = {attribute.name: attribute for attribute in attributes}

    def get(self, name: str) -> Attribute | None:
        return self._by_name.get(name)

    def keys(self) -> list[str]:
        return list(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[Attribute]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)


class Collection(MutableSequence[Any]):
    """A live list of entities held by one attribute of an owner entity.

    Reads see the owner's current value; every change writes a new list back through
    the owner's ``__setitem__``, so it is recorded as one update with old and new value.
    """

    __slots__ = ("entity", "attribute_name")

    def __init__(self, entity: Any, attribute_name: str) -> None:
        self.entity = entity
        self.attribute_name = attribute_name

    def _items(self) -> list[Any]:
        items: list[Any] = self.entity._current_list(self.attribute_name)
        return items

    def __getitem__(self, index: Any) -> Any:
        return self._items()[index]

    def __len__(self) -> int:
        return len(self._items())

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._items()))

    def __contains__(self, value: Any) -> bool:
        return any(item is value for item in self._items())

    def _replace(self, items: list[Any]) -> None:
        self.entity[self.attribute_name] = items

    def __setitem__(self, index: Any, value: Any) -> None:
        items = list(self._items())
        items[index] = value
        self._replace(items)

    def __delitem__(self, index: Any) -> None:
        items = list(self._items())
        del items[index]
        self._replace(items)

    def insert(self, index: int, value: Any) -> None:
        items = list(self._items())
        if any(item is value for item in items):
            raise ValueError(f"{value!r} is already in {self.attribute_name!r}.")
        items.insert(index, value)
        self._replace(items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Collection):
            other = other._items()
        return isinstance(other, list) and len(other) == len(self) and all(
            a is b for a, b in zip(self._items(), other, strict=False)
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, so unhashable, like list

    def __repr__(self) -> str:
        return f"<Collection {self.attribute_name} {self._items()!r}>"


class KeyValueMappedCollectionProxy(MutableMapping[str, Any]):
    """A mapped collection (``metadata``) seen as a mapping of key → value.

    Setting a new key creates the item entity (for example a ``Metadata`` with the
    owner as parent) and appends it to the owner's collection; setting an existing key
    updates the item; deleting a key deletes the item.
    """

    def __init__(self, entity: Any, attribute: Attribute) -> None:
        self.entity = entity
        self.attribute = attribute
        self.collection = Collection(entity, attribute.name)

    def _find(self, key: Any) -> Any:
        key_name = self.attribute.key_attribute
        for item in self.collection._items():
            if item[key_name] == key:
                return item
        return None

    def __getitem__(self, key: Any) -> Any:
        item = self._find(key)
        if item is None:
            raise KeyError(key)
        return item[self.attribute.value_attribute]

    def __setitem__(self, key: Any, value: Any) -> None:
        item = self._find(key)
        if item is not None:
            item[self.attribute.value_attribute] = value
            return
        session = self.entity.session
        data = {self.attribute.key_attribute: key, self.attribute.value_attribute: value}
        item_type = session.types.get(self.attribute.target_type)
        if item_type is not None:
            properties = item_type._schema.get("properties", {})
            if "parent_id" in properties and "parent_type" in properties:
                data["parent_id"] = self.entity.primary_key_values()[0]
                data["parent_type"] = self.entity.entity_type
        item = session.create(self.attribute.target_type, data)
        self.collection.append(item)

    def __delitem__(self, key: Any) -> None:
        item = self._find(key)
        if item is None:
            raise KeyError(key)
        self.collection.remove(item)
        self.entity.session.delete(item)

    def __iter__(self) -> Iterator[Any]:
        key_name = self.attribute.key_attribute
        return iter([item[key_name] for item in self.collection._items()])

    def __len__(self) -> int:
        return len(self.collection)

    def __repr__(self) -> str:
        return f"<KeyValueMappedCollectionProxy {dict(self.items())!r}>"


# ftrack_api's attribute class names, for code that checks ``isinstance`` or reads ``kind``.
ScalarAttribute = ReferenceAttribute = CollectionAttribute = Attribute
KeyValueMappedCollectionAttribute = CustomAttributeCollectionAttribute = Attribute
