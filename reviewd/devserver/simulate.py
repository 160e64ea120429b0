"""Believable production activity for demos: ``reviewd devserver --simulate RATE``.

A demo of a review daemon is dull when nothing happens, so the simulator plays a small
studio: artists move tasks through the workflow, publish new versions, supervisors give
review verdicts and write notes.  Every change goes through
``DevServer.execute_batch(operations, user)`` — the very path ``POST /api`` takes — so
each one is committed atomically and produces the same ``ftrack.update`` event a real
client's change would.  Nothing here touches the store or the event server directly.

*rate* is the average number of changes per second (a Poisson process, so the demo feed
looks organic rather than metronomic).
"""

from __future__ import annotations

import collections
import datetime as _dt
import logging
import random
import threading
import uuid
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)

#: Where a task goes next, by status name (lower case).  Unknown names move at random.
TASK_WORKFLOW = {
    "not started": ["in progress"],
    "ready": ["in progress"],
    "in progress": ["pending review", "in progress"],
    "pending review": ["approved", "requires changes"],
    "requires changes": ["in progress"],
    "approved": ["in progress", "approved"],
}
VERDICTS = {"approved": "approved", "require_changes": "requires changes"}
NOTE_LINES = [
    "Edges on the matte are chattering around frame 1040, can we soften them?",
    "Love the new lighting pass; the rim on the hero reads much better.",
    "Timing feels a touch slow in the second half, trim 6 frames?",
    "Approved for comp, thanks!",
    "Motion blur looks off on the fast pan, please check the shutter.",
    "Colour is drifting warm compared to the plate, match to ref.",
    "Good progress. Can we see this with the final textures next round?",
    "The contact shadow is missing under the left foot.",
]
VERSION_COMMENTS = [
    "Lighting pass, ready for review",
    "Addressed notes from dailies",
    "New animation blocking",
    "Fixed flicker on the background",
    "Updated textures and lookdev",
    "Comp v2 with new plates",
]


class _ExecutesBatches(Protocol):
    def execute_batch(self, operations: list[dict], user: str) -> list[dict]: ...


class Simulator:
    """Make random, plausible changes to a running :class:`DevServer` at *rate* per second.

    ``start()``/``stop()`` run it on a daemon thread; :meth:`step` makes one change
    synchronously (handy in tests).  ``counts`` tallies changes by kind and ``errors``
    failures: a failing change is logged and skipped, never fatal.
    """

    KINDS = ("task_status", "new_version", "review_verdict", "note")
    WEIGHTS = (4, 2, 2, 2)

    def __init__(
        self,
        server: _ExecutesBatches,
        rate: float,
        *,
        seed: int | None = None,
        user: str | None = None,
    ) -> None:
        if not rate or rate <= 0:
            raise ValueError("the simulation rate must be a positive number of changes per second")
        self.server = server
        self.rate = float(rate)
        self.counts: collections.Counter = collections.Counter()
        self.errors = 0
        self.last_error: str | None = None
        self._fallback_user = user or getattr(server, "api_user", None)
        self._random = random.Random(seed)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Simulator:
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="reviewd-simulator", daemon=True)
        self._thread.start()
        log.info("simulating production activity at %.2f changes/s", self.rate)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.wait(self._random.expovariate(self.rate)):
            self.step()

    # ------------------------------------------------------------------ one change
    def step(self, kind: str | None = None) -> str | None:
        """Make one change of *kind* (random when None); return the kind done, or None
        when the data offers nothing to change for it or the change failed."""
        if kind is not None:
            kinds = [kind]
        else:  # a random kind first, then the others in case the data offers nothing
            first = self._random.choices(self.KINDS, self.WEIGHTS, k=1)[0]
            kinds = [first, *(k for k in self.KINDS if k != first)]
        makers: dict[str, Callable[[], tuple[list[dict], str] | None]] = {
            "task_status": self._task_status,
            "new_version": self._new_version,
            "review_verdict": self._review_verdict,
            "note": self._note,
        }
        for name in kinds:
            try:
                planned = makers[name]()
                if planned is None:
                    continue
                operations, user = planned
                self.server.execute_batch(operations, user)
            except Exception as error:  # a demo must not die of one bad change
                self.errors += 1
                self.last_error = f"{name}: {error}"
                log.warning("simulated %s failed: %s", name, error)
                return None
            self.counts[name] += 1
            return name
        return None

    # ------------------------------------------------------------------ queries
    def _query(self, expression: str) -> list[dict]:
        if not self._fallback_user:
            raise RuntimeError("the simulator needs a user: pass user= or a server with api_user")
        user = self._fallback_user
        result = self.server.execute_batch([{"action": "query", "expression": expression}], user)
        return list(result[0].get("data") or [])

    def _pick(self, rows: list[dict]) -> dict | None:
        return self._random.choice(rows) if rows else None

    def _actor(self) -> tuple[str, str | None]:
        """A random active user (username, id) to make the change, else the API user."""
        users = self._query("select id, username from User where is_active is True")
        chosen = self._pick(users)
        if chosen is None:
            return str(self._fallback_user), None
        return chosen["username"], chosen["id"]

    def _statuses(self) -> dict[str, str]:
        rows = self._query("select id, name from Status")
        return {row["name"].lower(): row["id"] for row in rows if row.get("name")}

    # ------------------------------------------------------------------ makers
    def _task_status(self) -> tuple[list[dict], str] | None:
        task = self._pick(self._query("select id, name, status_id from Task"))
        statuses = self._statuses()
        if task is None or len(statuses) < 2:
            return None
        by_id: dict[Any, str] = {sid: name for name, sid in statuses.items()}
        current = by_id.get(task.get("status_id"), "")
        choices = [n for n in TASK_WORKFLOW.get(current, []) if n in statuses] or [
            n for n in statuses if n != current
        ]
        new_status = statuses[self._random.choice(choices)]
        if new_status == task.get("status_id"):
            new_status = statuses[self._random.choice([n for n in statuses if n != current])]
        user, _ = self._actor()
        return [_update("Task", task["id"], {"status_id": new_status})], user

    def _new_version(self) -> tuple[list[dict], str] | None:
        template = self._pick(self._query("select id, asset_id, task_id from AssetVersion"))
        if template is None:
            return None
        siblings = self._query(
            f'select version from AssetVersion where asset_id is "{template["asset_id"]}"'
        )
        number = max((row.get("version") or 0 for row in siblings), default=0) + 1
        statuses = self._statuses()
        status = statuses.get("pending review") or next(iter(statuses.values()), None)
        if status is None:
            return None
        user, user_id = self._actor()
        data: dict[str, Any] = {
            "asset_id": template["asset_id"],
            "version": number,
            "status_id": status,
            "is_published": True,
            "comment": self._random.choice(VERSION_COMMENTS),
        }
        if template.get("task_id"):
            data["task_id"] = template["task_id"]
        if user_id:
            data["user_id"] = user_id
        return [_create("AssetVersion", data)], user

    def _review_verdict(self) -> tuple[list[dict], str] | None:
        shown = self._pick(
            self._query("select id, review_session_id, version_id from ReviewSessionObject")
        )
        if shown is None:
            return None
        invitee = self._pick(
            self._query(
                "select id, name from ReviewSessionInvitee where review_session_id is "
                f'"{shown["review_session_id"]}"'
            )
        )
        verdict = self._random.choice(list(VERDICTS))
        data: dict[str, Any] = {
            "status": verdict,
            "review_session_object_id": shown["id"],
            "created_at": _now(),
        }
        if invitee is not None:
            data["review_session_invitee_id"] = invitee["id"]
        operations = [_create("ReviewSessionObjectStatus", data)]
        version_status = self._statuses().get(VERDICTS[verdict])
        if version_status and shown.get("version_id"):
            operations.append(
                _update("AssetVersion", shown["version_id"], {"status_id": version_status})
            )
        user, _ = self._actor()
        return operations, user

    def _note(self) -> tuple[list[dict], str] | None:
        version = self._pick(self._query("select id from AssetVersion"))
        if version is None:
            return None
        user, user_id = self._actor()
        if user_id is None:
            return None
        data: dict[str, Any] = {
            "content": self._random.choice(NOTE_LINES),
            "parent_id": version["id"],
            "parent_type": "AssetVersion",
            "user_id": user_id,
        }
        category = self._pick(self._query("select id from NoteCategory"))
        if category is not None:
            data["category_id"] = category["id"]
        return [_create("Note", data)], user


def _create(entity_type: str, data: dict) -> dict:
    entity_id = str(uuid.uuid4())
    return {
        "action": "create",
        "entity_type": entity_type,
        "entity_key": [entity_id],
        "entity_data": {"__entity_type__": entity_type, "id": entity_id, **data},
    }


def _update(entity_type: str, entity_id: str, changes: dict) -> dict:
    return {
        "action": "update",
        "entity_type": entity_type,
        "entity_key": [entity_id],
        "entity_data": {"__entity_type__": entity_type, **changes},
    }


def _now() -> dict:
    moment = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0, tzinfo=None)
    return {"__type__": "datetime", "value": moment.isoformat()}
