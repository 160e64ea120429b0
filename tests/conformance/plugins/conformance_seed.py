"""pytest plugin (``-p conformance_seed``): create what the ftrack suite's conftest expects.

ftrack's suite was written against ftrack's CI server and hard-codes some of its data:
the user ``jenkins``, one project, one task, the "VFX Scheme" project schema with its
statuses and types, and at least ten users for the paging tests.  This plugin writes
them through the server's own ``POST /api`` (standard create operations, nothing
private), once, before collection — some suite modules talk to the server on import.

It uses only the standard library so it runs in the official client's venv and in
reviewd's alike, and it does not go through the client under test.
"""

from __future__ import annotations

import json
import os
import urllib.request
import uuid

JENKINS = "d07ae5d0-66e1-11e1-b5e9-f23c91df25eb"
PROJECT = "5671dcb0-66de-11e1-8e6e-f23c91df25eb"
TASK = "adb4ad6c-7679-11e2-8df2-f23c91df25eb"
VFX_SCHEME = "69cb7f92-4dbf-11e1-9902-f23c91df25eb"
# Object type ids as ftrack ships them (the schemas' classifier defaults use these).
SHOT_TYPE = "bad911de-3bd6-47b9-8b46-3476e237cb36"
ASSET_BUILD_TYPE = "4be63b64-5010-42fb-bf1f-428af9d638f0"
FOLDER_TYPE = "3c133785-51cb-11e3-980a-20c9d0831e59"
SEQUENCE_TYPE = "e5139355-61da-4c8f-9db4-3abc870166bc"

TASK_STATUSES = ["Not started", "In progress", "Awaiting approval", "Approved"]
SHOT_STATUSES = ["Normal", "Omitted", "On Hold"]
VERSION_STATUSES = ["Approved", "Pending"]
TASK_TYPES = [
    "Generic",
    "Animation",
    "Modeling",
    "Previz",
    "Lookdev",
    "Hair",
    "Cloth",
    "FX",
    "Lighting",
    "Compositing",
    "Tracking",
    "Rigging",
    "test 1",
    "test type 2",
]
ASSET_BUILD_TYPES = ["Character", "Prop", "Environment", "Matte Painting"]
EXTRA_USERS = 10

_NAMESPACE = uuid.UUID("0b7f0c55-3c6a-4a43-9a3e-6f6a3c9f1e21")
# reviewd's demo seed derives its ids from names in this namespace (reviewd.devserver.seed).
_DEMO_NAMESPACE = uuid.UUID("6f1d3c1e-7a52-4e0b-9d7e-2b1c5e4f8a90")
TASK_OBJECT_TYPE = "11c137c0-ee7e-4f9c-91c5-8c77cec22b2c"
# key, type, entity type (ftrack's table name), object type, hierarchical
CUSTOM_ATTRIBUTES = [
    ("customNumber", "number", "task", TASK_OBJECT_TYPE, False),
    ("NumberField", "number", "assetversion", None, False),
    ("versiontest", "number", "assetversion", None, False),
    ("htest", "number", "show", None, True),
    ("listbool", "boolean", "list", None, False),
    ("teststring", "text", "user", None, False),
]


def _id(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


def _create(entity_type: str, data: dict) -> dict:
    key = [data["id"]] if "id" in data else None
    operation = {
        "action": "create",
        "entity_type": entity_type,
        "entity_data": {"__entity_type__": entity_type, **data},
    }
    if key is not None:
        operation["entity_key"] = key
    return operation


def fixture_operations() -> list[dict]:
    """The create operations for the suite's fixture data, in dependency order."""
    ops: list[dict] = []
    ops.append(
        _create(
            "User",
            {
                "id": JENKINS,
                "username": "jenkins",
                "first_name": "Jenkins",
                "last_name": "CI",
                "email": "jenkins@ci.example",
                "is_active": True,
            },
        )
    )
    for number in range(EXTRA_USERS):
        name = f"conformance.user{number:02d}"
        ops.append(
            _create(
                "User",
                {
                    "id": _id("User", name),
                    "username": name,
                    "first_name": "User",
                    "last_name": f"{number:02d}",
                    "email": f"{name}@ci.example",
                    "is_active": True,
                },
            )
        )
    ops.append(
        _create("State", {"id": _id("State", "vfx"), "name": "VFX state", "short": "NOT_STARTED"})
    )
    names = dict.fromkeys(TASK_STATUSES + SHOT_STATUSES + VERSION_STATUSES)
    for sort, name in enumerate(names):
        ops.append(
            _create(
                "Status",
                {
                    "id": _id("Status", name),
                    "name": name,
                    "sort": 100 + sort,
                    "color": "#777777",
                    "is_active": True,
                    "state_id": _id("State", "vfx"),
                },
            )
        )
    for sort, name in enumerate(TASK_TYPES + ASSET_BUILD_TYPES):
        ops.append(
            _create(
                "Type",
                {
                    "id": _id("Type", name),
                    "name": name,
                    "sort": 100 + sort,
                    "color": "#777777",
                    "is_billable": True,
                },
            )
        )
    task_flow, version_flow = _id("WorkflowSchema", "task"), _id("WorkflowSchema", "version")
    ops.append(_create("WorkflowSchema", {"id": task_flow, "name": "VFX task workflow"}))
    ops.append(_create("WorkflowSchema", {"id": version_flow, "name": "VFX version workflow"}))
    for flow, statuses in ((task_flow, TASK_STATUSES), (version_flow, VERSION_STATUSES)):
        for name in statuses:
            ops.append(
                _create(
                    "WorkflowSchemaStatus",
                    {
                        "workflow_schema_id": flow,
                        "status_id": _id("Status", name),
                    },
                )
            )
    type_schema = _id("TaskTypeSchema", "vfx")
    ops.append(_create("TaskTypeSchema", {"id": type_schema, "name": "VFX task types"}))
    for name in TASK_TYPES:
        ops.append(
            _create(
                "TaskTypeSchemaType",
                {
                    "task_type_schema_id": type_schema,
                    "type_id": _id("Type", name),
                },
            )
        )
    ops.append(
        _create(
            "ProjectSchema",
            {
                "id": VFX_SCHEME,
                "name": "VFX Scheme",
                "task_workflow_schema_id": task_flow,
                "asset_version_workflow_schema_id": version_flow,
                "task_type_schema_id": type_schema,
            },
        )
    )
    for object_type in (SHOT_TYPE, ASSET_BUILD_TYPE, FOLDER_TYPE, SEQUENCE_TYPE):
        ops.append(
            _create(
                "ProjectSchemaObjectType",
                {
                    "project_schema_id": VFX_SCHEME,
                    "object_type_id": object_type,
                },
            )
        )
    for label, object_type, types in (
        ("shot", SHOT_TYPE, []),
        ("asset build", ASSET_BUILD_TYPE, ASSET_BUILD_TYPES),
        ("folder", FOLDER_TYPE, []),
        ("sequence", SEQUENCE_TYPE, []),
    ):
        schema = _id("Schema", label)
        ops.append(
            _create(
                "Schema",
                {
                    "id": schema,
                    "project_schema_id": VFX_SCHEME,
                    "type_id": object_type,
                },
            )
        )
        for sort, name in enumerate(SHOT_STATUSES):
            ops.append(
                _create(
                    "SchemaStatus",
                    {
                        "schema_id": schema,
                        "status_id": _id("Status", name),
                        "sort": sort,
                    },
                )
            )
        for sort, name in enumerate(types):
            ops.append(
                _create(
                    "SchemaType",
                    {
                        "schema_id": schema,
                        "type_id": _id("Type", name),
                        "sort": sort,
                    },
                )
            )
    ops.append(
        _create(
            "Project",
            {
                "id": PROJECT,
                "name": "python_api_tests",
                "full_name": "Python API tests",
                "status": "active",
                "is_global": False,
                "project_schema_id": VFX_SCHEME,
                "root": "",
                "context_type": "show",
            },
        )
    )
    parent = PROJECT
    for name in ("python_api", "tasks"):
        folder = _id("Folder", name)
        ops.append(
            _create(
                "Folder",
                {
                    "id": folder,
                    "name": name,
                    "parent_id": parent,
                    "project_id": PROJECT,
                    "status_id": _id("Status", "Normal"),
                    "type_id": _id("Type", "Generic"),
                },
            )
        )
        parent = folder
    ops.append(
        _create(
            "Task",
            {
                "id": TASK,
                "name": "t1",
                "parent_id": parent,
                "project_id": PROJECT,
                "status_id": _id("Status", "Not started"),
                "type_id": _id("Type", "Generic"),
            },
        )
    )
    # Custom attributes the suite reads and writes, each with one value where it reads one.
    for key, type_name, entity_type, object_type, hierarchical in CUSTOM_ATTRIBUTES:
        ops.append(
            _create(
                "CustomAttributeConfiguration",
                {
                    "id": _id("CustomAttributeConfiguration", key),
                    "key": key,
                    "label": key,
                    "type_id": _id_of_type(type_name),
                    "entity_type": entity_type,
                    "object_type_id": object_type,
                    "is_hierarchical": hierarchical,
                    "config": "{}",
                    "core": False,
                    "sort": 0,
                },
            )
        )
    # The formatter test expects jenkins to have logged time (ftrack's CI user has).
    ops.append(
        _create(
            "Timelog",
            {
                "id": _id("Timelog", "jenkins"),
                "user_id": JENKINS,
                "context_id": TASK,
                "start": {"__type__": "datetime", "value": "2026-01-05T09:00:00"},
                "duration": 3600,
                "comment": "conformance fixture",
            },
        )
    )
    ops.append(
        _create(
            "CustomAttributeValue",
            {
                "configuration_id": _id("CustomAttributeConfiguration", "customNumber"),
                "entity_id": TASK,
                "value": 7,
            },
        )
    )
    return ops


def _id_of_type(name: str) -> str:
    """Custom attribute types are server built-ins; the demo seed names them so."""
    return str(uuid.uuid5(_DEMO_NAMESPACE, f"CustomAttributeType/{name}"))


def version_value_operation(version_id: str) -> dict:
    return _create(
        "CustomAttributeValue",
        {
            "configuration_id": _id("CustomAttributeConfiguration", "NumberField"),
            "entity_id": version_id,
            "value": 3,
        },
    )


def _post(batch: list) -> object:
    server = os.environ["FTRACK_SERVER"].rstrip("/")
    request = urllib.request.Request(
        server + "/api",
        data=json.dumps(batch).encode("utf-8"),
        headers={
            "content-type": "application/json",
            "accept": "application/json",
            "ftrack-user": os.environ["FTRACK_API_USER"],
            "ftrack-api-key": os.environ["FTRACK_API_KEY"],
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        reply = json.loads(response.read())
    if isinstance(reply, dict) and "exception" in reply:
        raise RuntimeError(f"conformance seed refused: {reply['exception']}: {reply['content']}")
    return reply


def fitted(operations: list[dict], schemas: list[dict]) -> list[dict]:
    """*operations* without the types and attributes the server's schema lacks.

    A real server's schema list (``--schema``) names some things differently; what it
    does not know is left to its defaults instead of failing the whole seed.
    """
    properties = {schema["id"]: set(schema.get("properties") or {}) for schema in schemas}
    kept = []
    for operation in operations:
        known = properties.get(operation["entity_type"])
        if known is None:
            continue
        data = operation["entity_data"]
        operation["entity_data"] = {
            k: v for k, v in data.items() if k == "__entity_type__" or k in known
        }
        kept.append(operation)
    return kept


def seed() -> None:
    """Create the fixture data unless it is already on the server."""
    found = _post([{"action": "query", "expression": f"select id from User where id is {JENKINS}"}])
    if found[0]["data"]:
        return
    schemas = _post([{"action": "query_schemas"}])[0]
    _post(fitted(fixture_operations(), schemas))
    versions = _post([{"action": "query", "expression": "select id from AssetVersion limit 1"}])
    if versions[0]["data"]:
        _post([version_value_operation(versions[0]["data"][0]["id"])])


def pytest_configure(config) -> None:  # noqa: ARG001 - pytest hook signature
    if os.environ.get("FTRACK_SERVER"):
        seed()
