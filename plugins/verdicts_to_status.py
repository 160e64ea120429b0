"""Verdicts to status: turn review verdicts into version and task statuses.

A supervisor records verdicts on a version in a review session (ftrack stores each as a
``ReviewSessionObjectStatus``: ``approved`` or ``require_changes``).  Studios want the
pipeline to follow at once: one "require changes" sends the version to *Requires
changes* and its task back to work; approval by every invitee (or a configured
quorum) approves both.  A Note on the version says who said what, so an artist
sees why the status moved.

The Note doubles as the record that a decision was applied: events are delivered at
least once, and a replayed verdict event finds its own identical Note as the newest
summary and changes nothing -- not even a status someone has since moved by hand.
Events published while the hub was disconnected reach nobody, so the
``reviewd_hub_gap`` hook re-weighs every object with a verdict recorded since the gap
began.

Written as a pluggy plugin (``@reviewd.hookimpl``).  Arguments:

========================  ======================  ==============================================
argument                  default                 meaning
========================  ======================  ==============================================
``changes_status``        ``"Requires changes"``  version status when any verdict asks changes
``changes_task_status``   ``"In progress"``       task status when any verdict asks changes
``approved_status``       ``"Approved"``          version status once the quorum approved
``approved_task_status``  ``"Approved"``          task status once the quorum approved
``quorum``                ``"all"``               approvals needed: ``"all"`` invitees or an int
``note``                  ``True``                write the summary Note (and dedupe by it)
========================  ======================  ==============================================

A task status of ``""`` (empty) leaves the task alone.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Mapping
from dataclasses import dataclass

import reviewd
from reviewd.api.exception import PluginError
from reviewd.plugin.helpers import (
    APPROVED,
    REQUIRE_CHANGES,
    ActionLog,
    current_user,
    event_entities,
    newest_notes,
    object_verdicts,
    plugin_logger,
    resolve_statuses,
)

# Re-exported: the verdict model this plugin decides on, next to decide() and render_note().
from reviewd.plugin.helpers import Verdict as Verdict
from reviewd.plugin.helpers import latest_verdicts as latest_verdicts

PLUGIN_NAME = "verdicts_to_status"
log = plugin_logger(PLUGIN_NAME)

OUTCOME_APPROVED = "approved"
OUTCOME_CHANGES = "changes"
NOTE_PREFIX = "Review verdicts for "
RECONCILE_MARGIN = datetime.timedelta(minutes=2)


# ------------------------------------------------------------------ arguments (pure)
@dataclass(frozen=True)
class Settings:
    changes_status: str = "Requires changes"
    changes_task_status: str = "In progress"
    approved_status: str = "Approved"
    approved_task_status: str = "Approved"
    quorum: int | None = None  # None: every invitee
    note: bool = True

    def status_names(self) -> dict[str, str]:
        """Argument name -> status name, for the statuses that must exist on the server."""
        names = {
            "changes_status": self.changes_status,
            "approved_status": self.approved_status,
            "changes_task_status": self.changes_task_status,
            "approved_task_status": self.approved_task_status,
        }
        return {key: value for key, value in names.items() if value}


def parse_settings(arguments: Mapping[str, object]) -> Settings:
    """Build :class:`Settings` from plugin arguments; a bad value is a ``PluginError``
    naming the argument, so the plugin fails at load time rather than on the first verdict.

    Other keys are ignored: the daemon overlays global arguments meant for every
    plugin, so a key this plugin does not know is not necessarily a typo.
    """
    values: dict[str, object] = {}
    for key in ("changes_status", "changes_task_status", "approved_status", "approved_task_status"):
        if key in arguments:
            value = arguments[key]
            if not isinstance(value, str):
                raise PluginError(f"{PLUGIN_NAME}: argument {key} must be a status name (text)")
            values[key] = value.strip()
    for key in ("changes_status", "approved_status"):
        if key in values and not values[key]:
            raise PluginError(f"{PLUGIN_NAME}: argument {key} must not be empty")
    if "quorum" in arguments:
        values["quorum"] = parse_quorum(arguments["quorum"])
    if "note" in arguments:
        if not isinstance(arguments["note"], bool):
            raise PluginError(f"{PLUGIN_NAME}: argument note must be true or false")
        values["note"] = arguments["note"]
    return Settings(**values)


def parse_quorum(value: object) -> int | None:
    """``"all"``/``None`` -> every invitee; a positive integer -> that many approvals."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "all"):
        return None
    if isinstance(value, bool):
        raise PluginError(f'{PLUGIN_NAME}: argument quorum must be "all" or a positive integer')
    try:
        number = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = 0
    if number < 1 or str(number) != str(value).strip():
        raise PluginError(
            f'{PLUGIN_NAME}: argument quorum must be "all" or a positive integer, not {value!r}'
        )
    return number


# ------------------------------------------------------------------ decisions (pure)
def decide(latest: Mapping[str, str], invitee_count: int, quorum: int | None) -> str | None:
    """The outcome the verdicts imply, or ``None`` while the review is still open.

    Any "require changes" wins at once.  Otherwise the version is approved when the
    approvals reach the quorum; a quorum larger than the invitee list is capped to it,
    since it could never be reached.
    """
    if any(status == REQUIRE_CHANGES for status in latest.values()):
        return OUTCOME_CHANGES
    approvals = sum(1 for status in latest.values() if status == APPROVED)
    needed = invitee_count if quorum is None else min(quorum, max(invitee_count, 1))
    if needed >= 1 and approvals >= needed:
        return OUTCOME_APPROVED
    return None


def render_note(
    version_label: str, session_name: str, latest: Mapping[str, str], outcome: str, status: str
) -> str:
    """The summary Note: deterministic text, so a replay finds it again verbatim."""
    headline = "Changes requested" if outcome == OUTCOME_CHANGES else "Approved"
    lines = [
        f'{NOTE_PREFIX}{version_label} in "{session_name}": {headline} (status set to {status}).',
        "",
    ]
    for invitee in sorted(latest):
        lines.append(f"- {invitee}: {latest[invitee].replace('_', ' ')}")
    return "\n".join(lines)


# ------------------------------------------------------------------ ftrack side
def review_status_entities(event: Mapping) -> list[str]:
    """Ids of ReviewSessionObjectStatus entities added or updated in an ftrack.update."""
    return [
        entity["entityId"]
        for entity in event_entities(event, "ReviewSessionObjectStatus")
        if entity.get("entityId")
    ]


class VerdictsToStatus:
    """Applies :func:`decide` to the review session object a verdict belongs to."""

    def __init__(self, session, settings: Settings) -> None:
        self.session = session
        self.settings = settings
        self.status_ids: dict[str, str] = {}
        #: One decision at a time: the gap hook runs on the daemon's thread while the
        #: plugin's worker handles live events, and both may weigh the same object.
        self.deciding = threading.Lock()
        #: Every decision is both a metric and a log line.
        self.actions = ActionLog(
            PLUGIN_NAME, "What the verdicts-to-status plugin did, by action.", logger=log
        )

    def validate(self) -> None:
        """Resolve every configured status name now: a typo is a load-time error."""
        self.status_ids = resolve_statuses(self.session, PLUGIN_NAME, self.settings.status_names())

    def handle(self, event) -> None:
        for verdict_id in review_status_entities(event):
            self.apply(verdict_id)

    def apply(self, verdict_id: str) -> str | None:
        """Re-evaluate the object the verdict *verdict_id* belongs to; return the outcome."""
        verdict = self.session.query(
            "select review_session_object_id from ReviewSessionObjectStatus"
            f' where id is "{verdict_id}"'
        ).first()
        if verdict is None:
            self.actions.count(
                "skipped_missing", "verdict %s no longer exists; nothing to do", verdict_id
            )
            return None
        return self.evaluate(verdict["review_session_object_id"])

    def reconcile(self, since: datetime.datetime) -> int:
        """Re-evaluate every review object with a verdict recorded since *since*.

        Verdict events published while the hub was away reached nobody; the verdicts
        themselves are on the server.  A margin covers clock skew between hosts;
        evaluating an object twice is harmless.  Returns how many objects were weighed.
        """
        after = (since - RECONCILE_MARGIN).isoformat()
        rows = self.session.query(
            "select review_session_object_id from ReviewSessionObjectStatus"
            f' where created_at after "{after}"'
        ).all()
        objects = sorted({row["review_session_object_id"] for row in rows})
        self.actions.count(
            "gap_reconciled", "reconciling %d review object(s) after a hub gap", len(objects)
        )
        for object_id in objects:
            self.evaluate(object_id)
        return len(objects)

    def evaluate(self, object_id: str) -> str | None:
        """Decide from the server's current verdicts on one review object, and enact it.

        Works from current data, not an event's, so a late or replayed event leads to
        the same decision as the latest one.
        """
        with self.deciding:
            return self._evaluate(object_id)

    def _evaluate(self, object_id: str) -> str | None:
        review_object = self.session.query(
            "select id, version_id, review_session_id, review_session.name"
            f' from ReviewSessionObject where id is "{object_id}"'
        ).first()
        if review_object is None:
            self.actions.count("skipped_missing", "review object %s no longer exists", object_id)
            return None
        invitees = self.session.query(
            "select id, name, email from ReviewSessionInvitee"
            f' where review_session_id is "{review_object["review_session_id"]}"'
        ).all()
        names = {invitee["id"]: invitee["name"] or invitee["email"] for invitee in invitees}
        latest = object_verdicts(self.session, object_id, names)
        outcome = decide(latest, len(invitees), self.settings.quorum)
        if outcome is None:
            self.actions.noop("undecided", "review object %s still open: %s", object_id, latest)
            return None
        self.enact(review_object, latest, outcome)
        return outcome

    def enact(self, review_object, latest: Mapping[str, str], outcome: str) -> None:
        settings = self.settings
        if outcome == OUTCOME_CHANGES:
            version_status, task_status = settings.changes_status, settings.changes_task_status
        else:
            version_status, task_status = settings.approved_status, settings.approved_task_status
        version = self.session.query(
            "select id, version, asset.name, status.name, task_id from AssetVersion"
            f' where id is "{review_object["version_id"]}"'
        ).one()
        label = f"{version['asset']['name']} v{version['version']:03d}"
        session_name = review_object["review_session"]["name"]
        content = render_note(label, session_name, latest, outcome, version_status)
        if settings.note and self.already_applied(version["id"], content):
            self.actions.noop("replay_ignored", "%s: decision %s already applied", label, outcome)
            return
        changed = []
        current = version["status"]["name"] if version["status"] is not None else None
        if current != version_status:
            version["status"] = self.session.get("Status", self.status_ids[version_status])
            changed.append(f"version -> {version_status}")
        if task_status and version["task_id"]:
            task = self.session.query(
                f'select id, status.name from Task where id is "{version["task_id"]}"'
            ).first()
            task_current = task["status"]["name"] if task and task["status"] is not None else None
            if task is not None and task_current != task_status:
                task["status"] = self.session.get("Status", self.status_ids[task_status])
                changed.append(f"task -> {task_status}")
        if settings.note:
            self.session.create(
                "Note",
                {
                    "content": content,
                    "author": current_user(self.session),
                    "parent_id": version["id"],
                    "parent_type": "AssetVersion",
                },
            )
            changed.append("note")
        self.session.commit()
        self.actions.count(
            f"outcome_{outcome}",
            "%s in %r: %s (%s)",
            label,
            session_name,
            outcome,
            ", ".join(changed) or "nothing to change",
        )

    def already_applied(self, parent_id: str, content: str) -> bool:
        """True when this plugin's most recent summary on the version is *content*.

        Comparing with the latest summary only (not any) lets a review that goes
        approved -> changes -> approved again act each time, while a replay, which
        recomputes the same decision from the same data, finds its own Note on top.
        """
        return content in newest_notes(self.session, parent_id, NOTE_PREFIX)


# ------------------------------------------------------------------ pluggy glue
_plugin: VerdictsToStatus | None = None


@reviewd.hookimpl
def reviewd_register(session, registry, arguments):
    """Validate the arguments against the server, then declare the subscription."""
    global _plugin
    plugin = VerdictsToStatus(session, parse_settings(arguments or {}))
    plugin.validate()
    registry.subscribe("topic=ftrack.update", plugin.handle)
    _plugin = plugin


@reviewd.hookimpl
def reviewd_hub_gap(gap_start):
    """Verdicts recorded while the hub was disconnected were never delivered: catch up."""
    if _plugin is not None:
        _plugin.reconcile(gap_start)


@reviewd.hookimpl
def reviewd_prometheus_collectors():
    return _plugin.actions.collectors() if _plugin is not None else []
