"""Fetching attributes that were not loaded, in bulk: ``populate`` and auto-population.

Reading one attribute of each entity of a result page must not cost one request per
entity.  Entities merged from one page share a *group* (``entity._group``); when one of
them misses an attribute, the whole group is populated with one query (chunked at
:data:`POPULATE_CHUNK` primary keys), and what that fetched becomes the next group, so
``for o in objects: o["version"]["status"]`` costs one query per level.  Persistent
cache layers are asked first, at most once per entity per session.

Functions over a Session (its public ``populate`` and a few private attributes); the
Session's methods of the same names delegate here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

from reviewd.api.attribute import COLLECTION, MAPPED
from reviewd.api.entity import Entity
from reviewd.api.query import QueryResult
from reviewd.api.query_text import keys_condition
from reviewd.api.symbol import CREATED

logger = logging.getLogger("reviewd.api.session")

#: How many primary keys one populate query names.
POPULATE_CHUNK = 250


def group_entities(entities: list[Any]) -> None:
    """Make *entities* populate together unless they already belong to a larger group."""
    size = len(entities)
    for entity in entities:
        group = entity._group
        if group is None or len(group) < size:
            entity._group = entities


def group_page(entities: list[Any]) -> list[Any]:
    """Group a page of merged entities: they populate missing attributes together."""
    for entity in entities:
        entity._group = entities
    return entities


def populate(
    session: Any, entities: Entity | Iterable[Entity], projections: str | Iterable[str]
) -> None:
    """Fetch *projections* for *entities* in as few queries as possible.

    Entities created locally and not yet committed are skipped: the server has nothing
    for them.  Local values are not overwritten.
    """
    if isinstance(entities, Entity):
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
            chunk = group[start : start + POPULATE_CHUNK]
            condition = keys_condition(keys, [entity.primary_key_values() for entity in chunk])
            expression = f"select {projections} from {entity_type} where {condition}"
            QueryResult(session, expression, page_size=max(len(chunk), 1)).all()


def load_from_lower(session: Any, entity: Entity, name: str) -> bool:
    """Fill *entity* from the persistent cache layers; True if *name* is now loaded.

    Each entity is looked up at most once per session: a miss, or a cached copy without
    *name*, falls through to the server.
    """
    values = entity.primary_key_values()
    identity = (entity.entity_type, *values)
    if identity in session._lower_tried:
        return False
    session._lower_tried.add(identity)
    cache_key = session.cache_key_maker.key((entity.entity_type, values))
    for _merged in cached_values(session, cache_key):
        if name in entity._remote:
            return True
    return False


def cached_values(session: Any, cache_key: Any) -> Iterator[Any]:
    """Each persistent cache layer's copy of *cache_key*, decoded (and so merged).

    A layer that fails to read is logged and skipped: a broken cache may cost a server
    request, never the caller's answer.
    """
    for cache in session._lower_caches:
        try:
            value = cache.get(cache_key)
        except KeyError:
            continue
        except Exception as exc:
            logger.warning("Could not read %s from cache %r: %s", cache_key, cache, exc)
            continue
        if isinstance(value, (str, bytes)):
            value = session._decode_merged(value)
        elif isinstance(value, Entity):
            value = session._merge_cached(value)  # decoded (detached) by a SerialisedCache
        yield value


def auto_populate(session: Any, entity: Entity, name: str) -> None:
    """Fetch *name* for *entity* and for its siblings from the same result page."""
    candidates = [entity]
    group = entity._group
    if group:
        cls = entity.__class__
        for other in group:
            if (
                other is not entity
                and other.__class__ is cls
                and other._state is None
                and name not in other._remote
            ):
                candidates.append(other)
    session.populate(candidates, name)
    if name not in entity._remote:
        # The server returned nothing for it: remember that, so reads do not loop.
        entity._remote.setdefault(name, absent_value(entity, name))
    # What was just fetched for all candidates is the next natural group.
    fetched: list[Entity] = []
    for candidate in candidates:
        value = candidate._remote.get(name)
        if isinstance(value, Entity):
            fetched.append(value)
        elif value.__class__ is list:
            fetched.extend(item for item in value if isinstance(item, Entity))
    if len(fetched) > 1:
        group_entities(fetched)


def absent_value(entity: Entity, name: str) -> Any:
    """What an attribute the server sent nothing for reads as: ``[]`` or ``None``."""
    attribute = entity._attributes().get(name)
    if attribute is not None and attribute.kind in (COLLECTION, MAPPED):
        return []
    return None
