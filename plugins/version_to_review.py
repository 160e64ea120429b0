"""Version to review: put versions that are ready for review into today's dailies.

Coordinators spend the morning dragging versions into the day's review session.
This plugin does it as the artist flips a version to *Pending Review*: it finds the
project's current review session by a name pattern ("Dailies {date}"), creates it
when missing, and adds the version unless it is already there.  With
``replace_previous`` the older version of the same asset leaves the session, so a
supervisor only ever reviews the newest take.

Idempotent because it looks before it writes: a replayed event finds the version
already in the session (or a newer version of its asset there) and does nothing.

Written as a classic ftrack plugin -- ``register(session, **kwargs)`` subscribing on
``session.event_hub`` -- so it runs unchanged under ftrack's own event listener too
(with the ``reviewd`` package importable: it uses :mod:`reviewd.plugin.helpers`, which
needs nothing of the daemon).  Arguments:

====================  ====================  ==================================================
argument              default               meaning
====================  ====================  ==================================================
``status``            ``"Pending Review"``  the version status that sends it to review
``name_pattern``      ``"Dailies {date}"``  review session name; ``{date}`` (YYYY-MM-DD),
                                            ``{project}`` (project name)
``replace_previous``  ``True``              remove older versions of the same asset
====================  ====================  ==================================================
"""

from __future__ import annotations

import datetime
import string
import threading
from collections.abc import Mapping

from reviewd.plugin.helpers import (
    ActionLog,
    current_user,
    entity_is,
    plugin_logger,
    resolve_statuses,
    status_changed,
)

PLUGIN_NAME = "version_to_review"
PLACEHOLDERS = ("date", "project")
log = plugin_logger(PLUGIN_NAME)


# ------------------------------------------------------------------ decisions (pure)
def check_name_pattern(pattern: str) -> str:
    """Reject patterns with unknown or positional placeholders before any event arrives."""
    if not isinstance(pattern, str) or not pattern.strip():
        raise ValueError(f"{PLUGIN_NAME}: argument name_pattern must be non-empty text")
    try:
        fields = [
            field for _, field, _, _ in string.Formatter().parse(pattern) if field is not None
        ]
    except ValueError as error:
        raise ValueError(f"{PLUGIN_NAME}: argument name_pattern {pattern!r}: {error}") from None
    for field in fields:
        if field not in PLACEHOLDERS:
            raise ValueError(
                f"{PLUGIN_NAME}: argument name_pattern {pattern!r} uses {{{field}}}; "
                f"allowed placeholders: {', '.join('{' + p + '}' for p in PLACEHOLDERS)}"
            )
    return pattern


def session_name(pattern: str, day: datetime.date, project: str) -> str:
    """The review session name for *day*: ``"Dailies {date}"`` -> ``"Dailies 2026-11-26"``."""
    return pattern.format(date=day.isoformat(), project=project)


def plan_membership(
    version_id: str, version_number: int, same_asset: Mapping[str, int], replace_previous: bool
) -> tuple[bool, list[str]]:
    """Decide (add?, ids of objects to remove) for a version and the session's objects
    showing other versions of the same asset (*same_asset*: object id -> version number).

    Never adds a version older than one already there: a late replay of v2's event
    must not push out v3.
    """
    if not replace_previous:
        return True, []
    if any(number >= version_number for number in same_asset.values()):
        return False, []
    return True, [oid for oid, number in same_asset.items() if number < version_number]


def status_entered(event_entity: Mapping) -> bool:
    """Did this ftrack.update entity (an AssetVersion) get a status just now?"""
    return (
        entity_is(event_entity, "AssetVersion")
        and event_entity.get("action") in ("add", "update")
        and status_changed(event_entity)
    )


# ------------------------------------------------------------------ ftrack side
class VersionToReview:
    """Keeps the project's current review session in step with versions sent to review."""

    def __init__(self, session, status: str, name_pattern: str, replace_previous: bool) -> None:
        self.session = session
        self.status = status
        self.name_pattern = name_pattern
        self.replace_previous = replace_previous
        #: What the plugin did, by action: a classic plugin has no metrics hook, so the
        #: totals ride along in each log line instead (an ActionLog without a metric).
        self.actions = ActionLog(PLUGIN_NAME, logger=log)
        #: Why the plugin cannot work (a late configuration error), else None.
        self.problem: str | None = None
        #: With concurrency > 1, two workers must not both create today's session.
        self.deciding = threading.Lock()

    def validate(self) -> None:
        """Check the status name against the server (ValueError, as register() raises)."""
        resolve_statuses(self.session, PLUGIN_NAME, {"status": self.status}, error=ValueError)

    def validate_when_ready(self, event) -> None:
        """Late check for a Session still being built at ``register()`` time."""
        try:
            self.validate()
        except ValueError as error:
            self.problem = str(error)
            log.error("%s; the plugin is disabled", error)

    def handle(self, event) -> None:
        if self.problem:
            return
        for entity in (event.get("data") or {}).get("entities") or []:
            if status_entered(entity) and entity.get("entityId"):
                self.consider(entity["entityId"])

    def consider(self, version_id: str) -> str | None:
        """Add the version to the current session if its status (now) is the trigger;
        return the review session's id when the version is (or stays) in one."""
        with self.deciding:
            return self._consider(version_id)

    def _consider(self, version_id: str) -> str | None:
        version = self.session.query(
            "select id, version, asset_id, asset.name, status.name, task.project_id"
            f' from AssetVersion where id is "{version_id}"'
        ).first()
        if version is None or version["status"] is None or version["status"]["name"] != self.status:
            return None  # moved on since the event, or another status change
        label = f"{version['asset']['name']} v{version['version']:03d}"
        project = self.project_of(version)
        if project is None:
            self.actions.count("no_project", "%s belongs to no project; not added", label)
            return None
        name = session_name(self.name_pattern, datetime.date.today(), project["name"])
        review = self.review_session(name, project)
        self.place(version, review, label, name)
        return review["id"]

    def place(self, version, review, label: str, name: str) -> None:
        """Add *version* to *review* as :func:`plan_membership` decides, and commit."""
        version_id = version["id"]
        objects = self.session.query(
            "select id, version_id, asset_version.version, asset_version.asset_id, sort_order"
            f' from ReviewSessionObject where review_session_id is "{review["id"]}"'
        ).all()
        if any(o["version_id"] == version_id for o in objects):
            self.actions.noop("already_present", "%s is already in %r", label, name)
            return
        same_asset = {
            o["id"]: o["asset_version"]["version"]
            for o in objects
            if o["asset_version"] is not None
            and o["asset_version"]["asset_id"] == version["asset_id"]
        }
        add, remove = plan_membership(
            version_id, version["version"], same_asset, self.replace_previous
        )
        if not add:
            self.actions.count(
                "newer_present", "%s not added: %r shows a newer version", label, name
            )
            return
        for review_object in objects:
            if review_object["id"] in remove:
                self.session.delete(review_object)
        self.session.create(
            "ReviewSessionObject",
            {
                "review_session_id": review["id"],
                "version_id": version_id,
                "name": version["asset"]["name"],
                "version": f"v{version['version']:03d}",
                "description": "",
                "sort_order": max([o["sort_order"] or 0 for o in objects] + [0]) + 1,
            },
        )
        self.session.commit()
        self.actions.count(
            "added", "%s added to %r, replacing %d older version(s)", label, name, len(remove)
        )

    def project_of(self, version):
        project_id = version["task"]["project_id"] if version["task"] is not None else None
        if not project_id:
            asset = self.session.query(
                f'select parent.project_id from Asset where id is "{version["asset_id"]}"'
            ).first()
            project_id = asset and asset["parent"] and asset["parent"]["project_id"]
        if not project_id:
            return None
        return self.session.query(
            f'select id, name from Project where id is "{project_id}"'
        ).first()

    def review_session(self, name: str, project):
        """The project's session called *name*, created (not yet committed) when missing."""
        found = self.session.query(
            f'select id, name from ReviewSession where name is "{name}"'
            f' and project_id is "{project["id"]}"'
        ).first()
        if found is not None:
            return found
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        author = current_user(self.session)
        self.actions.count(
            "session_created", "creating review session %r in %s", name, project["name"]
        )
        return self.session.create(
            "ReviewSession",
            {
                "name": name,
                "description": f"Created by reviewd for versions in {self.status}.",
                "project_id": project["id"],
                "created_by_id": author["id"],
                "start_date": now,
                "end_date": now + datetime.timedelta(days=1),
                "created_at": now,
            },
        )


# ------------------------------------------------------------------ classic registration
def register(
    session, status="Pending Review", name_pattern="Dailies {date}", replace_previous=True
):
    """Classic ftrack entry point: check the arguments, then subscribe on the event hub.

    No ``**kwargs``: the plugin loader then drops (and names in a warning) arguments
    meant for other plugins instead of this function silently swallowing typos.

    The status name is checked against the server at once when the session is ready
    (the daemon registers plugins on a ready session).  A plain ``Session`` runs
    ``register()`` while it is still being built, before it can query; then the check
    waits for ``ftrack.api.session.ready`` and a bad name disables the plugin with an
    error in the log.
    """
    if not isinstance(replace_previous, bool):
        raise ValueError(f"{PLUGIN_NAME}: argument replace_previous must be true or false")
    if not isinstance(status, str) or not status.strip():
        raise ValueError(f"{PLUGIN_NAME}: argument status must be a status name")
    plugin = VersionToReview(
        session, status.strip(), check_name_pattern(name_pattern), replace_previous
    )
    if getattr(session, "types", None):
        plugin.validate()
    else:
        session.event_hub.subscribe("topic=ftrack.api.session.ready", plugin.validate_when_ready)
    session.event_hub.subscribe("topic=ftrack.update", plugin.handle)
    return plugin
