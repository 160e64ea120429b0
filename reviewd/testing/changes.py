"""The changes a user makes in ftrack, made through the API so that the server
publishes ``ftrack.update`` exactly as it does for a user: change a status, publish a
version, record a review verdict.

Why helpers: a plugin test is about what the plugin does with the event; building the
review session, the invitee and the review object that a verdict needs is the same
ten lines in every test and easy to get subtly wrong.  Each method commits its change
(the commit is what makes the server publish the event) and returns the entity.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

__all__ = ["FtrackChanges"]


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def _quote(value: str) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


class FtrackChanges:
    """Changes through *session* (a ``reviewd.Session``), each committed at once."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self._review_sessions: dict[str, Any] = {}

    # ------------------------------------------------------------------ lookups
    def one(self, entity_type: str, **criteria: Any) -> Any:
        """The one *entity_type* matching ``attribute=value`` criteria (an error naming
        the query when there is none or several)."""
        where = " and ".join(f"{key} is {_quote(value)}" for key, value in criteria.items())
        query = f"{entity_type} where {where}" if where else entity_type
        found = self.session.query(query).all()
        if len(found) != 1:
            raise LookupError(f"expected one result for {query!r}, got {len(found)}")
        return found[0]

    def status(self, name: str) -> Any:
        """The ``Status`` named *name*; the error lists the server's statuses."""
        found = self.session.query(
            f"select id, name from Status where name is {_quote(name)}"
        ).all()
        if not found:
            names = sorted(s["name"] for s in self.session.query("select name from Status"))
            raise LookupError(f"no status named {name!r}; the server has: {', '.join(names)}")
        return found[0]

    def _entity(self, entity: Any, entity_type: str) -> Any:
        if isinstance(entity, str):
            return self.session.get(entity_type, entity) or self._missing(entity_type, entity)
        if hasattr(entity, "entity_type"):
            # Possibly from another session (the test's own): change it in ours.
            return self.session.get(entity.entity_type, entity["id"])
        if isinstance(entity, Mapping) and "id" in entity:
            return self.session.get(entity_type, entity["id"])
        raise TypeError(f"expected a {entity_type} entity or its id, got {entity!r}")

    @staticmethod
    def _missing(entity_type: str, entity_id: str) -> Any:
        raise LookupError(f"no {entity_type} with id {entity_id!r}")

    # ------------------------------------------------------------------ changes
    def set_status(self, entity: Any, status: str, entity_type: str = "Task") -> Any:
        """Set *entity*'s status to the one named *status* (an ``ftrack.update`` with
        action ``update`` and ``statusid`` in its keys).  *entity_type* is only used
        when *entity* is an id."""
        target = self._entity(entity, entity_type)
        target["status"] = self.status(status)
        self.session.commit()
        return target

    def add_version(
        self,
        asset: Any,
        *,
        status: str = "Pending Review",
        comment: str = "Published by a test",
        task: Any = None,
    ) -> Any:
        """Publish the next ``AssetVersion`` of *asset* (an Asset, its id, or its name),
        in *status*, from *task* (default: the task of its latest version)."""
        if isinstance(asset, str) and self.session.get("Asset", asset) is None:
            asset = self.one("Asset", name=asset)
        asset = self._entity(asset, "Asset")
        versions = self.session.query(
            f"select version, task_id from AssetVersion where asset_id is {_quote(asset['id'])}"
        ).all()
        latest = max(versions, key=lambda v: v["version"] or 0, default=None)
        data: dict[str, Any] = {
            "asset_id": asset["id"],
            "version": (latest["version"] if latest else 0) + 1,
            "status_id": self.status(status)["id"],
            "comment": comment,
            "is_published": True,
            "date": _now(),
        }
        task_id = task if task is None or isinstance(task, str) else task["id"]
        if task_id is None and latest is not None:
            task_id = latest["task_id"]
        if task_id is not None:
            data["task_id"] = task_id
        version = self.session.create("AssetVersion", data)
        self.session.commit()
        return version

    def record_verdict(
        self,
        version: Any,
        verdict: str = "approved",
        *,
        invitee: str = "Reviewer",
        review_session: Any = None,
    ) -> Any:
        """Record *invitee*'s *verdict* (``approved``, ``require_changes``, ...) on
        *version* in a review session (default: one created for the test in the
        version's project), creating the invitee and the review object when needed."""
        version = self._entity(version, "AssetVersion")
        project_id = self.session.query(
            f"select asset.parent.project_id from AssetVersion where id is {_quote(version['id'])}"
        ).one()["asset"]["parent"]["project_id"]
        review = (
            self._entity(review_session, "ReviewSession")
            if review_session is not None
            else self._review_session(project_id)
        )
        invitee_entity = self._invitee(review, invitee)
        review_object = self._review_object(review, version)
        status = self.session.create(
            "ReviewSessionObjectStatus",
            {
                "status": verdict,
                "review_session_object_id": review_object["id"],
                "review_session_invitee_id": invitee_entity["id"],
                "created_at": _now(),
            },
        )
        self.session.commit()
        return status

    def _review_session(self, project_id: str) -> Any:
        if project_id not in self._review_sessions:
            self._review_sessions[project_id] = self.session.create(
                "ReviewSession",
                {
                    "name": "Test review",
                    "description": "made by reviewd.testing",
                    "project_id": project_id,
                    "start_date": _now(),
                    "end_date": _now(),
                    "created_at": _now(),
                    "is_open": True,
                },
            )
            self.session.commit()
        return self._review_sessions[project_id]

    def _invitee(self, review: Any, name: str) -> Any:
        found = self.session.query(
            "select id, name from ReviewSessionInvitee where review_session_id is "
            f"{_quote(review['id'])} and name is {_quote(name)}"
        ).all()
        if found:
            return found[0]
        email = ".".join(name.lower().split()) + "@studio.example"
        invitee = self.session.create(
            "ReviewSessionInvitee",
            {"name": name, "email": email, "review_session_id": review["id"]},
        )
        self.session.commit()
        return invitee

    def _review_object(self, review: Any, version: Any) -> Any:
        found = self.session.query(
            "select id from ReviewSessionObject where review_session_id is "
            f"{_quote(review['id'])} and version_id is {_quote(version['id'])}"
        ).all()
        if found:
            return found[0]
        review_object = self.session.create(
            "ReviewSessionObject",
            {
                "name": "version",
                "description": "",
                "version_id": version["id"],
                "review_session_id": review["id"],
                "sort_order": 0,
                "version": f"v{version['version'] or 0:03d}",
            },
        )
        self.session.commit()
        return review_object
