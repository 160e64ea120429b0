"""Entities: the base class (``base``), the per-type classes built from the server's
schemas (``factory``) and the helpers ftrack_api adds to some types (``user``,
``note``, ``project_schema``, ``asset_version``, ``component``, ``job``, ``location``).

The names below are re-exported so ``from reviewd.api.entity import Entity`` keeps
working for code written before the package existed.
"""

from reviewd.api.entity.base import (
    CREATED,
    DELETED,
    MODIFIED,
    Entity,
    creation_values,
    identity,
    primary_key,
    record_update,
    state,
)

__all__ = [
    "CREATED",
    "DELETED",
    "MODIFIED",
    "Entity",
    "creation_values",
    "identity",
    "primary_key",
    "record_update",
    "state",
]
