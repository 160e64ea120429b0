"""``reviewd.Session``: an isolated, authenticated context for talking to an ftrack server.

The constructor and public names follow ``ftrack_api.Session`` so that scripts and
plugins port unchanged.  What differs is how the work is done:

- **Start-up is light.** Only ``requests`` and this package's small modules are imported;
  the event hub and plugin machinery load only when used; a warm schema cache is one
  file read (see :mod:`reviewd.schema`), so a ready Session costs one API call.
- **Merging is one pass.** Query results are merged by
  a ``json.loads`` object hook (:meth:`Session._object_hook`) while the JSON is parsed:
  each entity's remote-values dict is the parsed dict itself, no per-attribute objects,
  no copies, no second traversal.
- **One object per entity.** The memory layer of :attr:`Session.cache` is the identity
  map, keyed by ``(entity_type, *primary_key)``; persistent lower layers (if configured)
  are keyed by ``cache_key_maker.key((entity_type, [primary key values]))``.
- **Shareable between threads.** Merging and recording hold one re-entrant lock; the
  ``auto_populate`` and ``record_operations`` flags are per thread, and so is the unit
  of work (below).

Threads
-------
The daemon shares one Session among its plugin workers, so the unit of work is per
thread, like SQLAlchemy's ``scoped_session``: each thread records its own operations
(:attr:`Session.recorded_operations`, :attr:`~Session.created`, :attr:`~Session.modified`
and :attr:`~Session.deleted` show the calling thread's), :meth:`Session.commit` sends and
clears only the calling thread's operations and :meth:`Session.rollback` discards only
them, reverting only the local values that thread set and forgetting only the entities
it created.  One plugin's failed commit or rollback therefore never sends or loses
another plugin's half-made changes.

The identity map stays shared: an entity is one object for every thread, so a local
value one thread sets is *visible to all threads* until that thread commits or rolls it
back.  When two threads set the same attribute the later value is the one read; if the
later thread rolls back, the earlier thread's pending value comes back.  Change an
entity created by another thread only after that thread has committed it.  Operations
of a thread that ends without committing stay recorded (and its local values visible)
until :meth:`Session.close`, which warns about them.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import gc
import json
import logging
import os
import re
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from reviewd.attribute import COLLECTION, MAPPED
from reviewd.cache import Cache, LayeredCache, MemoryCache, StringKeyMaker
from reviewd.entity import _NO_LOCAL, Entity
from reviewd.exception import (
    Error,
    ImmutableAttributeError,
    MultipleResultsFoundError,
    NoResultFoundError,
    SessionClosedError,
    UnrecognisedEntityTypeError,
    redact,
    register_secret,
)
from reviewd.operation import (
    CreateEntityOperation,
    DeleteEntityOperation,
    Operations,
    UnitOfWork,
    UpdateEntityOperation,
    optimise,
)
from reviewd.query import QueryResult
from reviewd.schema import (
    build_types,
    check_server_version,
    default_cache_folder,
    load_schemas,
)
from reviewd.symbol import CREATED, DELETED, MODIFIED, NOT_SET
from reviewd.transport import (
    ApiClient,
    CallInfo,
    SessionAuthentication,
    decode_typed,
    encode_default,
)

logger = logging.getLogger(__name__)

_SELECT = re.compile(r"^\s*select\s", re.IGNORECASE)
#: How many primary keys one populate query names.
POPULATE_CHUNK = 250


def _required(value, argument: str, variables: tuple[str, ...]) -> str:
    """Return *value* or the first set environment variable, else raise TypeError."""
    if value:
        return value
    for variable in variables:
        found = os.environ.get(variable)
        if found:
            return found
    names = " or ".join(variables)
    raise TypeError(
        f'Required "{argument}" not specified. Pass it as an argument or set the '
        f"environment variable {names}."
    )


class Session:
    """An authenticated connection to an ftrack server with an entity cache."""

    def __init__(
        self,
        server_url: str | None = None,
        api_key: str | None = None,
        api_user: str | None = None,
        auto_populate: bool = True,
        plugin_paths: Iterable[str] | None = None,
        cache=None,
        cache_key_maker=None,
        auto_connect_event_hub: bool = False,
        schema_cache_path: str | bool | None = None,
        plugin_arguments: Mapping[str, Any] | None = None,
        timeout: float | None = 60,
        headers: Mapping[str, str] | None = None,
        cookies: Mapping[str, str] | None = None,
    ) -> None:
        self._closed = True  # until construction succeeds; close() is then a no-op
        self._client = None
        self._event_hub = None
        self._lock = threading.RLock()
        self._thread = threading.local()
        # The per-thread units of work (see "Threads" above).  A unit is listed while
        # its thread lives or while it holds unsaved work, so that close() can warn.
        self._units: list[UnitOfWork] = []
        # (id(entity), attribute) -> [(unit, value), ...]: which threads hold a local
        # value for the attribute, latest last (the one read).  Entities are kept alive
        # by their units while listed here, so their ids stay valid.
        self._claims: dict[tuple[int, str], list[tuple[UnitOfWork, Any]]] = {}
        self._creators: dict[int, UnitOfWork] = {}   # id(entity) -> unit that created it
        self._deleters: dict[int, UnitOfWork] = {}   # id(entity) -> unit that deleted it
        server_url = _required(server_url, "server_url", ("FTRACK_SERVER",))
        api_key = _required(api_key, "api_key", ("FTRACK_API_KEY", "FTRACK_APIKEY"))
        register_secret(api_key)
        if not api_user:
            api_user = os.environ.get("FTRACK_API_USER")
        if not api_user:
            import getpass  # only needed for this fallback; kept off the start-up path

            try:
                api_user = getpass.getuser()
            except Exception:
                api_user = None
            api_user = _required(api_user, "api_user", ("FTRACK_API_USER",))

        self._server_url = server_url.rstrip("/")
        self._api_key = api_key
        self._api_user = api_user
        self._headers = dict(headers or {})
        self._cookies = dict(cookies or {})
        self._timeout = timeout

        self._default_auto_populate = bool(auto_populate)
        self._default_record_operations = True

        # Cache: the memory layer is the identity map.
        self.cache_key_maker = cache_key_maker if cache_key_maker is not None else StringKeyMaker()
        self._memory = MemoryCache()
        self._identity = self._memory.data
        self.cache = LayeredCache([self._memory])
        self._lower_caches: list[Cache] = []
        self._lower_tried: set[tuple] = set()
        self._closed = False
        self._auth = SessionAuthentication(api_key, api_user)
        self._client = ApiClient(
            self._server_url, self._auth, headers=self._headers, cookies=self._cookies,
            timeout=timeout,
        )
        try:
            if cache is not None:
                if callable(cache) and not isinstance(cache, Cache):
                    cache = cache(self)
                if cache is not None:
                    self.cache.caches.append(cache)
                    self._lower_caches.append(cache)

            if auto_connect_event_hub:
                self.event_hub.connect(wait=False)

            self._server_information = self._call([{"action": "query_server_information"}])[0]
            check_server_version(self._server_information.get("version"))

            if plugin_paths is None:
                plugin_paths = os.environ.get("FTRACK_EVENT_PLUGIN_PATH", "")
            if isinstance(plugin_paths, str):
                plugin_paths = plugin_paths.split(os.pathsep)
            self._plugin_paths = [path for path in plugin_paths if path]
            if self._plugin_paths:
                self._discover_plugins(plugin_arguments)

            if schema_cache_path is None:
                schema_cache_path = os.environ.get("FTRACK_API_SCHEMA_CACHE_PATH") or None
            if schema_cache_path is None:
                schema_cache_path = default_cache_folder()
            self._schema_cache_path = schema_cache_path or None
            self.schemas = load_schemas(self._call, self._server_information,
                                        self._schema_cache_path)
            self.types = build_types(self.schemas, self._construct_entity_type)
            self._publish_local("ftrack.api.session.configure-location", {"session": self})
            self._publish_local("ftrack.api.session.ready", {"session": self})
        except BaseException:
            self.close()
            raise

    # -------------------------------------------------------------- identity, repr
    @property
    def server_url(self) -> str:
        return self._server_url

    @property
    def api_user(self) -> str:
        return self._api_user

    @property
    def api_key(self) -> str:
        return self._api_key

    @property
    def server_information(self) -> dict:
        return self._server_information

    @property
    def server_version(self) -> str:
        return self._server_information.get("version", "unknown")

    @property
    def plugin_paths(self) -> list[str]:
        return list(self._plugin_paths)

    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<reviewd.Session {self._server_url} user={self._api_user!r} {state}>"

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise SessionClosedError(
                f"The session for {self._server_url} is closed; create a new Session."
            )

    # -------------------------------------------------------------- per-thread flags
    @property
    def auto_populate(self) -> bool:
        """Whether reading an unloaded attribute fetches it (this thread only)."""
        return getattr(self._thread, "auto_populate", self._default_auto_populate)

    @auto_populate.setter
    def auto_populate(self, value: bool) -> None:
        self._thread.auto_populate = bool(value)

    @property
    def record_operations(self) -> bool:
        """Whether changes are recorded as operations for commit (this thread only)."""
        return getattr(self._thread, "record_operations", self._default_record_operations)

    @record_operations.setter
    def record_operations(self, value: bool) -> None:
        self._thread.record_operations = bool(value)

    @contextlib.contextmanager
    def auto_populating(self, auto_populate: bool) -> Iterator[None]:
        """Temporarily set :attr:`auto_populate` for this thread."""
        previous = self.auto_populate
        self.auto_populate = auto_populate
        try:
            yield
        finally:
            self.auto_populate = previous

    @contextlib.contextmanager
    def operation_recording(self, record_operations: bool) -> Iterator[None]:
        """Temporarily set :attr:`record_operations` for this thread."""
        previous = self.record_operations
        self.record_operations = record_operations
        try:
            yield
        finally:
            self.record_operations = previous

    # -------------------------------------------------------------- event hub, plugins
    @property
    def event_hub(self):
        """The session's :class:`reviewd.event.hub.EventHub` (created on first use)."""
        if self._event_hub is None:
            with self._lock:
                if self._event_hub is None:
                    from reviewd.event.hub import EventHub

                    self._event_hub = EventHub(
                        self._server_url, self._api_user, self._api_key,
                        headers=self._headers or None, cookies=self._cookies or None,
                        auth=self._auth,
                    )
        return self._event_hub

    def _discover_plugins(self, plugin_arguments: Mapping[str, Any] | None) -> None:
        from reviewd.plugin import discover

        discover(self._plugin_paths, (self,), dict(plugin_arguments or {}))

    def _publish_local(self, topic: str, data: dict) -> list:
        """Publish a synchronous local event if anything could be listening."""
        hub = self._event_hub
        if hub is None or not getattr(hub, "subscribers", None):
            return []
        from reviewd.event.base import Event

        try:
            return list(hub.publish(Event(topic=topic, data=data), synchronous=True) or [])
        except Error:
            raise
        except Exception:
            logger.exception("A handler of %s failed.", topic)
            return []

    def _construct_entity_type(self, schema: dict):
        """Let plugins supply the class for *schema* (``construct-entity-type``)."""
        if self._event_hub is None:
            return None
        results = self._publish_local(
            "ftrack.api.session.construct-entity-type",
            {"schema": schema, "schemas": self.schemas},
        )
        for result in results:
            if result is not None:
                return result
        return None

    # -------------------------------------------------------------- transport
    def _call(self, batch: list[dict], merge: bool = False) -> list:
        """Send *batch*; with *merge*, entities in the answer are merged while parsed."""
        self._check_open()
        return self._client.call(batch, self._decode_response if merge else None)

    def call(self, data: list[dict]) -> list:
        """Send raw operations; entities in the results are merged and returned live."""
        return self._call(list(data), merge=True)

    def add_call_listener(self, callback: Callable[[CallInfo], Any]) -> Callable[[], None]:
        """Call ``callback(info)`` after every HTTP call to ``/api``; return its remover.

        *info* is a :class:`~reviewd.transport.CallInfo` (``actions``, ``duration``,
        ``error``, ``status``).  The callback runs in the thread that made the call,
        after the answer was parsed and before the caller sees the result or error, so
        it must be quick and thread-safe; one that raises is logged and ignored.  This
        is the hook for metrics (the daemon's API request duration and error counts).
        Calling the returned function again is harmless.
        """
        self._check_open()
        return self._client.add_call_listener(callback)

    # -------------------------------------------------------------- merging (hot path)
    def _merge_value(self, value: Any, write_lower: bool = True) -> Any:
        """Merge every entity mapping in *value*; convert typed values; return live data."""
        cls = value.__class__
        if cls is dict:
            if "__entity_type__" in value:
                return self._merge_entity(value, write_lower)
            if "__type__" in value:
                return decode_typed(value)
            return {key: self._merge_value(item, write_lower) for key, item in value.items()}
        if cls is list:
            return [self._merge_value(item, write_lower) for item in value]
        return value

    def _merge_entity(self, data: dict, write_lower: bool = True) -> Entity:
        """Merge one wire entity mapping (nested values still in wire form)."""
        for name, value in data.items():
            if value.__class__ is dict or value.__class__ is list:
                data[name] = self._merge_value(value, write_lower)
        return self._merge_decoded(data, write_lower)

    def _merge_decoded(self, data: dict, write_lower: bool = True) -> Entity:
        """Merge an entity mapping whose nested values are already live (consumed)."""
        entity_type = data.pop("__entity_type__")
        cls = self.types.get(entity_type)
        if cls is None:
            raise UnrecognisedEntityTypeError(
                f"The server sent an entity of unknown type {entity_type!r}."
            )
        keys = cls.primary_key_attributes
        if len(keys) == 1:
            key = (entity_type, data.get(keys[0]))
        else:
            key = (entity_type, *[data.get(name) for name in keys])
        entity = self._identity.get(key)
        if entity is None:
            entity = cls.__new__(cls)
            entity._session = self
            entity._remote = data
            entity._local = _NO_LOCAL
            entity._state = None
            entity._group = None
            self._identity[key] = entity
        else:
            entity._remote.update(data)
        if write_lower and self._lower_caches:
            self._write_lower(entity)
        return entity

    def _object_hook(self):
        """A ``json.loads`` object hook that merges entities while the JSON is parsed.

        The C scanner hands over each object after its children, so nested entities
        are already live when their parent arrives: merging needs no traversal of its
        own, one Python call per JSON object is the whole cost.
        """
        hook = self.__dict__.get("_hook")
        if hook is not None:
            return hook
        identity = self._identity
        types = self.types
        infos: dict[str, tuple] = {}
        new_entity = object.__new__
        merge_decoded = self._merge_decoded
        lower_caches = self._lower_caches  # fixed once construction has finished

        def hook(data: dict):
            entity_type = data.get("__entity_type__")
            if entity_type is None:
                if "__type__" in data:
                    return decode_typed(data)
                return data
            if lower_caches:
                return merge_decoded(data)
            info = infos.get(entity_type)
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
                entity._session = self
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

    def _decode_response(self, content: bytes):
        """Parse an API response, merging its entities (under the session lock)."""
        hook = self._object_hook()
        # A large result allocates tens of thousands of objects that all survive: the
        # cyclic collector would scan them repeatedly for nothing, so pause it meanwhile.
        pause = len(content) > 1 << 16 and gc.isenabled()
        if pause:
            gc.disable()
        try:
            with self._lock:
                return json.loads(content, object_hook=hook)
        finally:
            if pause:
                gc.enable()

    def _merge_page(self, entities: list) -> list:
        """Group a page of merged entities: they populate missing attributes together."""
        for entity in entities:
            entity._group = entities
        return entities

    def _write_lower(self, entity: Entity) -> None:
        key = self.cache_key_maker.key((entity.entity_type, entity.primary_key_values()))
        self._thread.encode_strategy = "persisted_only"
        try:
            for cache in self._lower_caches:
                try:
                    cache.set(key, entity)
                except Exception as exc:  # a broken cache must not break queries
                    logger.warning("Could not write %r to cache %r: %s", entity, cache, exc)
        finally:
            self._thread.encode_strategy = None

    def merge(self, value: Any) -> Any:
        """Merge wire-form data (entities as mappings) into this session (ftrack name)."""
        if isinstance(value, Entity):
            return value
        with self._lock:
            return self._merge_value(value)

    # -------------------------------------------------------------- queries
    def _result_errors(self) -> tuple[type, type]:
        return NoResultFoundError, MultipleResultsFoundError

    def _fetch_page(self, expression: str) -> tuple[list, int | None]:
        result = self._call([{"action": "query", "expression": expression}], merge=True)[0]
        entities = self._merge_page(result.get("data") or [])
        next_offset = ((result.get("metadata") or {}).get("next") or {}).get("offset")
        return entities, next_offset

    def query(self, expression: str, page_size: int = 500) -> QueryResult:
        """A lazy, paged :class:`~reviewd.query.QueryResult` for *expression*.

        Without ``select``, the entity type's default projections are selected.
        """
        self._check_open()
        if not _SELECT.match(expression):
            type_name = expression.split(None, 1)[0] if expression.strip() else ""
            cls = self._type(type_name)
            projections = ", ".join(cls.default_projections or cls.primary_key_attributes)
            expression = f"select {projections} from {expression.strip()}"
        return QueryResult(self, expression, page_size=page_size)

    def _type(self, entity_type: str) -> type:
        try:
            return self.types[entity_type]
        except KeyError:
            raise UnrecognisedEntityTypeError(
                f"Entity type {entity_type!r} is not known by the server at {self._server_url}."
            ) from None

    def get(self, entity_type: str, entity_key) -> Entity | None:
        """The entity of *entity_type* with primary key *entity_key*, or None.

        Looks in the identity map, then in the persistent cache layers, and only then
        asks the server.
        """
        self._check_open()
        cls = self._type(entity_type)
        keys = cls.primary_key_attributes
        if isinstance(entity_key, (str, int)):
            entity_key = [entity_key]
        elif isinstance(entity_key, Mapping):
            entity_key = [entity_key[name] for name in keys]
        entity_key = list(entity_key)
        if len(entity_key) != len(keys):
            raise ValueError(
                f"Entity type {entity_type} has a primary key of {len(keys)} value(s) "
                f"({', '.join(keys)}); got {entity_key!r}."
            )
        entity = self._identity.get((entity_type, *entity_key))
        if entity is not None and entity._state is not DELETED:
            return entity
        if self._lower_caches:
            cache_key = self.cache_key_maker.key((entity_type, entity_key))
            for cache in self._lower_caches:
                try:
                    value = cache.get(cache_key)
                except KeyError:
                    continue
                except Exception as exc:
                    logger.warning("Could not read %s from cache %r: %s", cache_key, cache, exc)
                    continue
                if isinstance(value, (str, bytes)):
                    value = self.decode(value)
                if isinstance(value, Entity):
                    return value
        conditions = " and ".join(
            f"{name} is {_literal(value)}" for name, value in zip(keys, entity_key, strict=False)
        )
        results = self.query(f"{entity_type} where {conditions}").all()
        return results[0] if results else None

    def populate(self, entities, projections: str | Iterable[str]) -> None:
        """Fetch *projections* for *entities* in as few queries as possible.

        Entities created locally and not yet committed are skipped: the server has
        nothing for them.  Local values are not overwritten.
        """
        self._check_open()
        if isinstance(entities, (Entity,)):
            entities = [entities]
        if not isinstance(projections, str):
            projections = ", ".join(projections)
        by_type: dict[str, list[Entity]] = {}
        for entity in entities:
            if entity._state is CREATED:
                continue
            by_type.setdefault(entity.entity_type, []).append(entity)
        for entity_type, group in by_type.items():
            keys = group[0].primary_key_attributes
            for start in range(0, len(group), POPULATE_CHUNK):
                chunk = group[start:start + POPULATE_CHUNK]
                if len(keys) == 1:
                    values = ", ".join(_literal(entity.primary_key_values()[0]) for entity in chunk)
                    condition = f"{keys[0]} in ({values})"
                else:
                    condition = " or ".join(
                        "(" + " and ".join(f"{name} is {_literal(value)}"
                                           for name, value in zip(keys, entity.primary_key_values(), strict=False))
                        + ")" for entity in chunk
                    )
                expression = f"select {projections} from {entity_type} where {condition}"
                QueryResult(self, expression, page_size=max(len(chunk), 1)).all()

    def _load_from_lower(self, entity: Entity, name: str) -> bool:
        """Fill *entity* from the persistent cache layers; True if *name* is now loaded.

        Each entity is looked up at most once per session: a miss, or a cached copy
        without *name*, falls through to the server.
        """
        values = entity.primary_key_values()
        identity = (entity.entity_type, *values)
        if identity in self._lower_tried:
            return False
        self._lower_tried.add(identity)
        cache_key = self.cache_key_maker.key((entity.entity_type, values))
        for cache in self._lower_caches:
            try:
                value = cache.get(cache_key)
            except KeyError:
                continue
            except Exception as exc:
                logger.warning("Could not read %s from cache %r: %s", cache_key, cache, exc)
                continue
            if isinstance(value, (str, bytes)):
                self.decode(value)
            if name in entity._remote:
                return True
        return False

    def _auto_populate(self, entity: Entity, name: str) -> None:
        """Fetch *name* for *entity* and for its siblings from the same result page."""
        if not self.auto_populate:
            return
        self._check_open()
        candidates = [entity]
        group = entity._group
        if group:
            cls = entity.__class__
            for other in group:
                if (other is not entity and other.__class__ is cls and other._state is None
                        and name not in other._remote):
                    candidates.append(other)
        self.populate(candidates, name)
        if name not in entity._remote:
            # The server returned nothing for it: remember that, so reads do not loop.
            entity._remote.setdefault(name, _absent_value(entity, name))
        # What was just fetched for all candidates is the next natural group:
        # ``for o in objects: o["version"]["status"]`` then costs one query per level.
        fetched: list[Entity] = []
        for candidate in candidates:
            value = candidate._remote.get(name)
            if isinstance(value, Entity):
                fetched.append(value)
            elif value.__class__ is list:
                fetched.extend(item for item in value if isinstance(item, Entity))
        if len(fetched) > 1:
            group_entities(fetched)

    def ensure(self, entity_type: str, data: Mapping[str, Any],
               identifying_keys: Iterable[str] | None = None) -> Entity:
        """Return the entity matching *data* on *identifying_keys*, creating it if absent.

        An existing entity is updated to match *data*; either way the change is committed.
        """
        self._check_open()
        identifying_keys = list(identifying_keys or data.keys())
        if not identifying_keys:
            raise ValueError(
                f"Cannot ensure {entity_type} from {data!r}: no identifying keys."
            )
        criteria = " and ".join(_criterion(key, data[key]) for key in identifying_keys)
        try:
            entity = self.query(f"{entity_type} where {criteria}").one()
        except NoResultFoundError:
            entity = self.create(entity_type, data)
            self.commit()
            return entity
        changed = False
        for key, value in data.items():
            if entity[key] != value:
                entity[key] = value
                changed = True
        if changed:
            self.commit()
        return entity

    # -------------------------------------------------------------- local changes
    def create(self, entity_type: str, data: Mapping[str, Any] | None = None,
               reconstructing: bool = False) -> Entity:
        """Create an entity locally; it reaches the server at the next :meth:`commit`."""
        self._check_open()
        cls = self._type(entity_type)
        if reconstructing:
            with self._lock:
                wire = {"__entity_type__": entity_type}
                wire.update(data or {})
                return self._merge_entity(wire)
        return cls(self, dict(data or {}))

    def _initialise_created(self, entity: Entity, data: dict) -> None:
        """Give a new entity its defaults and *data*; record the creation."""
        self._check_open()
        cls = entity.__class__
        attributes = cls._attributes()
        values: dict[str, Any] = {}
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
        mapped = {name: values.pop(name) for name in list(values)
                  if attributes.get(name).kind == MAPPED and isinstance(values[name], Mapping)}
        missing = [name for name in cls.primary_key_attributes if values.get(name) is None]
        if missing:
            raise ValueError(
                f"Cannot create {cls.entity_type} without primary key value(s) "
                f"{', '.join(missing)}."
            )
        unit = self._unit()
        with self._lock:
            entity._local = values
            entity._state = CREATED
            key = (cls.entity_type, *[values[name] for name in cls.primary_key_attributes])
            self._identity[key] = entity
            self._creators[id(entity)] = unit
            unit.touch(entity)
            for name, value in values.items():
                self._claim(unit, entity, name, value)
            if self.record_operations:
                unit.operations.push(CreateEntityOperation(
                    cls.entity_type,
                    {name: values[name] for name in cls.primary_key_attributes},
                    dict(values),
                ))
        for name, mapping in mapped.items():
            for key, item in mapping.items():
                entity[name][key] = item

    def _set_local(self, entity: Entity, name: str, value: Any) -> None:
        """Set a local value on *entity* and record the update (called by Entity)."""
        self._check_open()
        if name in entity.primary_key_attributes and entity._state is not None:
            if entity._state is CREATED:
                raise ImmutableAttributeError(
                    f"Set the primary key {name!r} of a new {entity.entity_type} in "
                    "session.create(), not afterwards."
                )
        unit = self._unit()
        with self._lock:
            local = entity._local
            if local and name in local:
                old = local[name]
            else:
                old = entity._remote.get(name, NOT_SET)
            if local is _NO_LOCAL:
                entity._local = local = {}
            local[name] = value
            if entity._state is None:
                entity._state = MODIFIED
            self._claim(unit, entity, name, value)
            if self.record_operations:
                unit.operations.push(UpdateEntityOperation(
                    entity.entity_type,
                    dict(zip(entity.primary_key_attributes, entity.primary_key_values(), strict=False)),
                    name, old, value,
                ))

    def delete(self, entity: Entity) -> None:
        """Mark *entity* for deletion at the next :meth:`commit`."""
        self._check_open()
        if not isinstance(entity, Entity):
            raise TypeError(f"delete() takes an entity, not {type(entity).__name__}.")
        if entity._state is DELETED:
            return
        unit = self._unit()
        with self._lock:
            if self.record_operations:
                unit.operations.push(DeleteEntityOperation(
                    entity.entity_type,
                    dict(zip(entity.primary_key_attributes, entity.primary_key_values(), strict=False)),
                ))
            unit.touch(entity)
            self._deleters[id(entity)] = unit
            entity._state = DELETED

    def _touched(self, state, owners: dict[int, UnitOfWork] | None = None) -> list[Entity]:
        """This thread's changed entities in *state* (and owned by it in *owners*)."""
        unit = self._current_unit()
        if unit is None:
            return []
        with self._lock:
            return [entity for key, entity in unit.entities.items()
                    if entity._state is state and (owners is None or owners.get(key) is unit)]

    @property
    def created(self) -> list[Entity]:
        """Entities this thread created and has not committed yet."""
        return self._touched(CREATED, self._creators)

    @property
    def modified(self) -> list[Entity]:
        """Entities with local changes made by this thread (see "Threads" above)."""
        return self._touched(MODIFIED)

    @property
    def deleted(self) -> list[Entity]:
        """Entities this thread marked for deletion and has not committed yet."""
        return self._touched(DELETED, self._deleters)

    # -------------------------------------------------------------- unit of work
    def _current_unit(self) -> UnitOfWork | None:
        """The calling thread's unit of work, or None if it never changed anything."""
        return getattr(self._thread, "unit", None)

    def _unit(self) -> UnitOfWork:
        """The calling thread's unit of work, created on first use."""
        unit = getattr(self._thread, "unit", None)
        if unit is None:
            unit = UnitOfWork()
            with self._lock:
                # Units of ended threads with nothing left to save are dropped here, so
                # that short-lived threads do not accumulate.
                self._units = [u for u in self._units if u.thread_alive or u.pending]
                self._units.append(unit)
            self._thread.unit = unit
        return unit

    @property
    def recorded_operations(self) -> Operations:
        """The operations this thread recorded and has not committed yet."""
        return self._unit().operations

    def _claim(self, unit: UnitOfWork, entity: Entity, name: str, value: Any) -> None:
        """Record that *unit*'s thread set the local value of *name* (under the lock)."""
        key = (id(entity), name)
        stack = self._claims.get(key)
        if stack is None:
            self._claims[key] = [(unit, value)]
        elif stack[-1][0] is unit:  # setting again what this thread set last: no new claim
            stack[-1] = (unit, value)
            return
        else:
            for index, (owner, _) in enumerate(stack):
                if owner is unit:
                    del stack[index]
                    break
            stack.append((unit, value))
        unit.touch(entity, name)

    def _release(self, unit: UnitOfWork, entity: Entity, *, commit: bool,
                 detached: bool = False) -> None:
        """Withdraw *unit*'s local values of *entity* (under the lock).

        Committed values become remote ones.  An attribute another thread also set keeps
        that thread's latest value as its local value; otherwise its local value goes.
        """
        key = id(entity)
        names = unit.names.get(key)
        if not names:
            return
        claims = self._claims
        for name in names:
            stack = claims.get((key, name))
            if not stack:
                continue
            mine = _UNCLAIMED
            for index, (owner, value) in enumerate(stack):
                if owner is unit:
                    mine = value
                    del stack[index]
                    break
            if not stack:
                del claims[(key, name)]
            if detached:
                continue
            if commit and mine is not _UNCLAIMED:
                entity._remote[name] = mine
            local = entity._local
            if stack:
                if local is _NO_LOCAL:
                    entity._local = local = {}
                local[name] = stack[-1][1]
            elif local is not _NO_LOCAL:
                local.pop(name, None)

    def _settle(self, entity: Entity, undelete: bool = False) -> None:
        """Recompute *entity*'s state after a unit let go of it (under the lock)."""
        if entity._state is DELETED and not undelete:
            return  # deleted by this or another thread, or detached
        key = id(entity)
        if key in self._deleters:
            entity._state = DELETED
        elif key in self._creators:
            entity._state = CREATED
        elif entity._local:
            entity._state = MODIFIED
        else:
            entity._local = _NO_LOCAL
            entity._state = None

    def commit(self) -> None:
        """Send this thread's recorded operations as one optimised batch; merge results.

        Only the calling thread's operations are sent and cleared (see "Threads" above).
        On failure nothing local changes: the operations stay recorded so that the
        caller can fix something and commit again, or :meth:`rollback`.
        """
        self._check_open()
        unit = self._current_unit()
        if unit is None or not unit.pending:
            return
        with self._lock:
            operations = unit.operations.snapshot()
            batch = optimise(operations, identity_of=_identity_of_value)
        # The lock is not held during the round trip: other threads keep working.
        results = self._call(batch) if batch else []
        with self._lock:
            creators, deleters = self._creators, self._deleters
            for key, entity in list(unit.entities.items()):
                if deleters.get(key) is unit:
                    self._forget(entity)
                    self._release(unit, entity, commit=False, detached=True)
                    del deleters[key]
                    if creators.get(key) is unit:
                        del creators[key]
                    continue
                self._release(unit, entity, commit=True)
                if creators.get(key) is unit:
                    del creators[key]
                self._settle(entity)
            unit.clear()
            # Server values last: they may normalise what was sent.
            for payload, result in zip(batch, results, strict=False):
                if payload["action"] in ("create", "update") and isinstance(result, dict):
                    self._merge_value(result.get("data"))

    def rollback(self) -> None:
        """Discard this thread's operations and local changes; forget what it created.

        Only the calling thread's work is undone (see "Threads" above): local values
        other threads set stay, and an attribute this thread overwrote gets the other
        thread's pending value back.
        """
        self._check_open()
        unit = self._current_unit()
        if unit is None:
            return
        with self._lock:
            creators, deleters = self._creators, self._deleters
            for key, entity in list(unit.entities.items()):
                if deleters.get(key) is unit:
                    del deleters[key]
                    undelete = True
                else:
                    undelete = False
                if creators.get(key) is unit:
                    del creators[key]
                    # Detached: its values stay readable, it can no longer be changed.
                    self._forget(entity)
                    self._release(unit, entity, commit=False, detached=True)
                    entity._remote = dict(entity._local)
                    entity._local = _NO_LOCAL
                    entity._state = DELETED
                    continue
                self._release(unit, entity, commit=False)
                self._settle(entity, undelete=undelete)
            unit.clear()

    def _forget(self, entity: Entity) -> None:
        values = entity._local if entity._local else entity._remote
        key = (entity.entity_type, *[values.get(name, entity._remote.get(name))
                                     for name in entity.primary_key_attributes])
        if self._identity.get(key) is entity:
            del self._identity[key]
        if self._lower_caches:
            cache_key = self.cache_key_maker.key((entity.entity_type, list(key[1:])))
            for cache in self._lower_caches:
                with contextlib.suppress(Exception):
                    cache.remove(cache_key)

    def reset(self) -> None:
        """Roll back this thread's work and empty the shared memory cache.

        Other threads' recorded operations are left alone (they name entities by key,
        so they still commit); their entity objects are no longer in the cache.
        """
        self._check_open()
        with self._lock:
            self.rollback()
            self._memory.clear()
        self._publish_local("ftrack.api.session.reset", {"session": self})

    def close(self) -> None:
        """Close the session: warn about unsaved operations, free the cache, HTTP, hub.

        Safe to call more than once.
        """
        if self._closed and self._client is None:
            return
        with self._lock:
            units, self._units = list(self._units), []
            pending = sum(len(unit.operations) for unit in units)
            threads = sum(1 for unit in units if unit.operations)
            for unit in units:
                unit.clear()
            self._claims.clear()
            self._creators.clear()
            self._deleters.clear()
        if pending:
            where = f" from {threads} threads" if threads > 1 else ""
            message = (f"Closing the session for {self._server_url} with {pending} unsaved "
                       f"operation(s){where}; they are discarded. Call commit() first to "
                       "keep them.")
            logger.warning(message)
            warnings.warn(message, UserWarning, stacklevel=2)
        self._closed = True
        if hasattr(self, "_memory"):
            self._memory.clear()
        client, self._client = self._client, None
        if client is not None:
            client.close()
        hub, self._event_hub = self._event_hub, None
        if hub is not None:
            try:
                if getattr(hub, "connected", False):
                    hub.disconnect()
                else:
                    hub.disconnect(unsubscribe=False)
            except Exception as exc:
                logger.debug("Event hub disconnect failed: %s", redact(str(exc)))

    def __del__(self) -> None:
        client = getattr(self, "_client", None)
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    # -------------------------------------------------------------- encode / decode
    def encode(self, data: Any, entity_attribute_strategy: str = "set_only") -> str:
        """JSON text for *data*; entities are written with their values.

        Strategies: ``set_only`` (loaded and local values), ``persisted_only`` (values
        as the server last sent them), ``modified_only`` (local values only), ``all``
        (populate every attribute first).
        """
        strategy = getattr(self._thread, "encode_strategy", None) or entity_attribute_strategy
        top = data

        def default(value):
            if isinstance(value, Entity):
                if value is top or (isinstance(top, list) and any(value is t for t in top)):
                    return _entity_values(value, strategy)
                return value.__ftrack_wire__()
            return encode_default(value)

        return json.dumps(data, default=default, separators=(",", ":"))

    def decode(self, text: str | bytes) -> Any:
        """Parse JSON made by :meth:`encode` (or the server), merging entities found."""
        data = json.loads(text)
        with self._lock:
            return self._merge_value(data, write_lower=False)


# ------------------------------------------------------------------ helpers
#: Marks "this unit held no local value for the attribute" in :meth:`Session._release`.
_UNCLAIMED = object()


def _new_id() -> str:
    import uuid  # imported on first create, not at start-up

    return str(uuid.uuid4())


def group_entities(entities: list) -> None:
    """Make *entities* populate together unless they already belong to a larger group."""
    size = len(entities)
    for entity in entities:
        group = entity._group
        if group is None or len(group) < size:
            entity._group = entities


def _identity_of_value(value: Any):
    if isinstance(value, Entity):
        return (value.entity_type, tuple(value.primary_key_values()))
    return None


def _entity_values(entity: Entity, strategy: str) -> dict:
    if strategy == "all":
        entity.session.populate([entity], ", ".join(entity.keys()))
    if strategy == "persisted_only":
        values = dict(entity._remote)
    elif strategy == "modified_only":
        values = dict(entity._local) if entity._local else {}
        for name, value in zip(entity.primary_key_attributes, entity.primary_key_values(), strict=False):
            values.setdefault(name, value)
    else:
        values = dict(entity._remote)
        if entity._local:
            values.update(entity._local)
    out = {"__entity_type__": entity.entity_type}
    for name, value in values.items():
        if value is NOT_SET:
            continue
        if isinstance(value, list):
            value = [item.__ftrack_wire__() if isinstance(item, Entity) else item
                     for item in value]
        elif isinstance(value, Entity):
            value = value.__ftrack_wire__()
        out[name] = value
    return out


def _absent_value(entity: Entity, name: str):
    attribute = entity._attributes().get(name)
    if attribute is not None and attribute.kind in (COLLECTION, MAPPED):
        return []
    return None


def _literal(value: Any) -> str:
    """A query-language literal for *value*."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if value is None:
        return "None"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, _dt.datetime):
        value = value.replace(microsecond=0).isoformat()
    elif isinstance(value, _dt.date):
        value = value.isoformat()
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def _criterion(key: str, value: Any) -> str:
    if isinstance(value, Entity):
        keys = value.primary_key_attributes
        values = value.primary_key_values()
        return " and ".join(f"{key}.{name} is {_literal(v)}" for name, v in zip(keys, values, strict=False))
    return f"{key} is {_literal(value)}"


__all__ = ["Session", "SessionAuthentication"]
