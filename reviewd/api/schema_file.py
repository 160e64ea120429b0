"""ftrack_api's single-file schema cache methods on the session.

reviewd's own cache (:mod:`reviewd.api.schema`) keeps one file per schema hash in
a folder; ftrack_api's methods below take the path of one JSON file instead,
and scripts and tests written for ftrack_api call them by these names.  The
hash is the MD5 of the schemas as sorted-key JSON, the same digest the server
reports as ``schema_hash``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from typing import TYPE_CHECKING, Any, Literal

_log = logging.getLogger("reviewd.api.schema_file")


def schema_hash(schemas: Any) -> str:
    return hashlib.md5(json.dumps(schemas, sort_keys=True).encode("utf-8")).hexdigest()  # noqa: S324


def _is_cache_file(path: Any) -> bool:
    return isinstance(path, str) and path.endswith(".json")


class SchemaCacheFile:
    if TYPE_CHECKING:  # what this mixin uses of the Session it is mixed into
        _server_information: dict[str, Any]

        def _call(self, batch: list[dict[str, Any]], merge: bool = False) -> list[Any]: ...
        def call(self, data: list[dict[str, Any]]) -> list[Any]: ...

    """Mixed into ``Session``."""

    def _read_schemas_from_cache(self, schema_cache_path: str) -> tuple[list[Any], str]:
        """``(schemas, hash)`` from the file; ``ValueError`` when it is not JSON."""
        with open(schema_cache_path, encoding="utf-8") as handle:
            schemas = json.load(handle)
        return schemas, schema_hash(schemas)

    def _write_schemas_to_cache(self, schemas: Any, schema_cache_path: str) -> None:
        """Replace the file with *schemas* (``TypeError`` for values JSON cannot hold)."""
        import tempfile

        text = json.dumps(schemas, indent=4)
        folder = os.path.dirname(os.path.abspath(schema_cache_path))
        handle, temporary = tempfile.mkstemp(dir=folder, suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
            os.replace(temporary, schema_cache_path)
        except BaseException:
            if os.path.exists(temporary):
                os.remove(temporary)
            raise

    def _load_schemas(self, schema_cache_path: str | Literal[False] | None) -> list[Any]:
        """Schemas from the cache when its hash matches the server's, else from the
        server (then cached).  ``False`` bypasses the cache.

        A folder (reviewd's cache, one file per schema hash) is read by
        :func:`reviewd.api.schema.load_schemas`; a file path is ftrack_api's
        single-file cache.  The session's constructor comes through here, so code
        replacing ``_load_schemas`` (as ftrack_api's tests do) decides the schemas.
        """
        if schema_cache_path and not _is_cache_file(schema_cache_path):
            from reviewd.api.schema import load_schemas

            return load_schemas(self._call, self._server_information, schema_cache_path)
        local_hash = None
        schemas: list[Any] = []
        if schema_cache_path:
            try:
                schemas, local_hash = self._read_schemas_from_cache(schema_cache_path)
            except (OSError, TypeError, AttributeError, ValueError) as error:
                _log.warning("schema cache %s could not be read: %s", schema_cache_path, error)
        if local_hash != self._server_information.get("schema_hash", False):
            # Through the public call() once the session is built (callers count
            # calls); while it is being built there are no entity types to merge with.
            call = self.call if "types" in vars(self) else self._call
            schemas = call([{"action": "query_schemas"}])[0]
            if schema_cache_path:
                try:
                    self._write_schemas_to_cache(schemas, schema_cache_path)
                except (OSError, TypeError) as error:
                    _log.warning(
                        "schema cache %s could not be written: %s", schema_cache_path, error
                    )
        return schemas
