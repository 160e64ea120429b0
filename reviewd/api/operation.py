"""Recorded operations (the unit of work) and the optimiser that turns them into a batch.

Every local change to an entity is recorded as a create, update or delete operation,
with the old and new value for updates.  ``commit`` sends them as one batch that
:func:`optimise` makes as small as correctness allows:

- an entity both created and deleted in the batch disappears entirely;
- updates to an entity deleted later in the batch are dropped;
- an update folds into the entity's latest create/update payload, unless it refers to an
  entity created *after* that payload (the server would see a reference to something that
  does not exist yet), in which case it becomes its own payload at its own position;
- only the last value of each attribute is kept;
- an update that ends where it started (new value equal to the original old value) is
  dropped, and payloads left empty are skipped.

Operations are recorded per thread: a :class:`UnitOfWork` holds one thread's operations
and the bookkeeping the Session needs to commit or roll back only that thread's work
(see "Threads" in :mod:`reviewd.api.session`).

Pure code: it knows nothing about entities beyond two callables handed in.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from typing import Any

from reviewd.api.symbol import NOT_SET

Identity = tuple[Any, ...]  # (entity_type, (primary key values...))


class Operation:
    """Base class of recorded operations."""

    __slots__ = ("entity_type", "entity_key")

    def __init__(
        self, entity_type: str | None = None, entity_key: Mapping[str, Any] | None = None
    ) -> None:
        # A bare Operation() is allowed, as in ftrack_api (a marker on the stack).
        self.entity_type = entity_type
        self.entity_key = dict(entity_key or {})

    @property
    def identity(self) -> Identity:
        return (self.entity_type, tuple(self.entity_key.values()))


class CreateEntityOperation(Operation):
    """An entity created locally; *entity_data* holds the values it was created with."""

    __slots__ = ("entity_data",)

    def __init__(
        self, entity_type: str, entity_key: Mapping[str, Any], entity_data: Mapping[str, Any]
    ) -> None:
        super().__init__(entity_type, entity_key)
        self.entity_data = dict(entity_data)

    def __repr__(self) -> str:
        return f"<CreateEntityOperation {self.entity_type} {list(self.entity_key.values())}>"


class UpdateEntityOperation(Operation):
    """One attribute of an entity changed from *old_value* to *new_value*."""

    __slots__ = ("attribute_name", "old_value", "new_value")

    def __init__(
        self, entity_type: Any, entity_key: Any, attribute_name: str, old_value: Any, new_value: Any
    ) -> None:
        super().__init__(entity_type, entity_key)
        self.attribute_name = attribute_name
        self.old_value = old_value
        self.new_value = new_value

    def __repr__(self) -> str:
        return (
            f"<UpdateEntityOperation {self.entity_type} {list(self.entity_key.values())} "
            f"{self.attribute_name}>"
        )


class DeleteEntityOperation(Operation):
    """An entity marked for deletion."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<DeleteEntityOperation {self.entity_type} {list(self.entity_key.values())}>"


class Operations:
    """An ordered, thread-safe list of recorded operations."""

    def __init__(self) -> None:
        self._operations: list[Operation] = []
        self._lock = threading.Lock()

    def push(self, *operations: Operation) -> None:
        with self._lock:
            self._operations.extend(operations)

    def pop(self) -> Operation:
        with self._lock:
            return self._operations.pop()

    def clear(self) -> None:
        with self._lock:
            self._operations.clear()

    def snapshot(self) -> list[Operation]:
        with self._lock:
            return list(self._operations)

    def __len__(self) -> int:
        return len(self._operations)

    def __bool__(self) -> bool:
        return bool(self._operations)

    def __iter__(self) -> Iterator[Operation]:
        return iter(self.snapshot())

    def __repr__(self) -> str:
        return f"<Operations {len(self)}>"


class UnitOfWork:
    """One thread's pending changes: its recorded operations and what it changed locally.

    A Session shared between threads (the daemon's plugin workers) gives each thread its
    own unit, as SQLAlchemy's ``scoped_session`` gives each thread its own Session, so
    that one thread's ``commit()`` or ``rollback()`` never sends or throws away another
    thread's half-made changes.  The unit only *records*; what committing or rolling
    back means for the shared entities' values is decided by
    :class:`reviewd.api.unit_of_work.UnitsOfWork`.  It is read and changed under the
    Session's lock.
    """

    __slots__ = ("operations", "entities", "names", "_thread", "__weakref__")

    def __init__(self, thread: threading.Thread | None = None) -> None:
        self.operations = Operations()
        #: ``id(entity) -> entity`` for every entity this thread created, changed or
        #: deleted, in first-touch order (the order of ``session.created`` etc.).
        self.entities: dict[int, Any] = {}
        #: ``id(entity) -> names`` of the attributes whose local value this thread set.
        self.names: dict[int, set[str]] = {}
        self._thread = weakref.ref(thread or threading.current_thread())

    def touch(self, entity: Any, name: str | None = None) -> None:
        """Note that this thread changed *entity* (and its attribute *name*)."""
        key = id(entity)
        if key not in self.entities:
            self.entities[key] = entity
        if name is not None:
            names = self.names.get(key)
            if names is None:
                self.names[key] = {name}
            else:
                names.add(name)

    def clear(self) -> None:
        """Forget everything recorded (after a commit or a rollback)."""
        self.operations.clear()
        self.entities.clear()
        self.names.clear()

    @property
    def pending(self) -> bool:
        """Whether anything is recorded (operations or local changes)."""
        return bool(self.operations) or bool(self.entities)

    @property
    def thread_alive(self) -> bool:
        thread = self._thread()
        return thread is not None and thread.is_alive()

    @property
    def thread_name(self) -> str:
        thread = self._thread()
        return thread.name if thread is not None else "(ended)"

    def __repr__(self) -> str:
        return (
            f"<UnitOfWork thread={self.thread_name!r} operations={len(self.operations)} "
            f"entities={len(self.entities)}>"
        )


def _values(value: Any) -> Iterable[Any]:
    if isinstance(value, (list, tuple)):
        return value
    return (value,)


def optimise(
    operations: Iterable[Operation],
    identity_of: Callable[[Any], Identity | None] = lambda value: None,
    same: Callable[[Any, Any], bool] | None = None,
) -> list[dict[str, Any]]:
    """Return the optimised wire batch (list of payload dicts) for *operations*.

    *identity_of(value)* returns the identity of an entity value (or None for plain
    values) so that references to entities created in the same batch keep their order.
    *same(a, b)* decides whether an update ended where it started (default ``is`` for
    objects with identity, ``==`` otherwise).
    """
    operations = list(operations)
    created = {op.identity for op in operations if isinstance(op, CreateEntityOperation)}
    deleted = {op.identity for op in operations if isinstance(op, DeleteEntityOperation)}
    vanished = created & deleted
    if same is None:
        same = _same

    batch: list[dict[str, Any]] = []
    latest: dict[Identity, int] = {}  # identity -> index of its latest create/update
    created_at: dict[Identity, int] = {}  # identity -> index of its create payload
    # (identity, attribute) -> the first old value of its updates, the index of the
    # payload holding its latest update, and the value its create payload was given.
    originals: dict[tuple[Identity, str], Any] = {}
    placed: dict[tuple[Identity, str], int] = {}
    created_with: dict[tuple[Identity, str], Any] = {}

    for op in operations:
        identity = op.identity
        if identity in vanished:
            continue
        if isinstance(op, CreateEntityOperation):
            data = {"__entity_type__": op.entity_type}
            # A value left NOT_SET means "let the server choose" (ftrack_api drops it).
            data.update(
                (name, value) for name, value in op.entity_data.items() if value is not NOT_SET
            )
            batch.append(
                {
                    "action": "create",
                    "entity_type": op.entity_type,
                    "entity_key": list(op.entity_key.values()),
                    "entity_data": data,
                }
            )
            latest[identity] = created_at[identity] = len(batch) - 1
            for name, value in data.items():
                created_with[(identity, name)] = value
        elif isinstance(op, UpdateEntityOperation):
            if identity in deleted:
                continue
            key = (identity, op.attribute_name)
            # Only the latest update of an attribute is sent, as with ftrack_api: an
            # earlier one is withdrawn (a create payload gets its own value back).
            earlier = placed.pop(key, None)
            if earlier is not None:
                earlier_data = batch[earlier]["entity_data"]
                if batch[earlier]["action"] == "create" and key in created_with:
                    earlier_data[op.attribute_name] = created_with[key]
                else:
                    earlier_data.pop(op.attribute_name, None)
            originals.setdefault(key, op.old_value)
            # Folded into the entity's create/update only when that is the last payload
            # (ftrack_api's rule): the server applies changes in the order they were made.
            target = latest.get(identity)
            if target is None or target != len(batch) - 1:
                batch.append(
                    {
                        "action": "update",
                        "entity_type": op.entity_type,
                        "entity_key": list(op.entity_key.values()),
                        # The type repeated in the data, as ftrack_api sends it.
                        "entity_data": {"__entity_type__": op.entity_type},
                    }
                )
                target = len(batch) - 1
                latest[identity] = target
            payload = batch[target]
            if op.new_value is NOT_SET and payload["action"] == "create":
                payload["entity_data"].pop(op.attribute_name, None)
            else:
                payload["entity_data"][op.attribute_name] = op.new_value
            placed[key] = target
        elif isinstance(op, DeleteEntityOperation):
            latest.pop(identity, None)
            batch.append(
                {
                    "action": "delete",
                    "entity_type": op.entity_type,
                    "entity_key": list(op.entity_key.values()),
                }
            )

    # An attribute updated back to where it started needs no update at all.
    for key, index in placed.items():
        payload = batch[index]
        if payload["action"] != "update":
            continue
        data = payload["entity_data"]
        name = key[1]
        if name in data and same(data[name], originals[key]):
            del data[name]
    return [
        payload
        for payload in batch
        if payload is not None
        and not (payload["action"] == "update" and len(payload["entity_data"]) <= 1)
    ]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=False))
    if type(a) in (str, int, float, bool, type(None)) and type(b) is type(a):
        return bool(a == b)
    if hasattr(a, "__ftrack_wire__") or hasattr(b, "__ftrack_wire__"):
        return a is b
    try:
        return bool(a == b) and type(a) is type(b)
    except Exception:
        return False


class OperationPayload(MutableMapping[str, Any]):
    """One operation of a batch sent to ``/api`` (ftrack_api's ``session.OperationPayload``).

    A mapping like the dict it wraps; encoded (``Session.encode``, the transport) as that
    dict, entities inside it as references.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._data: dict[str, Any] = dict(*args, **kwargs)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._data[key] = value

    def __delitem__(self, key: str) -> None:
        del self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"<OperationPayload {self._data!r}>"

    def __ftrack_wire__(self) -> dict[str, Any]:
        return self._data
