"""The durable journal: every routed event is written here before any plugin sees it.

Why SQLite in WAL mode: a single file under the state directory, no service to run,
transactions that survive ``kill -9`` of the daemon (a committed WAL frame is in the
OS's page cache the moment ``COMMIT`` returns; ``synchronous=NORMAL`` only risks the
last transactions on a power cut, which is the usual trade for a queue), and readers
(``reviewd journal list`` in another process) that never block the daemon.

Model: one row per event (deduplicated by the event's id) and one *delivery* row per
(event, plugin).  A delivery is ``pending`` until the plugin's handlers succeed
(``done``) or the retry budget is spent (``dead``).  On start the daemon replays every
pending delivery; ``done`` rows older than the retention period are pruned; ``dead``
rows stay until an operator retries or purges them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    topic TEXT NOT NULL,
    payload TEXT NOT NULL,
    received_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    event_seq INTEGER NOT NULL REFERENCES events(seq) ON DELETE CASCADE,
    plugin TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    updated_at REAL NOT NULL,
    PRIMARY KEY (event_seq, plugin)
);
CREATE INDEX IF NOT EXISTS deliveries_by_state ON deliveries (state, plugin, event_seq);
"""

PENDING, DONE, DEAD = "pending", "done", "dead"


@dataclasses.dataclass(frozen=True)
class Delivery:
    """One (event, plugin) pair as stored in the journal."""

    seq: int | str  # the SQLite row number, or the Redis stream entry id
    event_id: str
    topic: str
    plugin: str
    state: str
    attempts: int
    last_error: str | None
    received_at: float
    updated_at: float
    payload: dict[str, Any]


class JournalError(Exception):
    """The journal file cannot be opened or written (disk full, permissions, corrupt)."""


def event_id_of(event: Mapping[str, Any]) -> str:
    return str(event["id"])


def _jsonable(event: Mapping[str, Any]) -> dict[str, Any]:
    """The wire-form dict of an event (Event objects are mappings; keep camelCase)."""
    data = dict(event)
    if "in_reply_to_event" in data and "inReplyToEvent" not in data:
        data["inReplyToEvent"] = data.pop("in_reply_to_event")
    return data


class SqliteJournal:
    """A thread-safe journal in one SQLite file (one connection guarded by a lock)."""

    def __init__(self, path: str) -> None:
        self.path = path
        directory = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(directory, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                       timeout=30.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except (sqlite3.Error, OSError) as exc:
            raise JournalError(f"cannot open journal {path}: {exc}") from exc
        self._lock = threading.Lock()
        self._closed = False

    # ------------------------------------------------------------------ writing
    def record(self, event: Mapping[str, Any], plugins: Iterable[str]) -> list[str]:
        """Journal *event* for *plugins*; return the plugins it is new for (dedupe by id).

        Returns only after the transaction committed, so a caller that dispatches what
        this returns never dispatches an event that a crash could forget.
        """
        plugins = list(dict.fromkeys(plugins))
        if not plugins:
            return []
        payload = json.dumps(_jsonable(event), default=str, separators=(",", ":"))
        now = time.time()
        event_id = event_id_of(event)
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                cur.execute(
                    "INSERT OR IGNORE INTO events (id, topic, payload, received_at)"
                    " VALUES (?, ?, ?, ?)",
                    (event_id, str(event.get("topic", "")), payload, now),
                )
                seq = cur.execute("SELECT seq FROM events WHERE id = ?", (event_id,)).fetchone()[0]
                new = []
                for plugin in plugins:
                    cur.execute(
                        "INSERT OR IGNORE INTO deliveries (event_seq, plugin, updated_at)"
                        " VALUES (?, ?, ?)",
                        (seq, plugin, now),
                    )
                    if cur.rowcount == 1:
                        new.append(plugin)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return new

    def _update(self, sql: str, params: tuple) -> int:
        with self._lock:
            return self._db.execute(sql, params).rowcount

    def mark_done(self, event_id: str, plugin: str) -> None:
        """The plugin's handlers all succeeded: never deliver this again."""
        self._update(
            "UPDATE deliveries SET state='done', updated_at=?, attempts=attempts+1 "
            "WHERE plugin=? AND event_seq=(SELECT seq FROM events WHERE id=?)",
            (time.time(), plugin, event_id),
        )

    def mark_failed(self, event_id: str, plugin: str, error: str) -> None:
        """Count one failed attempt; the delivery stays pending (it will be retried)."""
        self._update(
            "UPDATE deliveries SET attempts=attempts+1, last_error=?, updated_at=? "
            "WHERE plugin=? AND event_seq=(SELECT seq FROM events WHERE id=?)",
            (error[:4000], time.time(), plugin, event_id),
        )

    def mark_dead(self, event_id: str, plugin: str, error: str) -> None:
        """The retry budget is spent: keep it as a dead letter for an operator."""
        self._update(
            "UPDATE deliveries SET state='dead', attempts=attempts+1, last_error=?, updated_at=? "
            "WHERE plugin=? AND event_seq=(SELECT seq FROM events WHERE id=?)",
            (error[:4000], time.time(), plugin, event_id),
        )

    def retry_dead(self, event_id: str | None = None, plugin: str | None = None) -> int:
        """Turn dead letters back into pending deliveries (attempts reset)."""
        sql = "UPDATE deliveries SET state='pending', attempts=0, updated_at=? WHERE state='dead'"
        params: list[Any] = [time.time()]
        sql, params = self._filter(sql, params, event_id, plugin)
        return self._update(sql, tuple(params))

    def purge_dead(self, event_id: str | None = None, plugin: str | None = None) -> int:
        """Forget dead letters for good."""
        sql, params = self._filter("DELETE FROM deliveries WHERE state='dead'", [], event_id,
                                   plugin)
        with self._lock:
            count = self._db.execute(sql, tuple(params)).rowcount
            self._delete_orphans()
        return count

    def prune(self, retention: float, now: float | None = None) -> int:
        """Delete done deliveries older than *retention* seconds; return how many."""
        cutoff = (now if now is not None else time.time()) - retention
        with self._lock:
            count = self._db.execute(
                "DELETE FROM deliveries WHERE state='done' AND updated_at < ?", (cutoff,)
            ).rowcount
            self._delete_orphans()
        return count

    def _delete_orphans(self) -> None:
        self._db.execute(
            "DELETE FROM events WHERE NOT EXISTS "
            "(SELECT 1 FROM deliveries d WHERE d.event_seq = events.seq)"
        )

    @staticmethod
    def _filter(sql: str, params: list, event_id: str | None, plugin: str | None) -> Any:
        if event_id:
            sql += " AND event_seq=(SELECT seq FROM events WHERE id=?)"
            params.append(event_id)
        if plugin:
            sql += " AND plugin=?"
            params.append(plugin)
        return sql, params

    # ------------------------------------------------------------------ reading
    def _select(self, where: str, params: tuple, limit: int | None = None) -> list[Delivery]:
        sql = (
            "SELECT e.seq, e.id, e.topic, d.plugin, d.state, d.attempts, d.last_error, "
            "e.received_at, d.updated_at, e.payload FROM deliveries d "
            "JOIN events e ON e.seq = d.event_seq WHERE " + where + " ORDER BY e.seq"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        return [
            Delivery(seq, eid, topic, plugin, state, attempts, err, recv, upd, json.loads(payload))
            for seq, eid, topic, plugin, state, attempts, err, recv, upd, payload in rows
        ]

    def pending(self, plugin: str | None = None, limit: int | None = None) -> list[Delivery]:
        """Unfinished deliveries in arrival order (what a restart replays)."""
        if plugin is None:
            return self._select("d.state='pending'", (), limit)
        return self._select("d.state='pending' AND d.plugin=?", (plugin,), limit)

    def dead_letters(self, plugin: str | None = None) -> list[Delivery]:
        if plugin is None:
            return self._select("d.state='dead'", ())
        return self._select("d.state='dead' AND d.plugin=?", (plugin,))

    def deliveries(self, event_id: str) -> list[Delivery]:
        return self._select("e.id=?", (event_id,))

    def counts(self) -> dict[str, int]:
        """Deliveries per state, e.g. ``{"pending": 3, "done": 120, "dead": 1}``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT state, COUNT(*) FROM deliveries GROUP BY state").fetchall()
        counts = {PENDING: 0, DONE: 0, DEAD: 0}
        counts.update(dict(rows))
        return counts

    def size_bytes(self) -> int:
        """Bytes on disk of the database and its write-ahead log."""
        total = 0
        for suffix in ("", "-wal"):
            try:
                total += os.path.getsize(self.path + suffix)
            except OSError:
                pass
        return total

    def close(self) -> None:
        """Checkpoint the WAL into the database file and close (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass
            self._db.close()
