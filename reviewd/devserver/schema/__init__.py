"""The embedded server's schema: its own definition file, loading, and the schema hash.

The schema list is what ``query_schemas`` returns, verbatim, so a client builds its
entity types from exactly the document the server stores by.  ``--schema FILE`` swaps
in another list (for example a real server's, saved to JSON) without code changes.
"""

from __future__ import annotations

import hashlib
import json
import os

from reviewd.devserver.schema.model import Attribute, EntityType, Model, SchemaError, build_model

DEFAULT_SCHEMA_PATH = os.path.join(os.path.dirname(__file__), "reviewd_schemas.json")

__all__ = [
    "DEFAULT_SCHEMA_PATH",
    "Attribute",
    "EntityType",
    "Model",
    "SchemaError",
    "build_model",
    "load_schemas",
    "schema_hash",
]


def load_schemas(path: str | None = None) -> list[dict]:
    """Read a schema list (ftrack's format) from *path*, or the server's own one.

    Raises :class:`SchemaError` naming the file when it is not a list of schema objects,
    so ``--schema`` with a wrong file fails at start-up with one clear line.
    """
    path = path or DEFAULT_SCHEMA_PATH
    try:
        with open(path, encoding="utf-8") as handle:
            schemas = json.load(handle)
    except OSError as exc:
        raise SchemaError(f"cannot read schema file {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise SchemaError(f"schema file {path} is not valid JSON: {exc}") from None
    if not isinstance(schemas, list) or not all(
        isinstance(item, dict) and isinstance(item.get("id"), str) for item in schemas
    ):
        raise SchemaError(f"schema file {path} must hold a JSON list of schema objects with ids")
    return schemas


def schema_hash(schemas: list[dict]) -> str:
    """The hash a real server reports: MD5 of the sorted-keys JSON dump of the list.

    Clients compare it with the hash of their cached copy, so it must be computed with
    ``json.dumps``' default separators exactly as they compute theirs.
    """
    return hashlib.md5(json.dumps(schemas, sort_keys=True).encode("utf-8")).hexdigest()
