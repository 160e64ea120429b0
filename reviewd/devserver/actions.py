"""The ``/api`` actions beyond create/update/delete/query that clients rely on.

``get_upload_metadata`` and ``encode_media`` (files in the ``ftrack.server`` location),
``get_widget_url`` (a page of the server's own), and the ``api_key`` reset of
``reset_remote``.  Each validates its input before writing, and writes through the
executor's own create path, so the batch stays atomic and ``ftrack.update`` events
report what changed.
"""

from __future__ import annotations

import json
import secrets
import uuid
from typing import TYPE_CHECKING, Any

from reviewd.devserver import errors
from reviewd.devserver.errors import ApiError, register_secret
from reviewd.devserver.files import FileStore, FileStoreError, widget_url
from reviewd.devserver.values import now_text

if TYPE_CHECKING:
    from reviewd.devserver.operations import BatchExecutor
    from reviewd.devserver.updates import Change

SERVER_LOCATION_ID = "3a372bde-05bc-11e4-8908-20c9d081909b"
# What encode_media "produces": the source bytes under the names ftrack's review
# player looks for (no transcoding happens; see docs/devserver.md).
ENCODE_OUTPUTS = (("ftrackreview-mp4", "mp4", ".mp4"), ("ftrackreview-image", "image", ".jpg"))


def _files(executor: BatchExecutor) -> FileStore:
    if executor.files is None:
        raise ApiError("ServerError", "This server has no file store.", status=500)
    return executor.files


def _component(executor: BatchExecutor, component_id: Any) -> dict:
    component_type = executor.model.get("Component")
    if not isinstance(component_id, str) or component_type is None:
        raise errors.validation("component_id must be the id of a component.")
    row = executor.store.get_row(component_type, [component_id])
    if row is None:
        raise errors.not_found("Component", [component_id])
    return row


def get_upload_metadata(executor: BatchExecutor, operation: dict) -> dict:
    """Where to PUT a component's bytes.

    The component need not be committed yet: the official client uploads a new
    component's data before the commit that creates it, as real servers allow.
    """
    component_id = operation.get("component_id")
    if not isinstance(component_id, str) or not component_id:
        raise errors.validation("component_id must be the id of a component.")
    file_name = operation.get("file_name")
    if not isinstance(file_name, str) or not file_name:
        raise errors.validation("file_name must be a non-empty string.")
    size = operation.get("file_size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise errors.validation("file_size must be a non-negative integer.")
    try:
        return _files(executor).upload_metadata(component_id, file_name)
    except FileStoreError as exc:
        raise errors.validation(str(exc)) from None


def get_widget_url(executor: BatchExecutor, operation: dict) -> dict:
    name = operation.get("name")
    if not isinstance(name, str) or not name:
        raise errors.validation("name must name a widget, such as 'info' or 'tasks'.")
    entity_type_name = operation.get("entity_type")
    entity_id = None
    if entity_type_name is not None:
        entity_type = executor.model.get(entity_type_name)
        if entity_type is None:
            raise errors.unknown_type(entity_type_name)
        key = operation.get("entity_key")
        key = key if isinstance(key, list) else [key]
        if len(key) != len(entity_type.primary_key) or not all(isinstance(k, str) for k in key):
            raise errors.validation(
                f"entity_key must list the primary key {entity_type.primary_key} of "
                f"{entity_type.id} as strings."
            )
        if executor.store.get_row(entity_type, key) is None:
            raise errors.not_found(entity_type.id, key)
        entity_id = str(key[0])
    url = widget_url(_files(executor), name, entity_type_name, entity_id, operation.get("theme"))
    return {"widget_url": url}


def encode_media(
    executor: BatchExecutor, operation: dict, user_id: str | None, changes: list[Change]
) -> dict:
    """Create a finished Job whose outputs are copies of the source component's bytes."""
    source = _component(executor, operation.get("component_id"))
    files = _files(executor)
    if not files.exists(source["id"]):
        raise errors.validation(
            f"Component {source['id']} has no data in the ftrack.server location to encode."
        )
    version_id = operation.get("version_id")
    if version_id is not None:
        version_type = executor.model.get("AssetVersion")
        if version_type is None or executor.store.get_row(version_type, [version_id]) is None:
            raise errors.not_found("AssetVersion", [version_id])
    keep_original = bool(operation.get("keep_original"))
    job_id = str(uuid.uuid4())
    outputs = []
    for name, fmt, file_type in ENCODE_OUTPUTS:
        component_id = str(uuid.uuid4())
        data = {
            "id": component_id,
            "name": name,
            "file_type": file_type,
            "size": source.get("size") or 0,
        }
        if version_id is not None:
            data["version_id"] = version_id
        _create(executor, "FileComponent", data, user_id, changes)
        files.copy(source["id"], component_id)
        _create(
            executor,
            "ComponentLocation",
            {
                "id": str(uuid.uuid4()),
                "component_id": component_id,
                "location_id": SERVER_LOCATION_ID,
                "resource_identifier": component_id,
            },
            user_id,
            changes,
        )
        outputs.append({"component_id": component_id, "format": fmt})
    job_data = {
        "output": outputs,
        "source_component_id": source["id"],
        "keep_original": keep_original,
    }
    _create(
        executor,
        "Job",
        {
            "id": job_id,
            "type": "encode_media",
            "status": "done",
            "data": json.dumps(job_data),
            "finished_at": {"__type__": "datetime", "value": now_text()},
        },
        user_id,
        changes,
    )
    if executor.model.get("JobComponent") is not None:
        for output in outputs:
            _create(
                executor,
                "JobComponent",
                {"job_id": job_id, "component_id": output["component_id"]},
                user_id,
                changes,
            )
    return {"job_id": job_id}


def reset_api_key(executor: BatchExecutor, user_row: dict) -> dict:
    """A fresh API key for a user; the old one stops working at once."""
    username = user_row.get("username")
    if not username:
        raise errors.validation("This user has no username to hold an API key.")
    key = executor.store.set_api_key(username, secrets.token_hex(16))
    register_secret(key)
    return {"api_key": key}


def _create(
    executor: BatchExecutor, entity_type: str, data: dict, user_id: str | None, changes: list
) -> dict:
    schema_type = executor.model.get(entity_type)
    if schema_type is None:
        raise errors.unknown_type(entity_type)
    kept = {k: v for k, v in data.items() if k in schema_type.attributes}
    operation = {
        "action": "create",
        "entity_type": entity_type,
        "entity_key": [kept.get(k) for k in schema_type.primary_key],
        "entity_data": {"__entity_type__": entity_type, **kept},
    }
    return executor.create(operation, user_id, changes)
