"""Task status roll-up: a shot is done when all its tasks are.

The automation ftrack users ask for most: when every task of a shot (or of any
context) reaches a configured status, the shot takes a configured status; when one
task leaves it again -- a retake -- the shot goes back to a configured status.

Idempotent by construction: it compares the parent's current status with what the
current task statuses imply, and writes only a difference.  A replayed event, read
against the same data, finds nothing to change.

Written as a pluggy plugin.  Arguments:

=================  =================  ======================================================
argument           default            meaning
=================  =================  ======================================================
``task_status``    ``"Approved"``     the status every task must have
``parent_status``  ``"Approved"``     the parent's status once all tasks have it
``revert_status``  ``"In progress"``  the parent's status when a task leaves it again
``parent_types``   any                object type names to roll up into, e.g. ``["Shot"]``
=================  =================  ======================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import reviewd
from reviewd.api.exception import PluginError
from reviewd.plugin.helpers import (
    ActionLog,
    event_entities,
    plugin_logger,
    resolve_statuses,
    status_changed,
)

PLUGIN_NAME = "status_rollup"
log = plugin_logger(PLUGIN_NAME)


# ------------------------------------------------------------------ arguments (pure)
@dataclass(frozen=True)
class Settings:
    task_status: str = "Approved"
    parent_status: str = "Approved"
    revert_status: str = "In progress"
    parent_types: tuple[str, ...] = ()  # empty: any parent type

    def status_names(self) -> dict[str, str]:
        return {
            "task_status": self.task_status,
            "parent_status": self.parent_status,
            "revert_status": self.revert_status,
        }


def parse_settings(arguments: Mapping[str, object]) -> Settings:
    """Check argument shapes; keys this plugin does not know are ignored (global arguments)."""
    values: dict[str, object] = {}
    for key in ("task_status", "parent_status", "revert_status"):
        if key in arguments:
            value = arguments[key]
            if not isinstance(value, str) or not value.strip():
                raise PluginError(f"{PLUGIN_NAME}: argument {key} must be a status name")
            values[key] = value.strip()
    if "parent_types" in arguments:
        types = arguments["parent_types"]
        if isinstance(types, str):
            types = [types]
        if not isinstance(types, (list, tuple)) or not all(
            isinstance(t, str) and t.strip() for t in types
        ):
            raise PluginError(
                f"{PLUGIN_NAME}: argument parent_types must be a list of object type names"
            )
        values["parent_types"] = tuple(t.strip() for t in types)
    settings = Settings(**values)
    if settings.revert_status.casefold() == settings.parent_status.casefold():
        raise PluginError(
            f"{PLUGIN_NAME}: revert_status and parent_status are both "
            f"{settings.parent_status!r}; the parent could never go back"
        )
    return settings


# ------------------------------------------------------------------ decision (pure)
def rollup(
    task_statuses: Iterable[str], parent_status: str | None, settings: Settings
) -> str | None:
    """The status the parent should take now, or ``None`` to leave it.

    All tasks at ``task_status`` -> ``parent_status``.  Otherwise, only a parent that
    *is* at ``parent_status`` goes back to ``revert_status``: a parent someone put
    on hold is not this plugin's business.
    """
    statuses = [status.casefold() for status in task_statuses]
    current = (parent_status or "").casefold()
    if not statuses:
        return None
    if all(status == settings.task_status.casefold() for status in statuses):
        return settings.parent_status if current != settings.parent_status.casefold() else None
    if current == settings.parent_status.casefold():
        return settings.revert_status
    return None


def changed_task_parents(event: Mapping) -> list[str]:
    """Parent ids of tasks whose status changed, or that were added or removed."""
    parents = []
    for entity in event_entities(event, "Task", actions=None):
        action = entity.get("action")
        if (action == "update" and status_changed(entity)) or action in ("add", "remove", "delete"):
            parent = entity.get("parentId")
            if parent and parent not in parents:
                parents.append(parent)
    return parents


# ------------------------------------------------------------------ ftrack side
class StatusRollup:
    def __init__(self, session, settings: Settings) -> None:
        self.session = session
        self.settings = settings
        self.status_ids: dict[str, str] = {}
        self.actions = ActionLog(
            PLUGIN_NAME, "What the status roll-up plugin did, by action.", logger=log
        )

    def validate(self) -> None:
        """Resolve every status name now: a typo is a load-time error, not a silent no-op."""
        self.status_ids = resolve_statuses(self.session, PLUGIN_NAME, self.settings.status_names())

    def handle(self, event) -> None:
        for parent_id in changed_task_parents(event):
            self.reconsider(parent_id)

    def reconsider(self, parent_id: str) -> str | None:
        """Bring the parent's status in line with its tasks; return the status set, if any."""
        parent = self.session.query(
            "select id, name, status.name, object_type.name from TypedContext"
            f' where id is "{parent_id}"'
        ).first()
        if parent is None:  # a task directly under the project, or the parent was deleted
            return None
        kind = parent["object_type"]["name"] if parent["object_type"] else ""
        if self.settings.parent_types and kind not in self.settings.parent_types:
            self.actions.count(
                "ignored_type", "%s %s is not rolled up (parent_types)", kind, parent["name"]
            )
            return None
        tasks = self.session.query(
            f'select status.name from Task where parent_id is "{parent_id}"'
        ).all()
        current = parent["status"]["name"] if parent["status"] else None
        target = rollup((t["status"]["name"] for t in tasks if t["status"]), current, self.settings)
        if target is None:
            self.actions.noop("unchanged", "%s %s stays %s", kind, parent["name"], current)
            return None
        parent["status"] = self.session.get("Status", self.status_ids[target])
        self.session.commit()
        self.actions.count("rolled_up", "%s %s: %s -> %s", kind, parent["name"], current, target)
        return target


# ------------------------------------------------------------------ pluggy glue
_plugin: StatusRollup | None = None


@reviewd.hookimpl
def reviewd_register(session, registry, arguments):
    global _plugin
    plugin = StatusRollup(session, parse_settings(arguments or {}))
    plugin.validate()
    registry.subscribe("topic=ftrack.update", plugin.handle)
    _plugin = plugin


@reviewd.hookimpl
def reviewd_prometheus_collectors():
    return _plugin.actions.collectors() if _plugin is not None else []
