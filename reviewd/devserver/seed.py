"""The ``demo`` seed: a small but believable production to develop and test against.

One project with two sequences of three shots, animation/lighting/compositing tasks in
mixed states, five users, the usual statuses, assets with several versions each, and an
open review session with versions, invitees and a few verdicts.  Ids are derived from
names (UUID5) so a test can rely on them across runs and restarts.

Data is written through the same create path as ``/api`` (so it obeys the schema), with
missing required plain values filled in when the schema is a real server's list whose
server-side defaults this project cannot know.
"""

from __future__ import annotations

import datetime as _dt
import uuid
from typing import Any

from reviewd.devserver.schema.model import Model

NAMESPACE = uuid.UUID("6f1d3c1e-7a52-4e0b-9d7e-2b1c5e4f8a90")

OBJECT_TYPES = {
    "Task": ("11c137c0-ee7e-4f9c-91c5-8c77cec22b2c", True),
    "Shot": ("bad911de-3bd6-47b9-8b46-3476e237cb36", False),
    "Sequence": ("e5139355-61da-4c8f-9db4-3abc870166bc", False),
    "Folder": ("3c133785-51cb-11e3-980a-20c9d0831e59", False),
    "Episode": ("22139355-61da-4c8f-9db4-3abc870166bc", False),
    "Asset Build": ("4be63b64-5010-42fb-bf1f-428af9d638f0", False),
    "Milestone": ("01decdd1-51cb-11e3-9d5b-20c9d0831e59", True),
}
LOCATIONS = {
    "ftrack.origin": "ce9b348f-8809-11e3-821c-20c9d081909b",
    "ftrack.unmanaged": "cb268ecc-8809-11e3-a7e2-20c9d081909b",
    "ftrack.review": "cd41be70-8809-11e3-b98a-20c9d081909b",
    "ftrack.connect": "07b82a97-8cf9-11e3-9383-20c9d081909b",
    "ftrack.server": "3a372bde-05bc-11e4-8908-20c9d081909b",
}
NORMAL_PRIORITY = "9661b320-3a0c-11e2-81c1-0800200c9a66"
DEFAULT_USER = "admin"


CUSTOM_ATTRIBUTE_TYPES = ("text", "number", "boolean", "date", "enumerator", "dynamic enumerator")
# key: (label, type, entity type as ftrack names it, object type for "task" ones, default)
DEMO_ATTRIBUTES = {
    "fstart": ("Frame start", "number", "task", "Shot", 1001),
    "fend": ("Frame end", "number", "task", "Shot", 1100),
    "handles": ("Handles", "number", "task", "Shot", 0),
    "fps": ("Frames per second", "number", "show", None, 24),
    "delivery": ("For delivery", "boolean", "assetversion", None, False),
}


def _custom_value(b: _Builder, key: str, entity_id: str, value: Any) -> None:
    b.add(
        "CustomAttributeValue",
        {
            "configuration_id": seed_id("CustomAttributeConfiguration", key),
            "entity_id": entity_id,
            "value": value,
        },
    )


def seed_id(*parts: str) -> str:
    """A stable id for a seeded entity, derived from its kind and name."""
    return str(uuid.uuid5(NAMESPACE, "/".join(parts)))


def _iso(day: _dt.date, hour: int = 10) -> dict:
    return {"__type__": "datetime", "value": f"{day.isoformat()}T{hour:02d}:00:00+00:00"}


class _Builder:
    """Collects create operations, dropping attributes the active schema lacks."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.operations: list[dict] = []

    def add(self, entity_type: str, data: dict[str, Any]) -> dict:
        schema_type = self.model.get(entity_type)
        if schema_type is None:
            return data
        kept = {
            k: v
            for k, v in data.items()
            if k in schema_type.attributes and not schema_type.attributes[k].computed
        }
        key = [kept.get(k) for k in schema_type.primary_key]
        self.operations.append(
            {
                "action": "create",
                "entity_type": entity_type,
                "entity_key": key,
                "entity_data": {"__entity_type__": entity_type, **kept},
            }
        )
        return data


def demo_operations(model: Model, api_user: str = DEFAULT_USER) -> list[dict]:
    """The create operations that build the demo production, in dependency order."""
    b = _Builder(model)
    today = _dt.date(2026, 11, 2)

    users = [
        (api_user, "Ada", "Admin"),
        ("jane.doe", "Jane", "Doe"),
        ("tom.lee", "Tom", "Lee"),
        ("maria.garcia", "Maria", "Garcia"),
        ("sam.patel", "Sam", "Patel"),
    ]
    for username, first, last in users:
        b.add(
            "User",
            {
                "id": seed_id("User", username),
                "username": username,
                "first_name": first,
                "last_name": last,
                "email": f"{username}@studio.example",
                "is_active": True,
                "resource_type": "user",
            },
        )

    states = {
        "Not started": "NOT_STARTED",
        "In progress": "IN_PROGRESS",
        "Blocked": "BLOCKED",
        "Done": "DONE",
    }
    for name, short in states.items():
        b.add("State", {"id": seed_id("State", name), "name": name, "short": short})
    statuses = [
        ("Not started", "Not started", "#cccccc"),
        ("Ready", "Not started", "#98d3ff"),
        ("In progress", "In progress", "#4ea7ff"),
        ("Pending Review", "In progress", "#ffc04d"),
        ("Requires changes", "Blocked", "#ff6b6b"),
        ("On hold", "Blocked", "#b08bd9"),
        ("Approved", "Done", "#61c554"),
        ("Omitted", "Done", "#7c7c7c"),
    ]
    for sort, (name, state, color) in enumerate(statuses):
        b.add(
            "Status",
            {
                "id": seed_id("Status", name),
                "name": name,
                "sort": sort,
                "color": color,
                "is_active": True,
                "state_id": seed_id("State", state),
            },
        )
    for sort, (name, value) in enumerate([("Urgent", 4), ("High", 3), ("Medium", 2), ("Low", 1)]):
        pid = NORMAL_PRIORITY if name == "Medium" else seed_id("Priority", name)
        b.add(
            "Priority", {"id": pid, "name": name, "sort": sort, "value": value, "color": "#888888"}
        )
    for sort, (name, (otid, leaf)) in enumerate(OBJECT_TYPES.items()):
        b.add(
            "ObjectType",
            {
                "id": otid,
                "name": name,
                "sort": sort,
                "icon": name.lower().replace(" ", "_"),
                "is_leaf": leaf,
                "is_statusable": True,
                "is_typeable": leaf,
                "is_time_reportable": leaf,
                "is_schedulable": True,
                "is_taskable": not leaf,
                "is_prioritizable": True,
            },
        )
    task_types = [
        "Animation",
        "Lighting",
        "Compositing",
        "Modeling",
        "Rigging",
        "Layout",
        "FX",
        "Generic",
    ]
    for sort, name in enumerate(task_types):
        b.add(
            "Type",
            {
                "id": seed_id("Type", name),
                "name": name,
                "sort": sort,
                "color": "#5588cc",
                "is_billable": True,
            },
        )

    # Workflows: what the official client's ProjectSchema.get_statuses()/get_types() read.
    task_flow, version_flow = (
        seed_id("WorkflowSchema", "Task"),
        seed_id("WorkflowSchema", "Version"),
    )
    b.add("WorkflowSchema", {"id": task_flow, "name": "Task workflow"})
    b.add("WorkflowSchema", {"id": version_flow, "name": "Version workflow"})
    for name, *_ in statuses:
        b.add(
            "WorkflowSchemaStatus",
            {"workflow_schema_id": task_flow, "status_id": seed_id("Status", name)},
        )
    for name in ("Pending Review", "Requires changes", "Approved"):
        b.add(
            "WorkflowSchemaStatus",
            {"workflow_schema_id": version_flow, "status_id": seed_id("Status", name)},
        )
    type_schema = seed_id("TaskTypeSchema", "VFX")
    b.add("TaskTypeSchema", {"id": type_schema, "name": "VFX task types"})
    for name in task_types:
        b.add(
            "TaskTypeSchemaType",
            {"task_type_schema_id": type_schema, "type_id": seed_id("Type", name)},
        )
    project_schema = seed_id("ProjectSchema", "VFX")
    b.add(
        "ProjectSchema",
        {
            "id": project_schema,
            "name": "VFX Scheme",
            "task_workflow_schema_id": task_flow,
            "asset_version_workflow_schema_id": version_flow,
            "task_type_schema_id": type_schema,
        },
    )
    for name, (otid, _leaf) in OBJECT_TYPES.items():
        b.add(
            "ProjectSchemaObjectType", {"project_schema_id": project_schema, "object_type_id": otid}
        )
        if name in ("Shot", "Sequence", "Asset Build", "Folder", "Episode"):
            schema = seed_id("Schema", name)
            b.add("Schema", {"id": schema, "project_schema_id": project_schema, "type_id": otid})
            for sort, status in enumerate(
                ("Not started", "In progress", "Approved", "On hold", "Omitted")
            ):
                b.add(
                    "SchemaStatus",
                    {"schema_id": schema, "status_id": seed_id("Status", status), "sort": sort},
                )
            b.add(
                "SchemaType",
                {"schema_id": schema, "type_id": seed_id("Type", "Generic"), "sort": 0},
            )

    for name, location_id in LOCATIONS.items():
        b.add(
            "Location",
            {
                "id": location_id,
                "name": name,
                "label": name.split(".")[-1].title(),
                "description": f"Built-in {name} location",
            },
        )
    for sort, (name, color) in enumerate(
        [("Default", "#999999"), ("Client feedback", "#e67e22"), ("Internal", "#3498db")]
    ):
        b.add(
            "NoteCategory",
            {"id": seed_id("NoteCategory", name), "name": name, "color": color, "sort": sort},
        )
    b.add(
        "NoteLabel",
        {"id": seed_id("NoteLabel", "Director"), "name": "Director", "color": "#c0392b", "sort": 0},
    )
    asset_types = [
        ("Upload", "upload"),
        ("Geometry", "geo"),
        ("Render", "render"),
        ("Comp", "comp"),
        ("Animation cache", "anim"),
    ]
    for sort, (name, short) in enumerate(asset_types):
        b.add(
            "AssetType",
            {"id": seed_id("AssetType", name), "name": name, "short": short, "sort": sort},
        )

    # Custom attributes a studio keeps on its work: frame range, handles, fps, delivery.
    for name in CUSTOM_ATTRIBUTE_TYPES:
        b.add(
            "CustomAttributeType",
            {"id": seed_id("CustomAttributeType", name), "name": name, "core": True},
        )
    b.add(
        "CustomAttributeGroup",
        {"id": seed_id("CustomAttributeGroup", "Production"), "name": "Production"},
    )
    for key, (label, type_name, entity_type, object_type, default) in DEMO_ATTRIBUTES.items():
        b.add(
            "CustomAttributeConfiguration",
            {
                "id": seed_id("CustomAttributeConfiguration", key),
                "key": key,
                "label": label,
                "type_id": seed_id("CustomAttributeType", type_name),
                "entity_type": entity_type,
                "object_type_id": OBJECT_TYPES[object_type][0] if object_type else None,
                "default": default,
                "config": "{}",
                "group_id": seed_id("CustomAttributeGroup", "Production"),
                "is_hierarchical": False,
                "core": False,
            },
        )
    b.add("ListCategory", {"id": seed_id("ListCategory", "Dailies"), "name": "Dailies"})

    # The production itself.
    project = seed_id("Project", "demo_production")
    admin = seed_id("User", api_user)
    b.add(
        "Project",
        {
            "id": project,
            "name": "demo_production",
            "full_name": "Demo Production",
            "status": "active",
            "is_global": False,
            "project_schema_id": project_schema,
            "root": "/projects/demo_production",
            "start_date": _iso(today),
            "end_date": _iso(today + _dt.timedelta(days=90)),
            "created_by_id": admin,
        },
    )
    b.add("Metadata", {"parent_id": project, "parent_type": "Project", "key": "fps", "value": "24"})
    _custom_value(b, "fps", project, 24)
    task_plan = {
        "Animation": ["Approved", "Pending Review", "In progress"],
        "Lighting": ["In progress", "Pending Review", "Not started"],
        "Compositing": ["Not started", "Requires changes", "Ready"],
    }
    artists = {"Animation": "sam.patel", "Lighting": "maria.garcia", "Compositing": "tom.lee"}
    shot_number = 0
    for sequence_name in ("SQ010", "SQ020"):
        sequence = seed_id("Sequence", sequence_name)
        b.add(
            "Sequence",
            {
                "id": sequence,
                "name": sequence_name,
                "parent_id": project,
                "project_id": project,
                "status_id": seed_id("Status", "In progress"),
                "type_id": seed_id("Type", "Generic"),
                "description": f"Sequence {sequence_name}",
            },
        )
        for shot_index, shot_name in enumerate(("SH010", "SH020", "SH030")):
            shot_number += 1
            shot = seed_id("Shot", sequence_name, shot_name)
            b.add(
                "Shot",
                {
                    "id": shot,
                    "name": shot_name,
                    "parent_id": sequence,
                    "project_id": project,
                    "status_id": seed_id("Status", "In progress"),
                    "type_id": seed_id("Type", "Generic"),
                    "description": f"{sequence_name} {shot_name}",
                    "sort": shot_index,
                    "start_date": _iso(today),
                    "end_date": _iso(today + _dt.timedelta(days=30)),
                },
            )
            b.add(
                "Metadata",
                {
                    "parent_id": shot,
                    "parent_type": "Shot",
                    "key": "frame_range",
                    "value": f"1001-{1050 + 10 * shot_number}",
                },
            )
            _custom_value(b, "fstart", shot, 1001)
            _custom_value(b, "fend", shot, 1050 + 10 * shot_number)
            _custom_value(b, "handles", shot, 8)
            for task_type, plan in task_plan.items():
                status = plan[(shot_number - 1) % len(plan)]
                task = seed_id("Task", sequence_name, shot_name, task_type)
                b.add(
                    "Task",
                    {
                        "id": task,
                        "name": task_type.lower(),
                        "parent_id": shot,
                        "project_id": project,
                        "status_id": seed_id("Status", status),
                        "type_id": seed_id("Type", task_type),
                        "priority_id": NORMAL_PRIORITY,
                        "bid": 8 * 3600,
                        "description": f"{task_type} for {sequence_name}/{shot_name}",
                    },
                )
                b.add(
                    "Appointment",
                    {
                        "id": seed_id("Appointment", task),
                        "context_id": task,
                        "resource_id": seed_id("User", artists[task_type]),
                        "type": "assignment",
                    },
                )
            # One comp asset per shot with a few versions published from the compositing task.
            asset = seed_id("Asset", sequence_name, shot_name, "comp")
            b.add(
                "Asset",
                {
                    "id": asset,
                    "name": f"{sequence_name}_{shot_name}_comp",
                    "context_id": shot,
                    "parent": {"__entity_type__": "Shot", "id": shot},
                    "type_id": seed_id("AssetType", "Comp"),
                },
            )
            comp_task = seed_id("Task", sequence_name, shot_name, "Compositing")
            version_count = 2 + shot_number % 2
            for number in range(1, version_count + 1):
                latest = number == version_count
                status = (
                    "Pending Review"
                    if latest
                    else ("Requires changes" if number == 1 else "Approved")
                )
                version = seed_id("AssetVersion", asset, str(number))
                b.add(
                    "AssetVersion",
                    {
                        "id": version,
                        "asset_id": asset,
                        "version": number,
                        "task_id": comp_task,
                        "status_id": seed_id("Status", status),
                        "user_id": seed_id("User", "tom.lee"),
                        "comment": f"Comp pass {number} for {shot_name}",
                        "date": _iso(today + _dt.timedelta(days=number), 16),
                        "is_published": True,
                    },
                )
                b.add(
                    "FileComponent",
                    {
                        "id": seed_id("Component", version),
                        "name": "main",
                        "file_type": ".mov",
                        "size": 10_000_000 + number,
                        "system_type": "file",
                        "version_id": version,
                    },
                )
                b.add(
                    "ComponentLocation",
                    {
                        "id": seed_id("ComponentLocation", version),
                        "component_id": seed_id("Component", version),
                        "location_id": LOCATIONS["ftrack.server"],
                        "resource_identifier": f"{version}.mov",
                    },
                )
                if latest:
                    _custom_value(b, "delivery", version, shot_number % 2 == 1)
                if number == 1:
                    b.add(
                        "Note",
                        {
                            "id": seed_id("Note", version),
                            "content": "Edges are soft on the left side.",
                            "parent_id": version,
                            "parent_type": "AssetVersion",
                            "user_id": seed_id("User", "jane.doe"),
                            "category_id": seed_id("NoteCategory", "Internal"),
                            "date": _iso(today + _dt.timedelta(days=number), 18),
                        },
                    )

    # An open review session with the latest version of the first four shots.
    session = seed_id("ReviewSession", "dailies")
    b.add(
        "ReviewSession",
        {
            "id": session,
            "name": "Dailies 2026-11-06",
            "description": "Comp dailies",
            "project_id": project,
            "start_date": _iso(today + _dt.timedelta(days=4), 9),
            "end_date": _iso(today + _dt.timedelta(days=4), 18),
            "is_open": True,
            "created_by_id": admin,
            "availability": "all",
        },
    )
    invitees = [("Jane Doe", "jane.doe@studio.example"), ("Client", "client@agency.example")]
    for name, email in invitees:
        b.add(
            "ReviewSessionInvitee",
            {
                "id": seed_id("ReviewSessionInvitee", email),
                "name": name,
                "email": email,
                "review_session_id": session,
                "created_by_id": admin,
            },
        )
    verdicts = {0: "approved", 1: "require_changes"}
    shots = [(seq, sh) for seq in ("SQ010", "SQ020") for sh in ("SH010", "SH020", "SH030")][:4]
    for sort, (sequence_name, shot_name) in enumerate(shots):
        number_of_shot = (0 if sequence_name == "SQ010" else 3) + int(shot_name[2:4])
        version_count = 2 + number_of_shot % 2
        asset = seed_id("Asset", sequence_name, shot_name, "comp")
        version = seed_id("AssetVersion", asset, str(version_count))
        rso = seed_id("ReviewSessionObject", session, version)
        b.add(
            "ReviewSessionObject",
            {
                "id": rso,
                "name": f"{sequence_name}_{shot_name}_comp",
                "description": "Latest comp",
                "version": f"v{version_count:03d}",
                "version_id": version,
                "review_session_id": session,
                "sort_order": sort,
            },
        )
        if sort in verdicts:
            b.add(
                "ReviewSessionObjectStatus",
                {
                    "id": seed_id("ReviewSessionObjectStatus", rso),
                    "status": verdicts[sort],
                    "review_session_object_id": rso,
                    "review_session_invitee_id": seed_id(
                        "ReviewSessionInvitee", "jane.doe@studio.example"
                    ),
                },
            )
    return b.operations
