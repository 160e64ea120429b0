"""Checking that each result of a batch has the shape its action promises.

PROTOCOL.md section 2 says what a server answers for each action; a proxy, a gateway or
a half-upgraded server may answer something else.  Reading such an answer blindly ends
in a ``KeyError`` or ``TypeError`` far from the cause (or, worse, in a commit that
silently forgets what it sent), so the Session checks each answer here first and raises
one of :mod:`reviewd.api.exception`'s errors naming the action, the result and what was
wrong.  The result *count* is checked by the transport (one result per operation).

Pure functions over parsed data; entities are recognised by class only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from reviewd.api.entity import Entity
from reviewd.api.exception import (
    ServerCompatibilityError,
    ServerError,
    UnrecognisedEntityTypeError,
    redact,
)
from reviewd.api.transport import server_error


def _where(server_url: str) -> str:
    return f" at {server_url}" if server_url else ""


def _shape(value: Any) -> str:
    """A short description of what arrived instead (no server text beyond 60 chars)."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def server_information(result: Any, server_url: str = "") -> dict[str, Any]:
    """The ``query_server_information`` result, refused unless it is an object."""
    if not isinstance(result, dict):
        raise ServerCompatibilityError(
            redact(
                f"The ftrack server{_where(server_url)} answered query_server_information with "
                f"a {_shape(result)} where an object was expected; is this an ftrack server?"
            )
        )
    return result


def query_page(result: Any, server_url: str = "") -> tuple[list[Any], int | None]:
    """``(entities, next offset)`` of a merged ``query`` result, or a clear error."""
    where = _where(server_url)
    if not isinstance(result, dict):
        raise ServerError(
            redact(
                f"The ftrack server{where} answered a query with a {_shape(result)}: the "
                "result is not an object."
            )
        )
    if "data" not in result:
        raise ServerError(
            redact(
                f"The ftrack server{where} answered a query with a result without 'data' "
                f"(keys: {', '.join(map(str, result)) or 'none'})."
            )
        )
    entities = result["data"]
    if entities is None:
        entities = []
    if not isinstance(entities, list):
        raise ServerError(
            redact(
                f"The ftrack server{where} answered a query with 'data' that is a "
                f"{_shape(entities)}, not a list of entities."
            )
        )
    for item in entities:
        if not isinstance(item, Entity):
            raise ServerError(
                redact(
                    f"The ftrack server{where} answered a query with an item that is not an "
                    f"entity (no __entity_type__): {_shape(item)}."
                )
            )
    return entities, _next_offset(result.get("metadata"), where)


def _next_offset(metadata: Any, where: str) -> int | None:
    following = metadata.get("next") if isinstance(metadata, dict) else metadata
    offset = following.get("offset") if isinstance(following, dict) else following
    if not metadata or not following or offset is None:
        return None
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ServerError(
            redact(
                f"The ftrack server{where} answered a query with metadata whose next page "
                f"offset is not a number: {_shape(metadata)}."
            )
        )
    return offset


def changes(
    batch: Sequence[Mapping[str, Any]],
    results: Sequence[Any],
    types: Mapping[str, type],
    server_url: str = "",
) -> None:
    """Check a commit's results before anything local changes.

    Each result must be an object with ``data``; a created or updated entity must be of
    a type the server described, so that merging it afterwards cannot fail half-way.
    """
    where = _where(server_url)
    for index, (payload, result) in enumerate(zip(batch, results, strict=True), start=1):
        action = payload.get("action")
        if not isinstance(result, dict):
            raise ServerError(
                redact(
                    f"The ftrack server{where} answered result {index} of the commit "
                    f"({action}) with a {_shape(result)}: it is not an object. Nothing was "
                    "changed locally; the operations are still recorded."
                )
            )
        if "data" not in result:
            if "exception" in result:
                raise server_error(result, server_url)
            raise ServerError(
                redact(
                    f"The ftrack server{where} answered result {index} of the commit "
                    f"({action}) without 'data'. Nothing was changed locally; the operations "
                    "are still recorded."
                )
            )
        data = result["data"]
        if action in ("create", "update") and isinstance(data, dict):
            entity_type = data.get("__entity_type__")
            if isinstance(entity_type, str) and entity_type not in types:
                raise UnrecognisedEntityTypeError(
                    redact(
                        f"The ftrack server{where} answered result {index} of the commit "
                        f"({action}) with an entity of unknown type {entity_type!r}. Nothing "
                        "was changed locally; the operations are still recorded."
                    )
                )
