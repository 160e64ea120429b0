"""Review digest: one click turns a review session into a written summary.

After dailies, a coordinator has to tell everyone what was decided.  This plugin adds a
"Review digest" action to a review session's actions menu in the ftrack web UI.
Launched, it collects every version in the session with its status, the invitees'
verdicts and the notes written on it, and delivers the digest three ways:

- as a Note on the review session (the record in ftrack),
- as a Markdown file under a configured folder (for the wiki, the edit suite, mail),
- optionally POSTed as JSON to a webhook (Slack, Teams, Mattermost and Discord-style
  incoming webhooks read the ``text`` field; the structured digest rides along).

The launch reply tells the user where the digest went.  Idempotent: when the session's
newest digest Note already has identical content (a replayed launch, or nothing
changed since), no second Note and no second webhook post are made; the file is
rewritten with the same bytes.

Written as a pluggy plugin.  Arguments:

==================  =================  ====================================================
argument            default            meaning
==================  =================  ====================================================
``folder``          none (no file)     existing, writable folder for ``<session>.md`` files
``webhook_url``     none (no post)     ``http(s)://`` URL receiving the digest as JSON
``webhook_timeout`` ``10``             seconds to wait for the webhook
``note``            ``True``           attach the digest as a Note on the review session
==================  =================  ====================================================
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

import reviewd
from reviewd.api.exception import PluginError
from reviewd.plugin.helpers import (
    ActionLog,
    current_user,
    newest_notes,
    object_verdicts,
    plugin_logger,
)

PLUGIN_NAME = "review_digest"
ACTION_IDENTIFIER = "reviewd.review-digest"
ACTION_LABEL = "Review digest"
NOTE_PREFIX = "# Review digest: "
log = plugin_logger(PLUGIN_NAME)


# ------------------------------------------------------------------ arguments (pure)
@dataclass(frozen=True)
class Settings:
    folder: str | None = None
    webhook_url: str | None = None
    webhook_timeout: float = 10.0
    note: bool = True


def parse_settings(arguments: Mapping[str, object]) -> Settings:
    """Check every argument now, so a missing folder fails the load, not the first launch.

    Keys this plugin does not know are ignored (global arguments reach every plugin).
    """
    folder = arguments.get("folder")
    if folder is not None:
        if not isinstance(folder, str) or not folder.strip():
            raise PluginError(f"{PLUGIN_NAME}: argument folder must be a folder path")
        folder = os.path.abspath(os.path.expanduser(folder))
        if not os.path.isdir(folder):
            raise PluginError(
                f"{PLUGIN_NAME}: argument folder: {folder} does not exist or is not a folder; "
                "create it or point folder at an existing one"
            )
        if not os.access(folder, os.W_OK):
            raise PluginError(f"{PLUGIN_NAME}: argument folder: {folder} is not writable")
    url = arguments.get("webhook_url")
    if url is not None:
        parsed = urllib.parse.urlsplit(url) if isinstance(url, str) else None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise PluginError(
                f"{PLUGIN_NAME}: argument webhook_url must be an http:// or https:// URL, "
                f"not {url!r}"
            )
    timeout = arguments.get("webhook_timeout", 10.0)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise PluginError(f"{PLUGIN_NAME}: argument webhook_timeout must be a positive number")
    note = arguments.get("note", True)
    if not isinstance(note, bool):
        raise PluginError(f"{PLUGIN_NAME}: argument note must be true or false")
    return Settings(folder=folder, webhook_url=url, webhook_timeout=float(timeout), note=note)


# ------------------------------------------------------------------ digest (pure)
def summarise(versions: list[Mapping], invitee_count: int) -> dict[str, int]:
    """Counts for the digest's headline.

    A version is *approved* once every invitee approved it, has *changes requested*
    as soon as one invitee asked for them, and is *awaiting* verdicts otherwise.
    """
    summary = {"versions": len(versions), "approved": 0, "require_changes": 0, "awaiting": 0}
    for version in versions:
        verdicts = [v["verdict"] for v in version["verdicts"]]
        if "require_changes" in verdicts:
            summary["require_changes"] += 1
        elif invitee_count and verdicts.count("approved") >= invitee_count:
            summary["approved"] += 1
        else:
            summary["awaiting"] += 1
    return summary


def render_markdown(digest: Mapping) -> str:
    """The digest as Markdown: deterministic (no timestamps), so a replay is recognised."""
    session = digest["review_session"]
    summary = digest["summary"]
    lines = [
        f"{NOTE_PREFIX}{session['name']}",
        "",
        f"Project: {session['project']}",
        "",
        f"{summary['versions']} version(s): {summary['approved']} approved, "
        f"{summary['require_changes']} with changes requested, "
        f"{summary['awaiting']} awaiting verdicts.",
    ]
    for version in digest["versions"]:
        lines += ["", f"## {version['name']} ({version['status']})", ""]
        if version["verdicts"]:
            for verdict in version["verdicts"]:
                lines.append(f"- {verdict['invitee']}: {verdict['verdict'].replace('_', ' ')}")
        else:
            lines.append("- no verdicts yet")
        for note in version["notes"]:
            text = " ".join(note["content"].split())
            lines.append(f"  - note by {note['author']}: {text}")
    return "\n".join(lines) + "\n"


def webhook_payload(digest: Mapping, markdown: str) -> dict:
    """Chat webhooks show ``text``; tools that want structure read ``digest``."""
    return {"text": markdown, "digest": dict(digest)}


def file_name(session_name: str, session_id: str) -> str:
    """``Dailies 2026-11-26`` -> ``dailies-2026-11-26-eb16970c.md``; the id keeps two
    projects' same-named sessions apart."""
    slug = re.sub(r"[^a-z0-9]+", "-", session_name.lower()).strip("-") or "review"
    return f"{slug}-{session_id[:8]}.md"


def selected_review_session(event: Mapping) -> str | None:
    """The id of the single review session selected in the UI, else None."""
    selection = (event.get("data") or {}).get("selection") or []
    if len(selection) != 1:
        return None
    item = selection[0]
    kind = (item.get("entityType") or item.get("entity_type") or "").lower()
    return item.get("entityId") if kind == "reviewsession" else None


# ------------------------------------------------------------------ ftrack side
class ReviewDigest:
    def __init__(self, session, settings: Settings) -> None:
        self.session = session
        self.settings = settings
        self.actions = ActionLog(
            PLUGIN_NAME, "What the review-digest plugin did, by action.", logger=log
        )

    def discover(self, event):
        if selected_review_session(event) is None:
            return None
        return {
            "items": [
                {
                    "label": ACTION_LABEL,
                    "actionIdentifier": ACTION_IDENTIFIER,
                    "description": "Summarise every version's verdicts and notes",
                }
            ]
        }

    def launch(self, event):
        review_id = selected_review_session(event)
        if review_id is None:
            return {"success": False, "message": "Select exactly one review session."}
        digest = self.collect(review_id)
        if digest is None:
            return {"success": False, "message": f"Review session {review_id} not found."}
        try:
            places = self.deliver(review_id, digest, render_markdown(digest))
        except OSError as error:  # file or webhook: tell the user, who can launch again
            self.actions.count(
                "delivery_failed", "digest of %s not delivered: %s", review_id, error
            )
            return {
                "success": False,
                "message": f"Digest not delivered: {error}. Launch again to retry.",
            }
        return {"success": True, "message": self.message(digest, places)}

    def deliver(self, review_id: str, digest: Mapping, markdown: str) -> list[str]:
        """Write, post and attach the digest; return where it went.

        The Note comes last because it marks the digest as delivered: a launch that
        finds it unchanged posts nothing, and one that failed before it retries all.
        """
        places = []
        if self.settings.folder:
            name = file_name(digest["review_session"]["name"], review_id)
            path = os.path.join(self.settings.folder, name)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(markdown)
            places.append(f"file {path}")
        if self.settings.note and markdown in newest_notes(self.session, review_id, NOTE_PREFIX):
            self.actions.count(
                "replay_ignored", "digest of %s unchanged; not posted again", review_id
            )
            return ["note unchanged since the last digest", *places]
        if self.settings.webhook_url:
            status = self.post(webhook_payload(digest, markdown))
            places.append(f"webhook {self.settings.webhook_url} (HTTP {status})")
        if self.settings.note:
            self.session.create(
                "Note",
                {
                    "content": markdown,
                    "author": current_user(self.session),
                    "parent_id": review_id,
                    "parent_type": "ReviewSession",
                },
            )
            self.session.commit()
            places.insert(0, "note on the review session")
        self.actions.count("digest_delivered", "digest of %s delivered: %s", review_id, places)
        return places

    @staticmethod
    def message(digest: Mapping, places: list[str]) -> str:
        where = "; ".join(places) or "nowhere (no note, folder or webhook configured)"
        return (
            f"Review digest of {digest['summary']['versions']} version(s) "
            f"in {digest['review_session']['name']}: {where}."
        )

    def collect(self, review_id: str) -> dict | None:
        """Read the session, its versions, verdicts and notes into a plain digest mapping."""
        review = self.session.query(
            f'select id, name, project.name from ReviewSession where id is "{review_id}"'
        ).first()
        if review is None:
            return None
        invitees = self.session.query(
            f'select id, name, email from ReviewSessionInvitee where review_session_id is "{review_id}"'
        ).all()
        names = {i["id"]: i["name"] or i["email"] for i in invitees}
        objects = self.session.query(
            "select id, version_id, sort_order, asset_version.version,"
            " asset_version.asset.name, asset_version.status.name"
            f' from ReviewSessionObject where review_session_id is "{review_id}"'
        ).all()
        versions = []
        for review_object in sorted(objects, key=lambda o: (o["sort_order"] or 0, o["id"])):
            version = review_object["asset_version"]
            versions.append(
                {
                    "name": f"{version['asset']['name']} v{version['version']:03d}",
                    "version_id": review_object["version_id"],
                    "status": version["status"]["name"] if version["status"] else "no status",
                    "verdicts": self.verdicts(review_object["id"], names),
                    "notes": self.notes(review_object["version_id"], review_object["id"]),
                }
            )
        return {
            "review_session": {
                "id": review_id,
                "name": review["name"],
                "project": review["project"]["name"] if review["project"] else "",
            },
            "summary": summarise(versions, len(invitees)),
            "versions": versions,
        }

    def verdicts(self, object_id: str, names: Mapping[str, str]) -> list[dict]:
        """Each invitee's latest verdict on the object, sorted by invitee name."""
        latest = object_verdicts(self.session, object_id, names)
        return [{"invitee": k, "verdict": latest[k]} for k in sorted(latest)]

    def notes(self, version_id: str, object_id: str) -> list[dict]:
        """Notes written on the version or on its entry in the session, oldest first."""
        rows = self.session.query(
            "select content, date, author.username from Note"
            f' where parent_id in ("{version_id}", "{object_id}")'
        ).all()
        rows = sorted(rows, key=lambda n: (str(n["date"] or ""), n["content"] or ""))
        return [
            {
                "author": note["author"]["username"] if note["author"] else "unknown",
                "content": note["content"] or "",
            }
            for note in rows
        ]

    def post(self, payload: dict) -> int:
        request = urllib.request.Request(
            self.settings.webhook_url,
            data=json.dumps(payload).encode("utf-8"),
            headers={"content-type": "application/json", "user-agent": "reviewd-review-digest"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.settings.webhook_timeout) as reply:
                return reply.status
        except OSError as error:  # URLError, HTTPError (4xx/5xx), timeouts
            raise OSError(f"webhook {self.settings.webhook_url} failed ({error})") from error


# ------------------------------------------------------------------ pluggy glue
_plugin: ReviewDigest | None = None


@reviewd.hookimpl
def reviewd_register(session, registry, arguments):
    global _plugin
    plugin = ReviewDigest(session, parse_settings(arguments or {}))
    registry.subscribe("topic=ftrack.action.discover", plugin.discover)
    registry.subscribe(
        f"topic=ftrack.action.launch and data.actionIdentifier={ACTION_IDENTIFIER}",
        plugin.launch,
        timeout=max(30.0, plugin.settings.webhook_timeout * 2),
    )
    _plugin = plugin


@reviewd.hookimpl
def reviewd_prometheus_collectors():
    return _plugin.actions.collectors() if _plugin is not None else []
