"""Schemas: fetch them (or read them from a cache file named by their hash) and build types.

The cache is one JSON file per schema hash, ``reviewd-schemas-<schema_hash>.json`` in the
cache folder.  Naming the file by the server's ``schema_hash`` means a start with a warm
cache is one ``open``: no request, no re-hashing.  A changed hash simply misses, the
schemas are fetched and written under the new name, and older files are removed.  A
corrupt, unreadable or unwritable cache is logged and ignored — never fatal: the server
is always the source of truth.

Types are built cheaply: one small class per schema, attribute descriptions are only
made when something introspects them (see :meth:`reviewd.api.entity.Entity._attributes`).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterable
from typing import Any, TypeGuard

from reviewd.api.entity import Entity
from reviewd.api.exception import ServerCompatibilityError

logger = logging.getLogger(__name__)

CACHE_PREFIX = "reviewd-schemas-"
CACHE_SUFFIX = ".json"


def default_cache_folder() -> str:
    """The user cache directory for reviewd (same places platformdirs would choose).

    Computed here rather than with platformdirs to keep start-up imports light.
    """
    home = os.path.expanduser("~")
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.join(home, "AppData", "Local")
        return os.path.join(base, "reviewd", "Cache")
    if sys.platform == "darwin":
        return os.path.join(home, "Library", "Caches", "reviewd")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(home, ".cache")
    return os.path.join(base, "reviewd")


def cache_file(folder: str, schema_hash: str) -> str:
    safe = "".join(c for c in str(schema_hash) if c.isalnum() or c in "-_")
    return os.path.join(folder, f"{CACHE_PREFIX}{safe}{CACHE_SUFFIX}")


def read_cached(folder: str, schema_hash: str | None) -> list[dict[str, Any]] | None:
    """Return the schemas cached for *schema_hash*, or None (missing, corrupt, no hash)."""
    if not schema_hash:
        return None
    path = cache_file(folder, schema_hash)
    try:
        with open(path, "rb") as handle:
            schemas = json.loads(handle.read())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        logger.warning("Ignoring unreadable schema cache %s: %s", path, exc)
        return None
    if not _looks_like_schemas(schemas):
        logger.warning("Ignoring schema cache %s: it does not hold a list of schemas.", path)
        return None
    return schemas


def write_cached(folder: str, schema_hash: str | None, schemas: list[dict[str, Any]]) -> str | None:
    """Write *schemas* for *schema_hash* atomically; remove stale files. Never raises."""
    if not schema_hash:
        return None
    path = cache_file(folder, schema_hash)
    try:
        os.makedirs(folder, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(prefix=".schemas-", dir=folder)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                json.dump(schemas, handle, separators=(",", ":"))
            os.replace(temporary, path)
        except BaseException:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise
    except (OSError, TypeError, ValueError) as exc:
        logger.warning("Could not write the schema cache in %s: %s", folder, exc)
        return None
    try:
        for name in os.listdir(folder):
            if (
                name.startswith(CACHE_PREFIX)
                and name.endswith(CACHE_SUFFIX)
                and os.path.join(folder, name) != path
            ):
                os.unlink(os.path.join(folder, name))
    except OSError as exc:
        logger.debug("Could not remove stale schema caches in %s: %s", folder, exc)
    return path


def _looks_like_schemas(value: Any) -> TypeGuard[list[dict[str, Any]]]:
    """A list of schema objects, each with a string ``id``, a ``properties`` object and
    a list ``primary_key`` where present: what building types and attributes reads."""
    return isinstance(value, list) and all(
        isinstance(item, dict)
        and isinstance(item.get("id"), str)
        and isinstance(item.get("properties", {}), dict)
        and isinstance(item.get("primary_key") or [], list)
        for item in value
    )


def load_schemas(
    call: Callable[[list[dict[str, Any]]], list[Any]],
    server_information: dict[str, Any],
    cache_folder: str | None,
) -> list[dict[str, Any]]:
    """Schemas for the server: from the cache file when its hash matches, else fetched."""
    schema_hash = server_information.get("schema_hash")
    if cache_folder:
        cached = read_cached(cache_folder, schema_hash)
        if cached is not None:
            logger.debug("Schemas read from cache for hash %s.", schema_hash)
            return cached
    schemas = call([{"action": "query_schemas"}])[0]
    if not _looks_like_schemas(schemas):
        raise ServerCompatibilityError(
            "The server answered query_schemas with something that is not a list of schemas."
        )
    if cache_folder:
        write_cached(cache_folder, schema_hash, schemas)
    return schemas


def build_type(
    schema: dict[str, Any], base: type | None = None, bases: tuple[type, ...] | None = None
) -> type[Entity]:
    """Build the entity class for one *schema* (cheap: no attribute objects yet).

    Without *base*/*bases* the factory picks them (ftrack's helper classes for
    users, notes, locations, ...).
    """
    name = schema["id"]
    if bases is None:
        if base is None:
            from reviewd.api.entity.factory import bases_for

            bases = bases_for(schema)
        else:
            bases = (base,)
    namespace = {
        "__slots__": (),
        "__module__": "reviewd.api.entity.base",
        "__qualname__": name,
        "entity_type": name,
        "primary_key_attributes": tuple(schema.get("primary_key") or ("id",)),
        "default_projections": tuple(schema.get("default_projections") or ()),
        "_schema": schema,
        "_attributes_cache": None,
    }
    return type(str(name), bases, namespace)


def build_types(
    schemas: Iterable[dict[str, Any]],
    construct: Callable[[dict[str, Any]], type | None] | None = None,
) -> dict[str, type[Entity]]:
    """Build every entity type; *construct(schema)* may supply a class (plugins)."""
    types: dict[str, type] = {}
    for schema in schemas:
        cls = construct(schema) if construct is not None else None
        if cls is None:
            cls = build_type(schema)
        elif not (isinstance(cls, type) and issubclass(cls, Entity)):
            logger.warning(
                "Ignoring the class a plugin built for %s: it does not derive from "
                "reviewd.api.entity.Entity.",
                schema.get("id"),
            )
            cls = build_type(schema)
        types[schema["id"]] = cls
    return types


def check_server_version(version: str | None, minimum: tuple[int, ...] = (3, 3, 11)) -> None:
    """Refuse servers older than *minimum*; ``dev`` and unparseable versions pass."""
    if not version or version == "dev":
        return
    parts = []
    for piece in str(version).split("."):
        digits = "".join(c for c in piece if c.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    if parts and tuple(parts) < minimum:
        raise ServerCompatibilityError(
            f"The ftrack server is version {version}; reviewd needs "
            f"{'.'.join(map(str, minimum))} or newer."
        )
