"""Helpers for plugin authors: what every review-workflow plugin ends up writing.

Every file on a plugin path is loaded as a plugin, so the plugins in one folder
cannot share a helper module there; the code they all need lives here instead,
in the installed package, where a plugin imports it like any library::

    from reviewd.plugin.helpers import ActionLog, resolve_statuses

It depends on nothing of the daemon -- only on a session (anything with
``query()``, ``api_user``) and ``prometheus_client`` -- so a classic
``register()`` plugin using it still runs under a plain ``reviewd.Session``.

What is here, and why:

* :func:`plugin_logger` -- the ``reviewd.plugins.<name>`` logger every plugin logs
  on, so operators filter one plugin's lines by logger name;
* :func:`resolve_statuses` -- check configured status names against the server
  at load time, so a typo fails the load with the argument named and the real
  statuses listed, instead of silently never matching;
* :class:`ActionLog` -- count each thing a plugin did and log one line for it:
  a Prometheus counter ``reviewd_plugin_<name>_actions_total{action=...}`` for
  pluggy plugins, running totals in the log line for classic ones;
* :func:`event_entities`, :func:`entity_is`, :func:`status_changed` -- pick the entities a plugin
  cares about out of an ``ftrack.update`` event, in either key spelling;
* :func:`current_user` -- the API user, the author of the notes a plugin writes;
* :func:`newest_notes` -- a plugin's own newest notes on an entity: the record
  that a decision was applied, which makes a replayed event harmless;
* :func:`normalise_verdict`, :class:`Verdict`, :func:`latest_verdicts`,
  :func:`object_verdicts` -- review verdicts as recorded in the wild, reduced to
  one current verdict per invitee.
"""

from __future__ import annotations

import collections
import logging
import re
import threading
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter

from reviewd.api.exception import PluginError

__all__ = [
    "APPROVED",
    "REQUIRE_CHANGES",
    "ActionLog",
    "Verdict",
    "current_user",
    "entity_is",
    "event_entities",
    "latest_verdicts",
    "newest_notes",
    "normalise_verdict",
    "object_verdicts",
    "plugin_logger",
    "resolve_statuses",
    "status_changed",
]

#: The two verdicts a review invitee can record, as :func:`normalise_verdict` spells them.
APPROVED = "approved"
REQUIRE_CHANGES = "require_changes"

_VERDICT_SPELLINGS = {
    "approved": APPROVED,
    "approve": APPROVED,
    "require_changes": REQUIRE_CHANGES,
    "requires_changes": REQUIRE_CHANGES,
    "changes_requested": REQUIRE_CHANGES,
}

_STATUS_KEYS = frozenset({"statusid", "status_id"})


# ------------------------------------------------------------------ logging and counting
def plugin_logger(plugin_name: str) -> logging.Logger:
    """The logger of plugin *plugin_name*: ``reviewd.plugins.<plugin_name>``."""
    return logging.getLogger(f"reviewd.plugins.{plugin_name}")


class ActionLog:
    """Counts what a plugin did, by action, and logs one line per action.

    Every decision a plugin takes should be both a metric and a log line: the
    metric shows what it does over weeks, the line explains one event.

    With a *description*, a Prometheus counter
    ``reviewd_plugin_<plugin_name>_actions_total{action=...}`` is kept; return
    :meth:`collectors` from the ``reviewd_prometheus_collectors`` hook to expose
    it (it is not registered globally, so a reloaded plugin does not collide
    with its previous self).  Without one -- a classic plugin has no hook to
    expose a metric -- each log line carries the running total instead:
    ``"... [added total: 3]"``.
    """

    def __init__(
        self,
        plugin_name: str,
        description: str | None = None,
        *,
        logger: logging.Logger | None = None,
    ) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_]+", plugin_name or ""):
            raise ValueError(
                f"plugin name {plugin_name!r} cannot name a metric: use letters, digits and _"
            )
        self.plugin_name = plugin_name
        self.log = logger or plugin_logger(plugin_name)
        #: Running totals by action, kept with or without a Prometheus counter.
        self.totals: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()  # a plugin may run several workers
        self.metric: Counter | None = None
        if description is not None:
            self.metric = Counter(
                f"reviewd_plugin_{plugin_name}_actions", description, ["action"], registry=None
            )

    def count(self, action: str, message: str, *args: Any) -> None:
        """Count *action* and log *message* % *args* at INFO on the plugin's logger."""
        with self._lock:
            self.totals[action] += 1
            total = self.totals[action]
        if self.metric is not None:
            self.metric.labels(action).inc()
            self.log.info(message, *args)
        else:
            self.log.info(message + " [%s total: %d]", *args, action, total)

    def noop(self, action: str, message: str, *args: Any) -> None:
        """Count *action* like :meth:`count`, but log at DEBUG: a decision to do nothing.

        Why a level of its own: "parent stays In progress" happens for most events a
        plugin sees; at INFO it buries the lines that report a change.  The count (and
        the metric) still shows how often it happens.
        """
        with self._lock:
            self.totals[action] += 1
            total = self.totals[action]
        if self.metric is not None:
            self.metric.labels(action).inc()
            self.log.debug(message, *args)
        else:
            self.log.debug(message + " [%s total: %d]", *args, action, total)

    def collectors(self) -> list[Counter]:
        """What ``reviewd_prometheus_collectors`` should return for this log."""
        return [self.metric] if self.metric is not None else []


# ------------------------------------------------------------------ configuration
def resolve_statuses(
    session: Any,
    plugin_name: str,
    statuses: Mapping[str, str],
    *,
    error: type[Exception] = PluginError,
) -> dict[str, str]:
    """Look configured status names up on the server; return ``{status name: id}``.

    *statuses* maps each argument name to the status name it was given.  Call it
    when the plugin loads: an unknown name raises *error* (``PluginError`` unless
    a plugin wants its own type) with one line naming the plugin, the argument and
    the statuses the server does have -- the fix is in the message.
    """
    resolved: dict[str, str] = {}
    for argument, name in statuses.items():
        if name in resolved:
            continue
        found = session.query(f'select id from Status where name is "{name}"').first()
        if found is None:
            known = sorted(s["name"] for s in session.query("select name from Status").all())
            raise error(
                f"{plugin_name}: argument {argument}: unknown status {name!r}; "
                f"known statuses: {', '.join(known)}"
            )
        resolved[name] = found["id"]
    return resolved


# ------------------------------------------------------------------ events
def entity_is(entity: Mapping, entity_type: str) -> bool:
    """Is this ``ftrack.update`` entity an *entity_type* (e.g. ``"AssetVersion"``)?

    ftrack names the type twice: ``entity_type`` (``"AssetVersion"``) and the
    legacy lower-case ``entityType`` (``"assetversion"``); either matches, since
    some servers and replayed events carry only one of them.
    """
    if (entity.get("entity_type") or "") == entity_type:
        return True
    return (entity.get("entityType") or "").lower() == entity_type.lower()


def event_entities(
    event: Mapping, entity_type: str, actions: Collection[str] | None = ("add", "update")
) -> list[Mapping]:
    """The entities of *entity_type* (see :func:`entity_is`) in an ``ftrack.update``
    event whose action is in *actions* (``None``: any action)."""
    return [
        entity
        for entity in (event.get("data") or {}).get("entities") or []
        if entity_is(entity, entity_type) and (actions is None or entity.get("action") in actions)
    ]


def status_changed(entity: Mapping) -> bool:
    """Does this ``ftrack.update`` entity report a change of its status?"""
    keys = set(entity.get("keys") or []) | set(entity.get("changes") or {})
    return bool(keys & _STATUS_KEYS)


# ------------------------------------------------------------------ server data
def current_user(session: Any) -> Any:
    """The ``User`` the session works as: the author of the notes a plugin writes."""
    return session.query(f'select id from User where username is "{session.api_user}"').one()


def newest_notes(session: Any, parent_id: str, prefix: str) -> list[str]:
    """The contents of the newest notes on *parent_id* that start with *prefix*.

    A plugin marks the notes it writes with a fixed prefix; its newest one is the
    record of the last decision it applied.  Comparing a new decision with it (and
    not with every older note) lets a review that goes approved -> changes ->
    approved act each time, while a replay finds its own note on top.  Several
    notes can share the newest date (dates are stored to the second): all of
    them are returned.  Empty when the plugin never wrote one.
    """
    notes = session.query(f'select content, date from Note where parent_id is "{parent_id}"').all()
    ours = [note for note in notes if (note["content"] or "").startswith(prefix)]
    if not ours:
        return []
    newest = max(str(note["date"] or "") for note in ours)
    return [note["content"] for note in ours if str(note["date"] or "") == newest]


# ------------------------------------------------------------------ review verdicts
def normalise_verdict(status: str | None) -> str:
    """Map the verdict spellings seen in the wild onto ``approved`` / ``require_changes``.

    Servers, versions and hand-written test data say ``Approved``, ``approve``,
    ``requires changes``, ``changes-requested``...; anything else comes back
    lower-cased with ``_`` for spaces and dashes.
    """
    key = (status or "").strip().lower().replace(" ", "_").replace("-", "_")
    return _VERDICT_SPELLINGS.get(key, key)


@dataclass(frozen=True)
class Verdict:
    """One invitee's verdict as recorded; ``at`` sorts chronologically (ISO text)."""

    invitee: str
    status: str
    at: str = ""


def object_verdicts(
    session: Any, object_id: str, invitee_names: Mapping[str, str]
) -> dict[str, str]:
    """Each invitee's latest verdict on review session object *object_id*, from the server.

    *invitee_names* maps ``ReviewSessionInvitee`` ids to the names to report
    (a verdict by an invitee not in it counts as ``"unknown invitee"``).
    """
    rows = session.query(
        "select status, created_at, review_session_invitee_id from ReviewSessionObjectStatus"
        f' where review_session_object_id is "{object_id}"'
    ).all()
    return latest_verdicts(
        Verdict(
            invitee=invitee_names.get(row["review_session_invitee_id"]) or "unknown invitee",
            status=row["status"],
            at=str(row["created_at"] or ""),
        )
        for row in rows
    )


def latest_verdicts(verdicts: Iterable[Verdict]) -> dict[str, str]:
    """Each invitee's most recent verdict, normalised: a reviewer who changes their
    mind counts once, with what they said last (a tie goes to the later record)."""
    latest: dict[str, Verdict] = {}
    for verdict in verdicts:
        known = latest.get(verdict.invitee)
        if known is None or verdict.at >= known.at:
            latest[verdict.invitee] = verdict
    return {invitee: normalise_verdict(v.status) for invitee, v in latest.items()}
