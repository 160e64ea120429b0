"""``reviewd.Session``: an isolated, authenticated context for talking to an ftrack server.

The constructor and public names follow ``ftrack_api.Session`` so that scripts and
plugins port unchanged.  What differs is how the work is done:

- **Start-up is light.** Only ``requests`` and this package's small modules are imported;
  the event hub and plugin machinery load only when used; a warm schema cache is one
  file read (see :mod:`reviewd.api.schema`), so a ready Session costs one API call.
- **Merging is one pass.** Query results are merged by a ``json.loads`` object hook
  while the JSON is parsed (:mod:`reviewd.api.merging`): each entity's remote-values dict is
  the parsed dict itself, no per-attribute objects, no copies, no second traversal.
- **One object per entity.** The memory layer of :attr:`Session.cache` is the identity
  map, keyed by ``(entity_type, *primary_key)``; persistent lower layers (if configured)
  are keyed by ``cache_key_maker.key((entity_type, [primary key values]))``.
- **Shareable between threads.** Merging and recording hold one re-entrant lock; the
  ``auto_populate`` and ``record_operations`` flags are per thread; the unit of work is
  shared, as in ftrack_api, or per thread on request (below).

Threads
-------
By default every thread records into one list of operations, as with ftrack_api: a
:meth:`Session.commit` from any thread sends what all threads recorded.  The daemon
shares one Session among its plugin workers, so it builds it with
``per_thread_operations=True``: the unit of work is then per thread, like
SQLAlchemy's ``scoped_session``: each thread records its own operations
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

Modules
-------
This class is the façade with ftrack's names; the work is done by small modules:
:mod:`reviewd.api.session_settings` (arguments, environment and fallbacks),
:mod:`reviewd.api.merging` (server entities into the identity map),
:mod:`reviewd.api.populate` (bulk and automatic population),
:mod:`reviewd.api.unit_of_work` (per-thread recording, commit and rollback bookkeeping),
:mod:`reviewd.api.result_checks` (refusing answers of the wrong shape),
:mod:`reviewd.api.query_text` (query-language text built from values) and
:mod:`reviewd.api.entity_json` (``encode`` strategies).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from reviewd.api import populate as _populate
from reviewd.api import result_checks
from reviewd.api.cache import Cache, IdentityMapCache, LayeredCache, StringKeyMaker
from reviewd.api.components import ComponentsAndLocations
from reviewd.api.entity import Entity, creation_values
from reviewd.api.entity_json import encode as encode_entities
from reviewd.api.exception import (
    Error,
    ImmutableAttributeError,
    MultipleResultsFoundError,
    NoResultFoundError,
    SessionClosedError,
    UnrecognisedEntityTypeError,
    redact,
)
from reviewd.api.merging import Merger
from reviewd.api.operation import Operations, optimise
from reviewd.api.populate import POPULATE_CHUNK, group_entities
from reviewd.api.query import QueryResult
from reviewd.api.query_text import (
    criterion,
    has_select,
    key_condition,
    type_name_of,
    with_projections,
)
from reviewd.api.schema import build_types, check_server_version
from reviewd.api.schema_file import SchemaCacheFile
from reviewd.api.server_actions import ServerActions
from reviewd.api.session_settings import (
    plain_mapping,
    resolve_credentials,
    resolve_plugin_paths,
    resolve_schema_cache_path,
)
from reviewd.api.symbol import CREATED, DELETED, MODIFIED
from reviewd.api.transport import ApiClient, CallInfo, SessionAuthentication
from reviewd.api.unit_of_work import UnitsOfWork

if TYPE_CHECKING:  # the hub is imported on first use, to keep start-up light
    from reviewd.api.event.hub import EventHub

logger = logging.getLogger(__name__)


class Session(ServerActions, ComponentsAndLocations, SchemaCacheFile):
    """An authenticated connection to an ftrack server with an entity cache.

    The arguments are ftrack_api's, plus two that choose reviewd's model where it
    differs: ``per_thread_operations=True`` gives every thread its own unit of work
    (see "Threads" above), ``event_dispatch_thread=True`` runs event callbacks on the
    hub's dispatch thread as events arrive instead of inside ``event_hub.wait()``.
    """

    def __init__(
        self,
        server_url: str | None = None,
        api_key: str | None = None,
        api_user: str | None = None,
        auto_populate: bool = True,
        plugin_paths: Iterable[str] | None = None,
        cache: Any = None,
        cache_key_maker: Any = None,
        auto_connect_event_hub: bool = False,
        schema_cache_path: str | bool | None = None,
        plugin_arguments: Mapping[str, Any] | None = None,
        timeout: float | None = 60,
        headers: Mapping[str, str] | None = None,
        cookies: Mapping[str, str] | None = None,
        strict_api: bool = False,
        per_thread_operations: bool = False,
        event_dispatch_thread: bool = False,
    ) -> None:
        self._closed = True  # until construction succeeds; close() is then a no-op
        self._client: ApiClient | None = None
        self._event_hub: EventHub | None = None
        # reviewd's model for the hub: callbacks on its dispatch thread as events
        # arrive, instead of inside event_hub.wait() (ftrack_api's, the default).
        self._event_dispatch_thread = event_dispatch_thread
        self._lock = threading.RLock()
        self._thread = threading.local()
        self._work = UnitsOfWork(self._lock, per_thread=per_thread_operations)
        credentials = resolve_credentials(server_url, api_key, api_user)
        self._server_url = credentials.server_url
        self._api_key = credentials.api_key
        self._api_user = credentials.api_user
        self._headers = plain_mapping(headers)
        if strict_api:
            # Ask the server for HTTP error statuses instead of 200-with-error-object.
            self._headers["ftrack-strict-api"] = "true"
        self._cookies = plain_mapping(cookies)
        self._timeout = timeout

        self._default_auto_populate = bool(auto_populate)
        self._default_record_operations = True

        # Cache: the memory layer is the identity map.
        self.cache_key_maker = cache_key_maker if cache_key_maker is not None else StringKeyMaker()
        self._memory = IdentityMapCache(self._cache_key_of_identity)
        self._identity = self._memory.data
        self.cache = LayeredCache([self._memory])
        self._lower_caches: list[Cache] = []
        self._lower_tried: set[tuple[Any, ...]] = set()
        self._merger = Merger(self, self._identity, self._lower_caches, self._lock, self._thread)
        self._closed = False
        self._auth = SessionAuthentication(self._api_key, self._api_user)
        self._client = ApiClient(
            self._server_url,
            self._auth,
            headers=self._headers,
            cookies=self._cookies,
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

            self._server_information = result_checks.server_information(
                self._call([{"action": "query_server_information"}])[0], self._server_url
            )
            check_server_version(self._server_information.get("version"))

            self._plugin_paths = resolve_plugin_paths(plugin_paths)
            self._discover_plugins(plugin_arguments)

            self._schema_cache_path = resolve_schema_cache_path(schema_cache_path)
            self.schemas = self._load_schemas(self._schema_cache_path or False)
            self.types = build_types(self.schemas, self._construct_entity_type)
            self._configure_locations()
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
    def server_information(self) -> dict[str, Any]:
        return self._server_information

    @property
    def server_version(self) -> str:
        version: str = self._server_information.get("version", "unknown")
        return version

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

    def __exit__(self, *exc_info: Any) -> None:
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
    def event_hub(self) -> EventHub:
        """The session's :class:`reviewd.api.event.hub.EventHub` (created on first use)."""
        if self._event_hub is None:
            with self._lock:
                if self._event_hub is None:
                    from reviewd.api.event.hub import EventHub

                    self._event_hub = EventHub(
                        self._server_url,
                        self._api_user,
                        self._api_key,
                        headers=self._headers or None,
                        cookies=self._cookies or None,
                        auth=self._auth,
                        dispatch_thread=self._event_dispatch_thread,
                    )
        return self._event_hub

    def _discover_plugins(self, plugin_arguments: Mapping[str, Any] | None) -> None:
        # Looked up on the module at call time, as ftrack_api does, so that code
        # replacing ftrack_api.plugin.discover (tests, wrappers) is honoured.
        from reviewd.api import plugin as _plugin

        _plugin.discover(list(self._plugin_paths), [self], dict(plugin_arguments or {}))

    def _publish_local(self, topic: str, data: dict[str, Any]) -> list[Any]:
        """Publish a synchronous local event if anything could be listening."""
        hub = self._event_hub
        if hub is None or not getattr(hub, "subscribers", None):
            return []
        from reviewd.api.event.base import Event

        try:
            return list(hub.publish(Event(topic=topic, data=data), synchronous=True) or [])
        except Error:
            raise
        except Exception:
            logger.exception("A handler of %s failed.", topic)
            return []

    def _construct_entity_type(self, schema: dict[str, Any]) -> Any:
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
    def _call(self, batch: list[dict[str, Any]], merge: bool = False) -> list[Any]:
        """Send *batch*; with *merge*, entities in the answer are merged while parsed."""
        self._check_open()
        assert self._client is not None, "an open session has an API client"
        return self._client.call(batch, self._merger.decode_response if merge else None)

    def call(self, data: list[dict[str, Any]]) -> list[Any]:
        """Send raw operations; entities in the results are merged and returned live.

        :meth:`commit` sends its batch through here too (code that wraps or replaces
        ``session.call`` sees it, as with ftrack_api), asking for the answer unmerged
        and checked against the batch, so that it can merge the server's values after
        releasing the local ones.
        """
        if getattr(self._thread, "committing", False):
            batch = list(data)
            results = self._call(batch)
            result_checks.changes(batch, results, self.types, self._server_url)
            return results
        return self._call(list(data), merge=True)

    def add_call_listener(self, callback: Callable[[CallInfo], Any]) -> Callable[[], None]:
        """Call ``callback(info)`` after every HTTP call to ``/api``; return its remover.

        *info* is a :class:`~reviewd.api.transport.CallInfo` (``actions``, ``duration``,
        ``error``, ``status``).  The callback runs in the thread that made the call,
        after the answer was parsed and before the caller sees the result or error, so
        it must be quick and thread-safe; one that raises is logged and ignored.  This
        is the hook for metrics (the daemon's API request duration and error counts).
        Calling the returned function again is harmless.
        """
        self._check_open()
        assert self._client is not None, "an open session has an API client"
        return self._client.add_call_listener(callback)

    # -------------------------------------------------------------- merging
    def merge(self, value: Any) -> Any:
        """Merge wire-form data (entities as mappings) into this session (ftrack name).

        An entity of another session, or one :meth:`decode` made (detached from the
        cache), is merged by its values and the cached object returned.
        """
        if isinstance(value, Entity):
            if value.session is self and self._identity.get(_identity_key(value)) is value:
                return value
            # An entity of another session: merge what it holds into this one.
            from reviewd.api.entity_json import entity_values

            value = entity_values(value, "set_only")
        with self._lock:
            return self._merger.value(value)

    # -------------------------------------------------------------- queries
    @property
    def _local_cache(self) -> dict[str, Any]:
        """The identity map, entity key -> entity (ftrack_api's name for it)."""
        return self._identity

    def _merge(self, value: Any, merged: dict[str, Any] | None = None) -> Any:
        """ftrack_api's internal spelling of :meth:`merge`."""
        return self.merge(value)

    @property
    def _request(self) -> Any:
        """The ``requests.Session`` carrying the API calls (ftrack_api's name)."""
        assert self._client is not None, "an open session has an API client"
        return self._client.http

    def _create(
        self, entity_type: str, data: Mapping[str, Any] | None = None, reconstructing: bool = False
    ) -> Entity:
        """ftrack_api's internal spelling of :meth:`create`, which some plugins use."""
        return self.create(entity_type, data, reconstructing=reconstructing)

    def _result_errors(self) -> tuple[type, type]:
        return NoResultFoundError, MultipleResultsFoundError

    def _fetch_page(self, expression: str) -> tuple[list[Any], int | None]:
        # Through the public call(), as ftrack_api pages: code that wraps or patches
        # session.call sees every page.
        result = self.call([{"action": "query", "expression": expression}])[0]
        entities, next_offset = result_checks.query_page(result, self._server_url)
        return _populate.group_page(entities), next_offset

    def query(self, expression: str, page_size: int = 500) -> QueryResult:
        """A lazy, paged :class:`~reviewd.api.query.QueryResult` for *expression*.

        Without ``select``, the entity type's default projections are selected.
        """
        self._check_open()
        if not has_select(expression):
            cls = self._type(type_name_of(expression))
            expression = with_projections(
                expression, cls.default_projections or cls.primary_key_attributes
            )
        return QueryResult(self, expression, page_size=page_size)

    def _type(self, entity_type: str) -> type[Entity]:
        try:
            answer: type[Entity] = self.types[entity_type]
            return answer
        except KeyError:
            raise UnrecognisedEntityTypeError(
                f"Entity type {entity_type!r} is not known by the server at {self._server_url}."
            ) from None

    def get(self, entity_type: str, entity_key: Any) -> Entity | None:
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
        entity: Entity | None = self._identity.get((entity_type, *entity_key))
        if entity is not None and entity._state is not DELETED:
            return entity
        if self._lower_caches:
            cache_key = self.cache_key_maker.key((entity_type, entity_key))
            for value in _populate.cached_values(self, cache_key):
                if isinstance(value, Entity):
                    return value
        results = self.query(f"{entity_type} where {key_condition(keys, entity_key)}").all()
        return results[0] if results else None

    def populate(self, entities: Any, projections: str | Iterable[str]) -> None:
        """Fetch *projections* for *entities* in as few queries as possible.

        Entities created locally and not yet committed are skipped: the server has
        nothing for them.  Local values are not overwritten.
        """
        self._check_open()
        _populate.populate(self, entities, projections)

    def _load_from_lower(self, entity: Entity, name: str) -> bool:
        """Fill *entity* from the persistent cache layers; True if *name* is now loaded."""
        return _populate.load_from_lower(self, entity, name)

    def _auto_populate(self, entity: Entity, name: str) -> None:
        """Fetch *name* for *entity* and for its siblings from the same result page."""
        if not self.auto_populate:
            return
        self._check_open()
        _populate.auto_populate(self, entity, name)

    def ensure(
        self,
        entity_type: str,
        data: Mapping[str, Any],
        identifying_keys: Iterable[str] | None = None,
    ) -> Entity:
        """Return the entity matching *data* on *identifying_keys*, creating it if absent.

        An existing entity is updated to match *data*; either way the change is committed.
        """
        self._check_open()
        identifying_keys = list(identifying_keys or data.keys())
        if not identifying_keys:
            raise ValueError(f"Cannot ensure {entity_type} from {data!r}: no identifying keys.")
        criteria = " and ".join(criterion(key, data[key]) for key in identifying_keys)
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
    def create(
        self, entity_type: str, data: Mapping[str, Any] | None = None, reconstructing: bool = False
    ) -> Entity:
        """Create an entity locally; it reaches the server at the next :meth:`commit`."""
        self._check_open()
        cls = self._type(entity_type)
        if reconstructing:
            with self._lock:
                wire = {"__entity_type__": entity_type}
                wire.update(data or {})
                return self._merger.entity(wire)
        return cls(self, dict(data or {}))

    def _initialise_created(self, entity: Entity, data: dict[str, Any]) -> None:
        """Give a new entity its defaults and *data*; record the creation."""
        self._check_open()
        cls = entity.__class__
        values, mapped = creation_values(cls, data)
        self._work.unit()
        with self._lock:
            entity._local = values
            entity._state = CREATED
            key = (cls.entity_type, *[values[name] for name in cls.primary_key_attributes])
            self._identity[key] = entity
            self._work.record_created(entity, values, self.record_operations)
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
        self._work.record_update(entity, name, value, self.record_operations)

    def delete(self, entity: Entity) -> None:
        """Mark *entity* for deletion at the next :meth:`commit`."""
        self._check_open()
        if not isinstance(entity, Entity):
            raise TypeError(f"delete() takes an entity, not {type(entity).__name__}.")
        if entity._state is DELETED:
            return
        self._work.record_delete(entity, self.record_operations)

    @property
    def created(self) -> list[Entity]:
        """Entities this thread created and has not committed yet."""
        return self._work.touched(CREATED, "created")

    @property
    def modified(self) -> list[Entity]:
        """Entities with local changes made by this thread (see "Threads" above)."""
        return self._work.touched(MODIFIED)

    @property
    def deleted(self) -> list[Entity]:
        """Entities this thread marked for deletion and has not committed yet."""
        return self._work.touched(DELETED, "deleted")

    # -------------------------------------------------------------- unit of work
    @property
    def recorded_operations(self) -> Operations:
        """The operations this thread recorded and has not committed yet."""
        return self._work.unit().operations

    def commit(self) -> None:
        """Send this thread's recorded operations as one optimised batch; merge results.

        Only the calling thread's operations are sent and cleared (see "Threads" above).
        On failure nothing local changes: the operations stay recorded so that the
        caller can fix something and commit again, or :meth:`rollback`.  An answer of
        the wrong shape (wrong number of results, a result that is not an object or
        lacks ``data``, an entity of an unknown type) counts as a failure.
        """
        self._check_open()
        unit = self._work.current()
        if unit is None or not unit.pending:
            return
        with self._lock:
            operations = unit.operations.snapshot()
            batch = optimise(operations, identity_of=_identity_of_value)
        # The lock is not held during the round trip: other threads keep working.
        results: Any = []
        if batch:
            self._thread.committing = True
            try:
                results = self.call(batch)  # checked there (see call())
            finally:
                self._thread.committing = False
        with self._lock:
            self._work.committed(unit, self._merger.forget)
            # Server values last: they may normalise what was sent.  (A replaced
            # call() may answer anything: only what looks like results is merged.)
            for payload, result in zip(batch, results if results is not None else (), strict=False):
                if payload["action"] in ("create", "update") and isinstance(result, Mapping):
                    self._merger.value(result["data"])

    def rollback(self) -> None:
        """Discard this thread's operations and local changes; forget what it created.

        Only the calling thread's work is undone (see "Threads" above): local values
        other threads set stay, and an attribute this thread overwrote gets the other
        thread's pending value back.
        """
        self._check_open()
        unit = self._work.current()
        if unit is None:
            return
        with self._lock:
            self._work.rolled_back(unit, self._merger.forget)

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
        pending, threads = self._work.discard_all()
        if pending:
            where = f" from {threads} threads" if threads > 1 else ""
            message = (
                f"Closing the session for {self._server_url} with {pending} unsaved "
                f"operation(s){where}; they are discarded. Call commit() first to "
                "keep them."
            )
            logger.warning(message)
            warnings.warn(message, UserWarning, stacklevel=2)
        self._closed = True
        if hasattr(self, "_memory"):
            self._memory.clear()
        client, self._client = self._client, None
        if client is not None:
            client.close()
        hub, self._event_hub = self._event_hub, None
        if hub is not None and getattr(hub, "running", True):
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
        return encode_entities(data, strategy)

    def decode(self, text: str | bytes) -> Any:
        """Parse JSON made by :meth:`encode` (or the server).

        As in ftrack_api, entities come back as new objects of this session, detached
        from its cache (equal to the cached ones, not the same objects; one object per
        entity within *text*); :meth:`merge` brings them in.
        """
        data = json.loads(text)
        with self._lock:
            detached = Merger(self, {}, [], self._lock, self._thread)
            return detached.value(data, write_lower=False)

    def _decode_merged(self, text: str | bytes) -> Any:
        """Parse JSON and merge its entities into the cache (persistent cache layers)."""
        data = json.loads(text)
        with self._lock:
            return self._merger.value(data, write_lower=False)

    def _merge_cached(self, entity: Entity) -> Entity:
        """Merge an entity read (and decoded) from a persistent cache layer into the
        memory layer, without writing it back to the layers it came from."""
        cached: Entity | None = self._identity.get(_identity_key(entity))
        if cached is entity:
            return cached
        from reviewd.api.entity_json import entity_values

        merged: Entity = self._merger.value(entity_values(entity, "set_only"), write_lower=False)
        return merged

    def _cache_key_of_identity(self, identity: tuple[Any, ...]) -> Any:
        """``cache_key_maker``'s key for an identity-map key ``(type, *primary key)``."""
        return self.cache_key_maker.key((identity[0], list(identity[1:])))


def _identity_key(entity: Entity) -> tuple[Any, ...]:
    return (entity.entity_type, *entity.primary_key_values())


def _identity_of_value(value: Any) -> Any:
    if isinstance(value, Entity):
        return (value.entity_type, tuple(value.primary_key_values()))
    return None


# Names this module offered before its work moved into the modules listed above; kept
# importable from here (``ftrack_api.session`` resolves to this module under compat).
from reviewd.api.attribute import COLLECTION, MAPPED  # noqa: E402, F401
from reviewd.api.operation import (  # noqa: E402, F401
    CreateEntityOperation,
    DeleteEntityOperation,
    OperationPayload,
    UnitOfWork,
    UpdateEntityOperation,
)
from reviewd.api.schema import default_cache_folder  # noqa: E402, F401
from reviewd.api.symbol import NOT_SET  # noqa: E402, F401
from reviewd.api.transport import decode_typed, encode_default  # noqa: E402, F401

__all__ = ["POPULATE_CHUNK", "Session", "SessionAuthentication", "group_entities"]
