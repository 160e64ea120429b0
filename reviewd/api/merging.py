"""Merging server entities into the session's identity map (the decoding hot path).

Query results are merged by a ``json.loads`` object hook (:meth:`Merger.object_hook`)
while the JSON is parsed: each entity's remote-values dict is the parsed dict itself, no
per-attribute objects, no copies, no second traversal.  The C scanner hands over each
object after its children, so nested entities are already live when their parent
arrives; one Python call per JSON object is the whole cost.

The identity map is the memory cache layer's dict, keyed by ``(entity_type, *primary
key)``, so that every read of one server entity gives the same object.  Persistent
lower cache layers (if configured) get each merged entity written through, keyed by
``cache_key_maker.key((entity_type, [primary key values]))``.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from reviewd.api.entity.base import _NO_LOCAL, Entity
from reviewd.api.exception import UnrecognisedEntityTypeError, redact
from reviewd.api.transport import decode_typed

logger = logging.getLogger("reviewd.api.session")

#: Bodies larger than this are parsed with the cyclic garbage collector paused.
_PAUSE_GC_ABOVE = 1 << 16


def unknown_type(entity_type: Any) -> UnrecognisedEntityTypeError:
    """The error for an entity whose ``__entity_type__`` names no known type."""
    if isinstance(entity_type, str):
        return UnrecognisedEntityTypeError(
            redact(
                f"The server sent an entity of unknown type {entity_type!r} (its "
                "__entity_type__ names no type in the server's schemas)."
            )
        )
    return UnrecognisedEntityTypeError(
        redact(
            f"The server sent an entity whose __entity_type__ is not a type name but the "
            f"{type(entity_type).__name__} {repr(entity_type)[:60]}."
        )
    )


class Merger:
    """Turns wire-form data into live entities of one session's identity map.

    *identity* is the memory cache's dict, *lower_caches* the session's persistent
    layers (the list object itself, filled while the session is constructed), *lock*
    the session's lock and *thread_state* its per-thread flags (writing to the lower
    layers encodes entities with the ``persisted_only`` strategy).
    """

    def __init__(
        self,
        session: Any,
        identity: dict[Any, Any],
        lower_caches: list[Any],
        lock: threading.RLock,
        thread_state: threading.local,
    ) -> None:
        self._session = session
        self._identity = identity
        self._lower_caches = lower_caches
        self._lock = lock
        self._thread = thread_state
        self._hook: Callable[[dict[str, Any]], Any] | None = None

    # -------------------------------------------------------------- plain merging
    def value(self, value: Any, write_lower: bool = True) -> Any:
        """Merge every entity mapping in *value*; convert typed values; return live data."""
        cls = value.__class__
        if cls is dict:
            if "__entity_type__" in value:
                return self.entity(value, write_lower)
            if "__type__" in value:
                return decode_typed(value)
            return {key: self.value(item, write_lower) for key, item in value.items()}
        if cls is list:
            return [self.value(item, write_lower) for item in value]
        return value

    def entity(self, data: dict[str, Any], write_lower: bool = True) -> Entity:
        """Merge one wire entity mapping (nested values still in wire form)."""
        for name, value in data.items():
            if value.__class__ is dict or value.__class__ is list:
                data[name] = self.value(value, write_lower)
        return self.decoded(data, write_lower)

    def decoded(self, data: dict[str, Any], write_lower: bool = True) -> Entity:
        """Merge an entity mapping whose nested values are already live (consumed)."""
        entity_type = data.pop("__entity_type__")
        try:
            cls = self._session.types.get(entity_type)
        except TypeError:  # a list or an object: unhashable
            cls = None
        if cls is None:
            raise unknown_type(entity_type)
        keys = cls.primary_key_attributes
        if len(keys) == 1:
            key = (entity_type, data.get(keys[0]))
        else:
            key = (entity_type, *[data.get(name) for name in keys])
        entity: Entity | None = self._identity.get(key)
        if entity is None:
            entity = cls.__new__(cls)
            entity._session = self._session
            entity._remote = data
            entity._local = _NO_LOCAL
            entity._state = None
            entity._group = None
            self._identity[key] = entity
        else:
            entity._remote.update(data)
        if write_lower and self._lower_caches:
            self.write_lower(entity)
        return entity

    # -------------------------------------------------------------- merging while parsing
    def object_hook(self) -> Any:
        """A ``json.loads`` object hook that merges entities while the JSON is parsed."""
        made = self._hook
        if made is not None:
            return made
        session = self._session
        identity = self._identity
        types = session.types
        infos: dict[str, tuple[Any, ...]] = {}
        new_entity = object.__new__
        merge_decoded = self.decoded
        lower_caches = self._lower_caches  # fixed once construction has finished

        def hook(data: dict[str, Any]) -> Any:
            entity_type = data.get("__entity_type__")
            if entity_type is None:
                if "__type__" in data:
                    return decode_typed(data)
                return data
            if lower_caches:
                return merge_decoded(data)
            try:
                info = infos.get(entity_type)
            except TypeError:  # unhashable: not a type name
                return merge_decoded(data)  # raises the clear error
            if info is None:
                cls = types.get(entity_type)
                if cls is None:
                    return merge_decoded(data)  # raises the clear error
                info = infos[entity_type] = (cls, cls.primary_key_attributes)
            cls, keys = info
            del data["__entity_type__"]
            if len(keys) == 1:
                key = (entity_type, data.get(keys[0]))
            else:
                key = (entity_type, *[data.get(name) for name in keys])
            entity = identity.get(key)
            if entity is None:
                entity = new_entity(cls)
                entity._session = session
                entity._remote = data
                entity._local = _NO_LOCAL
                entity._state = None
                entity._group = None
                identity[key] = entity
            else:
                entity._remote.update(data)
            return entity

        self._hook = hook
        return hook

    def decode_response(self, content: bytes) -> Any:
        """Parse an API response, merging its entities (under the session lock)."""
        hook = self.object_hook()
        # A large result allocates tens of thousands of objects that all survive: the
        # cyclic collector would scan them repeatedly for nothing, so pause it meanwhile.
        pause = len(content) > _PAUSE_GC_ABOVE and gc.isenabled()
        if pause:
            gc.disable()
        try:
            with self._lock:
                return json.loads(content, object_hook=hook)
        finally:
            if pause:
                gc.enable()

    # -------------------------------------------------------------- cache layers
    def write_lower(self, entity: Entity) -> None:
        """Write *entity* (its server values) through to the persistent cache layers."""
        key = self._session.cache_key_maker.key((entity.entity_type, entity.primary_key_values()))
        self._thread.encode_strategy = "persisted_only"
        try:
            for cache in self._lower_caches:
                try:
                    cache.set(key, entity)
                except Exception as exc:  # a broken cache must not break queries
                    logger.warning("Could not write %r to cache %r: %s", entity, cache, exc)
        finally:
            self._thread.encode_strategy = None

    def forget(self, entity: Entity) -> None:
        """Drop *entity* from the identity map and the persistent cache layers."""
        values = entity._local if entity._local else entity._remote
        key = (
            entity.entity_type,
            *[values.get(name, entity._remote.get(name)) for name in entity.primary_key_attributes],
        )
        if self._identity.get(key) is entity:
            del self._identity[key]
        if self._lower_caches:
            cache_key = self._session.cache_key_maker.key((entity.entity_type, list(key[1:])))
            for cache in self._lower_caches:
                with contextlib.suppress(Exception):
                    cache.remove(cache_key)
