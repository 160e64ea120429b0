"""Every thread's unit of work, and who holds which local value of a shared entity.

A Session built with ``per_thread_operations=True`` (the daemon's, shared by its worker
threads) gives each thread its own :class:`~reviewd.api.operation.UnitOfWork` (see
"Threads" in :mod:`reviewd.api.session`); by default, as in ftrack_api, every thread
shares one.  Either way the entities are shared: one object per server entity, whose ``_local`` dict holds the
pending values of *all* threads.  :class:`UnitsOfWork` is the bookkeeping that makes
per-thread commit and rollback possible on shared objects:

- *claims*: for each ``(entity, attribute)`` the stack of threads that set a local value,
  latest last (the value read).  Committing or rolling back one thread removes only its
  claim; the next thread's value comes back as the local value.
- *creators* and *deleters*: which thread created or deleted an entity, so that only that
  thread's commit sends it and only its rollback undoes it.

It records what happened and applies a finished commit or a rollback to the entities'
values and states; it sends nothing (the Session does) and owns no identity map (the
caller passes *forget*, which drops an entity from it).  Everything here runs under the
Session's lock, handed in at construction.
"""

from __future__ import annotations

import threading
import types
from collections.abc import Callable
from typing import Any

from reviewd.api.entity.base import _NO_LOCAL, Entity
from reviewd.api.operation import (
    CreateEntityOperation,
    DeleteEntityOperation,
    UnitOfWork,
    UpdateEntityOperation,
)
from reviewd.api.symbol import CREATED, DELETED, MODIFIED, NOT_SET

#: Marks "this unit held no local value for the attribute" in :meth:`UnitsOfWork.release`.
_UNCLAIMED = object()


def _key_of(entity: Entity) -> dict[str, Any]:
    return dict(zip(entity.primary_key_attributes, entity.primary_key_values(), strict=False))


class UnitsOfWork:
    """The units of work of every thread of one Session, and their claims on entities."""

    def __init__(self, lock: threading.RLock, per_thread: bool = True) -> None:
        self._lock = lock
        # Shared (ftrack_api's model): one holder for every thread, so one unit.
        self._thread: Any = threading.local() if per_thread else types.SimpleNamespace()
        self._per_thread = per_thread
        # A unit is listed while its thread lives or while it holds unsaved work, so
        # that close() can warn about the work of threads that ended.
        self._units: list[UnitOfWork] = []
        # (id(entity), attribute) -> [(unit, value), ...]: which threads hold a local
        # value for the attribute, latest last (the one read).  Entities are kept alive
        # by their units while listed here, so their ids stay valid.
        self._claims: dict[tuple[int, str], list[tuple[UnitOfWork, Any]]] = {}
        self._creators: dict[int, UnitOfWork] = {}  # id(entity) -> unit that created it
        self._deleters: dict[int, UnitOfWork] = {}  # id(entity) -> unit that deleted it

    # -------------------------------------------------------------- the thread's unit
    def current(self) -> UnitOfWork | None:
        """The calling thread's unit of work, or None if it never changed anything."""
        return getattr(self._thread, "unit", None)

    def unit(self) -> UnitOfWork:
        """The calling thread's unit of work, created on first use."""
        unit: UnitOfWork | None = getattr(self._thread, "unit", None)
        if unit is None:
            with self._lock:
                made: UnitOfWork | None = getattr(self._thread, "unit", None)
                if made is not None:  # shared: another thread made it meanwhile
                    return made
                unit = UnitOfWork()
                # Units of ended threads with nothing left to save are dropped here, so
                # that short-lived threads do not accumulate.
                self._units = [
                    u for u in self._units if u.thread_alive or u.pending or not self._per_thread
                ]
                self._units.append(unit)
                self._thread.unit = unit
        return unit

    def touched(self, state: Any, owned: str | None = None) -> list[Entity]:
        """This thread's changed entities in *state*; *owned* ``"created"``/``"deleted"``
        keeps only those this thread created or deleted."""
        unit = self.current()
        if unit is None:
            return []
        owners = {"created": self._creators, "deleted": self._deleters}.get(owned or "")
        with self._lock:
            return [
                entity
                for key, entity in unit.entities.items()
                if entity._state is state and (owners is None or owners.get(key) is unit)
            ]

    # -------------------------------------------------------------- recording changes
    def record_created(self, entity: Entity, values: dict[str, Any], record: bool) -> None:
        """*entity* was created with *values* by this thread (caller holds the lock)."""
        unit = self.unit()
        cls = entity.__class__
        self._creators[id(entity)] = unit
        unit.touch(entity)
        for name, value in values.items():
            self.claim(unit, entity, name, value)
        if record:
            unit.operations.push(
                CreateEntityOperation(
                    cls.entity_type,
                    {name: values[name] for name in cls.primary_key_attributes},
                    dict(values),
                )
            )

    def record_update(self, entity: Entity, name: str, value: Any, record: bool) -> None:
        """Set *entity*'s local value of *name* for this thread and record the update."""
        unit = self.unit()
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
            self.claim(unit, entity, name, value)
            if record:
                unit.operations.push(
                    UpdateEntityOperation(
                        entity.entity_type,
                        _key_of(entity),
                        name,
                        old,
                        value,
                    )
                )

    def record_delete(self, entity: Entity, record: bool) -> None:
        """Mark *entity* deleted by this thread and record the deletion."""
        unit = self.unit()
        with self._lock:
            if record:
                unit.operations.push(DeleteEntityOperation(entity.entity_type, _key_of(entity)))
            unit.touch(entity)
            self._deleters[id(entity)] = unit
            entity._state = DELETED

    def claim(self, unit: UnitOfWork, entity: Entity, name: str, value: Any) -> None:
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

    # -------------------------------------------------------------- commit, rollback
    def committed(self, unit: UnitOfWork, forget: Callable[[Entity], None]) -> None:
        """Apply *unit*'s successful commit to its entities; clear it (under the lock)."""
        creators, deleters = self._creators, self._deleters
        for key, entity in list(unit.entities.items()):
            if deleters.get(key) is unit:
                forget(entity)
                self.release(unit, entity, commit=False, detached=True)
                del deleters[key]
                if creators.get(key) is unit:
                    del creators[key]
                continue
            self.release(unit, entity, commit=True)
            if creators.get(key) is unit:
                del creators[key]
            self.settle(entity)
        unit.clear()

    def rolled_back(self, unit: UnitOfWork, forget: Callable[[Entity], None]) -> None:
        """Undo *unit*'s local changes; detach what it created; clear it (under the lock)."""
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
                forget(entity)
                self.release(unit, entity, commit=False, detached=True)
                entity._remote = dict(entity._local)
                entity._local = _NO_LOCAL
                entity._state = DELETED
                continue
            self.release(unit, entity, commit=False)
            self.settle(entity, undelete=undelete)
        unit.clear()

    def release(
        self, unit: UnitOfWork, entity: Entity, *, commit: bool, detached: bool = False
    ) -> None:
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

    def settle(self, entity: Entity, undelete: bool = False) -> None:
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

    def discard_all(self) -> tuple[int, int]:
        """Forget every thread's work (closing); return (operations, threads with some)."""
        with self._lock:
            units, self._units = list(self._units), []
            pending = sum(len(unit.operations) for unit in units)
            threads = sum(1 for unit in units if unit.operations)
            for unit in units:
                unit.clear()
            self._claims.clear()
            self._creators.clear()
            self._deleters.clear()
        return pending, threads
