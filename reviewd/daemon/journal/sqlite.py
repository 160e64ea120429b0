"""The durable journal: every routed event is written here before any plugin sees it.

Why SQLite in WAL mode: a single file under the state directory, no service to run,
transactions that survive ``kill -9`` of the daemon (a committed WAL frame is in the
OS's page cache the moment ``COMMIT`` returns; ``synchronous=NORMAL`` only risks the
last transactions on a power cut, which is the usual trade for a queue), and readers
(``reviewd journal list`` in another process, the lanes refilling) that never block
the writer.

Model: one row per live event (deduplicated by the event's id) and one *delivery* row
per (event, plugin).  A delivery is ``pending`` until the plugin's handlers succeed
(``done``) or the retry budget is spent (``dead``).  Before a handler runs, its attempt
is written to the attempt log (:mod:`reviewd.daemon.journal.attempts`, a file beside
the database), so a process that dies inside a handler is seen at the next start: that
attempt counts as failed ("the process died while handling it") and the retry budget
eventually dead-letters the event instead of crash-looping the daemon on it.

Size: once every plugin finished an event, :meth:`SqliteJournal.compact` moves it to
``seen``: 16 bytes of id, a time and a delivery count (no payload, no delivery rows),
which is all de-duplication needs; ``seen`` rows expire with the retention period
(:meth:`prune`) and freed pages go back to the file system (incremental vacuum).

Cost: all writes go through :class:`~reviewd.daemon.journal.group_commit.GroupCommit`,
so concurrent writers share transactions; reads use a second connection.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from reviewd.daemon.journal.attempts import FAILED, RUNNING, SUCCEEDED, AttemptLog
from reviewd.daemon.journal.group_commit import GroupCommit, Write

SCHEMA_VERSION = 3

_DELIVERIES = """
CREATE TABLE IF NOT EXISTS {name} (
    event_seq INTEGER NOT NULL REFERENCES events(seq) ON DELETE CASCADE,
    plugin TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    updated_at REAL NOT NULL,
    running INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (event_seq, plugin)
) WITHOUT ROWID;
"""
# Why WITHOUT ROWID and a partial index: every event writes a delivery row, marks it
# done and later deletes it.  Keyed by its primary key the row is one b-tree, not a
# table plus a key index; and only pending deliveries are looked up by plugin (lanes,
# replay), so finished ones never enter (nor leave) that index.
_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    topic TEXT NOT NULL,
    payload TEXT NOT NULL,
    received_at REAL NOT NULL
);
"""
    + _DELIVERIES.format(name="deliveries")
    + """
CREATE TABLE IF NOT EXISTS seen (
    id BLOB PRIMARY KEY,
    at INTEGER NOT NULL,
    deliveries INTEGER NOT NULL
) WITHOUT ROWID;
"""
)
_INDEXES = """
DROP INDEX IF EXISTS deliveries_by_state;
CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries (plugin, event_seq)
    WHERE state = 'pending';
"""

PENDING, DONE, DEAD = "pending", "done", "dead"
DIED = "the process died while handling it"
#: Seconds a finished event stays whole before compaction takes its payload.
COMPACT_AGE = 5.0
#: Events compacted per transaction: the ids are random, so each step touches pages all
#: over the id index and the de-duplication table; a large step touches each page once
#: for many events (after a burst, a step of 1,000 cost 30 us per event, one of 4,000
#: about 6).  But new events wait for the step's transaction: while they arrive, the
#: intake asks for small steps (``compact(limit=...)``).
COMPACT_STEP = 4000
#: Keep the write-ahead log file from staying at its high-water mark after checkpoints.
WAL_SIZE_LIMIT = 4 * 1024 * 1024
#: Checkpoint every ~1 MB of log (SQLite's default, 4 MB, is a small disk's whole room).
WAL_CHECKPOINT_PAGES = 256
#: Finished deliveries waiting for a commit beyond which the finishing thread commits.
#: Large, because during a burst the intake commits a batch every few milliseconds and
#: the done-marks ride along for free; a worker committing on its own every 256 took
#: the writer lock from the intake and cost the daemon ~20 us per event (71 -> 50 us on
#: the 100,000-event burst).  Only ids and callbacks wait here, and a finished attempt
#: is in the attempt log already, so a crash before the commit loses none of them.
MAX_DEFERRED = 2048


@dataclasses.dataclass(slots=True)
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
    size: int = 0  # bytes of the encoded payload (lanes bound their memory with it)


class JournalError(Exception):
    """The journal file cannot be opened or written (disk full, permissions, corrupt)."""


class JournalCorrupt(JournalError):
    """The journal file is not a readable SQLite database (checked at open)."""


def event_id_of(event: Mapping[str, Any]) -> str:
    return str(event["id"])


def _jsonable(event: Mapping[str, Any]) -> dict[str, Any]:
    """The wire-form dict of an event (Event objects are mappings; keep camelCase)."""
    data = dict(event)
    if "in_reply_to_event" in data and "inReplyToEvent" not in data:
        data["inReplyToEvent"] = data.pop("in_reply_to_event")
    return data


def encode_event(event: Mapping[str, Any]) -> str:
    """The payload text the journal stores (also the size the spool and lanes count)."""
    return json.dumps(_jsonable(event), default=str, separators=(",", ":"))


def storable_text(text: str) -> str:
    """*text* as valid UTF-8: a lone surrogate (which JSON allows and a hostile sender may
    put in a topic or an id) becomes its escape, ``\\udfff``.  SQLite refuses to bind such
    a string, and one unbindable event must not block the writer for every event behind it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def seen_key(event_id: str) -> bytes:
    """The compact de-duplication key: the 16 bytes of a UUID id, else the UTF-8 text."""
    if len(event_id) == 32:
        # The usual form (uuid4().hex), without the UUID object: same 16 bytes.
        try:
            key = bytes.fromhex(event_id)
        except ValueError:
            key = b""
        if len(key) == 16:  # (fromhex skips spaces; UUID does not)
            return key
    try:
        return uuid.UUID(event_id).bytes
    except ValueError:
        return event_id.encode("utf-8")


def describe_write_error(exc: BaseException, path: str) -> str:
    """One line saying why a journal write failed, in an operator's words."""
    code = getattr(exc, "sqlite_errorcode", None)
    text = str(exc)
    if (
        code == sqlite3.SQLITE_FULL
        or getattr(exc, "errno", None) == errno.ENOSPC
        or "disk is full" in text
        or "No space left" in text
    ):
        return f"journal: no space left on device at {path}"
    if isinstance(exc, JournalError):
        return text if text.startswith("journal:") else f"journal: {text}"
    return f"journal: cannot write {path}: {text}"


class Entry(NamedTuple):
    """One event to journal: its id, topic, encoded payload and the plugins it is for
    (a named tuple: the intake makes one per event, and a frozen dataclass costs five
    times as much to build)."""

    event_id: str
    topic: str
    payload: str
    plugins: Sequence[str]


class SqliteJournal:
    """A thread-safe journal in one SQLite file: a writer connection fed by group
    commit, a reader connection for queries."""

    dispatch_local = True
    #: mark_done/mark_dead accept ``then=`` (commit later, shared) - the router uses it.
    deferred_outcomes = True

    def __init__(self, path: str) -> None:
        self.path = path
        self.broken: str | None = None  # set once the file was deleted/replaced/emptied
        directory = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(directory, exist_ok=True)
            created = self._create_private(path)
            self._db = self._connect(path)
            self._check_integrity(created)
            self._migrate(created)
            self._reader = self._connect(path)
        except JournalError:
            raise
        except (sqlite3.Error, OSError) as exc:
            if _looks_corrupt(exc):
                raise JournalCorrupt(_corrupt_line(path, exc)) from exc
            raise JournalError(f"cannot open journal {path}: {exc}") from exc
        self._lock = threading.Lock()  # the writer connection
        self._read_lock = threading.Lock()
        self._closed = False
        self._group = GroupCommit(self._run_batch)
        # Finished deliveries waiting for the next commit (mark_done with then=): one
        # statement for all of them, in whichever transaction comes next.
        self._done: list[tuple[float, str, str, Any]] = []
        self._done_lock = threading.Lock()
        self._compact_cursor = 0
        self._identity = self._stat()
        try:
            self._attempts = AttemptLog(path + "-attempts")
        except OSError as exc:
            raise JournalError(f"cannot open journal {path}-attempts: {exc}") from exc
        #: Deliveries found running at open: their process died inside the handler.
        self.recovered = self._recover_running()

    # ------------------------------------------------------------------ opening
    @staticmethod
    def _create_private(path: str) -> bool:
        """Create the file 0600 whatever the umask (events may hold private data)."""
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            return os.path.getsize(path) == 0
        os.fchmod(fd, 0o600)
        os.close(fd)
        return True

    @staticmethod
    def _connect(path: str) -> sqlite3.Connection:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        db.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
        return db

    def _check_integrity(self, created: bool) -> None:
        if created:
            return
        rows = self._db.execute("PRAGMA quick_check").fetchall()
        if rows != [("ok",)]:
            problem = "; ".join(str(r[0]) for r in rows[:3])
            raise JournalCorrupt(_corrupt_line(self.path, problem))

    def _migrate(self, created: bool) -> None:
        db = self._db
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if created or db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0:
            db.execute("PRAGMA auto_vacuum=INCREMENTAL")  # before the first table
        db.executescript(_SCHEMA)
        # An index on seen(at) would double the size of what a finished event costs;
        # the hourly prune scans instead.
        db.execute("DROP INDEX IF EXISTS seen_by_time")
        if version == 1:
            columns = {row[1] for row in db.execute("PRAGMA table_info(deliveries)")}
            if "running" not in columns:
                db.execute("ALTER TABLE deliveries ADD COLUMN running INTEGER NOT NULL DEFAULT 0")
        if version < 3 and not created:
            self._rebuild_deliveries()
        db.executescript(_INDEXES)
        if db.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
            db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            db.execute("VACUUM")  # once, to make an old journal reclaimable
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _rebuild_deliveries(self) -> None:
        """Schema 3: the deliveries of an older journal into the WITHOUT ROWID table
        (one transaction: a crash half-way leaves the old table as it was)."""
        db = self._db
        sql = db.execute("SELECT sql FROM sqlite_master WHERE name='deliveries'").fetchone()
        if sql is None or "WITHOUT ROWID" in sql[0].upper():
            return
        columns = "event_seq, plugin, state, attempts, last_error, updated_at, running"
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("DROP TABLE IF EXISTS deliveries_v3")
            db.execute(_DELIVERIES.format(name="deliveries_v3"))
            db.execute(f"INSERT INTO deliveries_v3 ({columns}) SELECT {columns} FROM deliveries")
            db.execute("DROP TABLE deliveries")
            db.execute("ALTER TABLE deliveries_v3 RENAME TO deliveries")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _recover_running(self) -> int:
        """Count the attempts the attempt log holds without a committed outcome: the
        process died while they ran."""
        logged = AttemptLog.read(self._attempts.path)
        now = time.time()

        def apply(cur: sqlite3.Cursor) -> Any:
            count = 0
            for (event_id, plugin), (attempt, state) in logged.items():
                where = self._BY_ID + " AND state='pending' AND attempts < ?"
                if state == SUCCEEDED:  # handlers returned; the commit did not happen
                    cur.execute(
                        "UPDATE deliveries SET state='done', attempts=attempts+1, "
                        "updated_at=? " + where,
                        (now, plugin, event_id, attempt),
                    )
                elif state == FAILED:
                    cur.execute(
                        "UPDATE deliveries SET attempts=attempts+1, updated_at=? " + where,
                        (now, plugin, event_id, attempt),
                    )
                elif state == RUNNING:
                    count += cur.execute(
                        "UPDATE deliveries SET attempts=attempts+1, last_error=?, updated_at=? "
                        + where,
                        (DIED, now, plugin, event_id, attempt),
                    ).rowcount
            return count

        count = self._group.submit(apply) if logged else 0
        self._attempts.reset()
        return count

    # ------------------------------------------------------------------ writing
    _DONE_SQL = (
        "UPDATE deliveries SET state='done', updated_at=?, attempts=attempts+1 "
        "WHERE plugin=? AND event_seq=(SELECT seq FROM events WHERE id=?)"
    )

    def _run_batch(self, batch: list[Write]) -> None:
        with self._done_lock:
            done, self._done = self._done, []
        with self._lock:
            try:
                if self._closed:
                    raise JournalError(f"journal: {self.path} is closed")
                if self.broken:
                    raise JournalError(self.broken)
                cur = self._db.cursor()
                cur.execute("BEGIN IMMEDIATE")
                for write in batch:
                    write.result = write.apply(cur)
                if done:
                    cur.executemany(self._DONE_SQL, [d[:3] for d in done])
                cur.execute("COMMIT")
            except BaseException as exc:
                if self._db.in_transaction:
                    try:
                        self._db.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                if done:  # not lost: they go with the next transaction, in order
                    with self._done_lock:
                        self._done[:0] = done
                if describe_write_error(exc, "").startswith("journal: no space"):
                    self._shrink_log()
                raise
        if done:
            self._attempts.end_many([(d[2], d[1]) for d in done])
            for d in done:
                d[3](None)

    def _shrink_log(self) -> None:
        """Disk full: fold the write-ahead log into the database and truncate it, which
        gives its space back once there is room for the checkpoint (self-healing after
        an operator frees space)."""
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error:
            pass

    def _write(self, apply: Any, wait: bool = True, then: Any = None) -> Any:
        return self._group.submit(apply, wait=wait, then=then)

    def record_batch(self, entries: Sequence[Entry]) -> list[list[str]]:
        """Journal *entries* in one transaction; for each, the plugins it is new for.

        Returns only after the transaction committed, so a caller that dispatches what
        this returns never dispatches an event that a crash could forget.  An event
        already finished (compacted into ``seen``) is new for no plugin.
        """
        now = time.time()

        def apply(cur: sqlite3.Cursor) -> Any:
            return self._record_in(cur, entries, now)

        try:
            return self._write(apply)
        except JournalError:
            raise
        except (sqlite3.Error, OSError) as exc:
            raise JournalError(describe_write_error(exc, self.path)) from exc

    @staticmethod
    def _record_in(cur: sqlite3.Cursor, entries: Sequence[Entry], now: float) -> list[list[str]]:
        """The statements of :meth:`record_batch`, set-wise: a handful of statements
        per batch (finished ids, known ids, inserts) rather than several per event."""
        ids = list(dict.fromkeys(e.event_id for e in entries))
        finished: set[str] = set()
        known: dict[str, int] = {}
        for chunk in _chunks(ids, 500):
            marks = ",".join("?" * len(chunk))
            finished.update(
                row[0]
                for row in cur.execute(
                    f"SELECT id FROM seen WHERE id IN ({marks})", [seen_key(i) for i in chunk]
                )
            )
            known.update(
                cur.execute(f"SELECT id, seq FROM events WHERE id IN ({marks})", chunk).fetchall()
            )
        finished_ids = {i for i in ids if seen_key(i) in finished}
        fresh: dict[str, Entry] = {}
        for entry in entries:
            if (
                entry.event_id not in known
                and entry.event_id not in finished_ids
                and entry.event_id not in fresh
                and entry.plugins
            ):
                fresh[entry.event_id] = entry
        if fresh:
            cur.executemany(
                "INSERT INTO events (id, topic, payload, received_at) VALUES (?, ?, ?, ?)",
                [(e.event_id, e.topic, e.payload, now) for e in fresh.values()],
            )
            for chunk in _chunks(list(fresh), 500):
                known.update(
                    cur.execute(
                        f"SELECT id, seq FROM events WHERE id IN ({','.join('?' * len(chunk))})",
                        chunk,
                    ).fetchall()
                )
            cur.executemany(
                "INSERT INTO deliveries (event_seq, plugin, updated_at) VALUES (?, ?, ?)",
                [
                    (known[e.event_id], plugin, now)
                    for e in fresh.values()
                    for plugin in dict.fromkeys(e.plugins)
                ],
            )
        results: list[list[str]] = []
        for entry in entries:
            plugins = list(dict.fromkeys(entry.plugins))
            if not plugins or entry.event_id in finished_ids:
                results.append([])
            elif fresh.get(entry.event_id) is entry:
                results.append(plugins)
            else:  # known before, or a second copy in this batch: new plugins only
                new = []
                for plugin in plugins:
                    cur.execute(
                        "INSERT OR IGNORE INTO deliveries (event_seq, plugin, updated_at)"
                        " VALUES (?, ?, ?)",
                        (known[entry.event_id], plugin, now),
                    )
                    if cur.rowcount == 1:
                        new.append(plugin)
                results.append(new)
        return results

    def record(self, event: Mapping[str, Any], plugins: Iterable[str]) -> list[str]:
        """Journal one *event* for *plugins*; return the plugins it is new for."""
        plugins = list(plugins)
        if not plugins:
            return []
        entry = Entry(event_id_of(event), str(event.get("topic", "")), encode_event(event), plugins)
        return self.record_batch([entry])[0]

    _BY_ID = "WHERE plugin=? AND event_seq=(SELECT seq FROM events WHERE id=?)"

    def begin_attempt(self, event_id: str, plugin: str, attempt: int = 1) -> None:
        """Log that attempt number *attempt* (1 = the first) starts, before the handler
        is called: if the process dies inside the handler, the next start counts that
        attempt as failed.  Durable against the process dying, costs one ``write()``."""
        self._attempts.begin(event_id, plugin, attempt)

    def _outcome(self, event_id: str, plugin: str, then: Any) -> Any:
        """The ``then`` of an outcome: the attempt leaves the log once it is committed."""

        def committed(result: Any = None) -> None:
            self._attempts.end(event_id, plugin)
            if then is not None:
                then(result)

        return committed

    def mark_done(self, event_id: str, plugin: str, then: Any = None) -> None:
        """The plugin's handlers all succeeded: never deliver this again.

        With *then*, return at once: the write joins the next shared commit and
        ``then(None)`` runs once it is durable (see :meth:`flush`)."""
        self._attempts.finish(event_id, plugin, succeeded=True)
        if then is not None:
            with self._done_lock:
                self._done.append((time.time(), plugin, event_id, then))
                backlog = len(self._done)
            if backlog >= MAX_DEFERRED:
                # Nobody else is committing: do not let them pile up.  A commit that
                # fails (disk full) keeps them queued for the next one; the outcome is
                # recorded either way, so the caller must not see that failure.
                try:
                    self.flush()
                except Exception:  # noqa: BLE001 - retried by the next commit
                    pass
            return
        params = (time.time(), plugin, event_id)
        self._write(
            lambda cur: cur.execute(
                "UPDATE deliveries SET state='done', updated_at=?, attempts=attempts+1 "
                + self._BY_ID,
                params,
            ),
            wait=then is None,
            then=self._outcome(event_id, plugin, then),
        )

    def mark_failed(self, event_id: str, plugin: str, error: str) -> None:
        """Count one failed attempt; the delivery stays pending (it will be retried)."""
        params = (error[:4000], time.time(), plugin, event_id)
        self._write(
            lambda cur: cur.execute(
                "UPDATE deliveries SET attempts=attempts+1, last_error=?, updated_at=? "
                + self._BY_ID,
                params,
            )
        )
        self._attempts.end(event_id, plugin)

    def mark_dead(
        self, event_id: str, plugin: str, error: str, then: Any = None, count_attempt: bool = True
    ) -> None:
        """The retry budget is spent: keep it as a dead letter for an operator."""
        self._attempts.finish(event_id, plugin, succeeded=False)
        params = (1 if count_attempt else 0, error[:4000], time.time(), plugin, event_id)
        self._write(
            lambda cur: cur.execute(
                "UPDATE deliveries SET state='dead', attempts=attempts+?, last_error=?, "
                "updated_at=? " + self._BY_ID,
                params,
            ),
            wait=then is None,
            then=self._outcome(event_id, plugin, then),
        )

    def flush(self) -> None:
        """Commit the writes queued without waiting (``mark_done(..., then=...)``)."""
        if self._done:
            self._group.submit(_nothing)
        else:
            self._group.flush()

    def retry_dead(self, event_id: str | None = None, plugin: str | None = None) -> int:
        """Turn dead letters back into pending deliveries (attempts reset)."""
        sql = "UPDATE deliveries SET state='pending', attempts=0, updated_at=? WHERE state='dead'"
        sql, params = self._filter(sql, [time.time()], event_id, plugin)
        return self._write(lambda cur: cur.execute(sql, tuple(params)).rowcount)

    def purge_dead(self, event_id: str | None = None, plugin: str | None = None) -> int:
        """Forget dead letters for good."""
        sql, params = self._filter(
            "DELETE FROM deliveries WHERE state='dead'", [], event_id, plugin
        )

        def apply(cur: sqlite3.Cursor) -> Any:
            count = cur.execute(sql, tuple(params)).rowcount
            self._delete_orphans(cur)
            return count

        return self._write(apply)

    def compact(self, limit: int = COMPACT_STEP, age: float = COMPACT_AGE) -> int:
        """Move events every plugin finished at least *age* seconds ago into ``seen``
        (id, time, count) and drop their payload and delivery rows; return how many.

        Walks the events in order from where the last call stopped, *limit* at a time
        (one short transaction each, so that the intake never waits long), and starts
        over from the oldest once it reached the newest or an event younger than *age*
        (all later ones are younger still: a burst is not scanned again and again while
        it is too young).  The short age keeps just-finished events visible to
        ``reviewd journal list``."""
        cutoff = time.time() - age

        def apply(cur: sqlite3.Cursor) -> Any:
            rows = cur.execute(
                "SELECT e.seq, e.id, e.received_at, COUNT(*), SUM(d.state != 'done'), "
                "MAX(d.updated_at) FROM events e JOIN deliveries d ON d.event_seq = e.seq "
                "WHERE e.seq > ? GROUP BY e.seq ORDER BY e.seq LIMIT ?",
                (self._compact_cursor, limit),
            ).fetchall()
            ready = []
            passed = len(rows) < limit  # reached the newest event
            for row in rows:
                if row[2] >= cutoff:
                    # Received too recently, and so was every later event: this pass is
                    # over (the next one starts from the oldest, a period later).
                    passed = True
                    break
                if row[4] == 0 and row[5] < cutoff:
                    ready.append(row)
            self._compact_cursor = 0 if passed else rows[-1][0]
            if not ready:
                return 0
            cur.executemany(
                "INSERT OR IGNORE INTO seen (id, at, deliveries) VALUES (?, ?, ?)",
                # In key order: ids are random, and sorted inserts visit each page of
                # the b-tree once per step instead of once per row.
                sorted((seen_key(r[1]), int(r[2]), r[3]) for r in ready),
            )
            seqs = [(r[0],) for r in ready]
            cur.executemany("DELETE FROM deliveries WHERE event_seq=?", seqs)
            cur.executemany("DELETE FROM events WHERE seq=?", seqs)
            return len(ready)

        return self._write(apply)

    @property
    def compact_more(self) -> bool:
        """True while a compaction pass has not reached the newest event yet."""
        return self._compact_cursor != 0

    def prune(self, retention: float, now: float | None = None) -> int:
        """Forget finished work older than *retention* seconds (which bounds the
        de-duplication window), reclaim the freed pages; return how many deliveries."""
        cutoff = (now if now is not None else time.time()) - retention

        def apply(cur: sqlite3.Cursor) -> Any:
            count = cur.execute(
                "DELETE FROM deliveries WHERE state='done' AND updated_at < ?", (cutoff,)
            ).rowcount
            self._delete_orphans(cur)
            count += cur.execute(
                "SELECT COALESCE(SUM(deliveries), 0) FROM seen WHERE at < ?", (cutoff,)
            ).fetchone()[0]
            cur.execute("DELETE FROM seen WHERE at < ?", (cutoff,))
            return count

        count = self._write(apply)
        self.reclaim()
        return count

    def reclaim(self) -> bool:
        """Give free pages back to the file system (8 MB a step, so the intake never
        waits long) and bound the write-ahead log; True while free pages remain."""
        with self._lock:
            if self._closed or self.broken:
                return False
            try:
                # executescript: Python's execute() stops after the first freed page
                self._db.executescript("PRAGMA incremental_vacuum(2048);")
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                return self._db.execute("PRAGMA freelist_count").fetchone()[0] > 0
            except sqlite3.Error:
                return False

    @staticmethod
    def _delete_orphans(cur: sqlite3.Cursor) -> None:
        cur.execute(
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

    # ------------------------------------------------------------------ watching the file
    def _stat(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_dev, st.st_ino)

    def check_file(self) -> str | None:
        """Whether the file under the daemon is still the journal it opened; the
        not-ready reason when it was deleted, replaced or emptied (sticky: events
        written now would be lost, so writes fail and the intake holds them)."""
        if self.broken or self._closed:
            return self.broken
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self.broken = (
                f"journal: {self.path} was deleted while reviewd was running; "
                "received events are held in memory - restart reviewd to "
                "start a new journal"
            )
            return self.broken
        except OSError:
            return None
        if (st.st_dev, st.st_ino) != self._identity:
            self.broken = (
                f"journal: {self.path} was replaced by another file while reviewd "
                "was running; restart reviewd to use it"
            )
        elif st.st_size == 0:
            self.broken = (
                f"journal: {self.path} was emptied (truncated to 0 bytes) while "
                "reviewd was running; restart reviewd to start a new journal"
            )
        return self.broken

    # ------------------------------------------------------------------ reading
    def _query(self, sql: str, params: tuple = ()) -> list:
        with self._read_lock:
            return self._reader.execute(sql, params).fetchall()

    def _select(
        self,
        where: str,
        params: tuple,
        limit: int | None = None,
        skip: Collection[str] = (),
        skipped: list[tuple[int, str]] | None = None,
    ) -> list[Delivery]:
        """Deliveries in arrival order; *limit* counts those returned, and rows whose
        event id is in *skip* are passed over before their payload is decoded (their
        sequence numbers and ids go to *skipped* when given)."""
        sql = (
            "SELECT e.seq, e.id, e.topic, d.plugin, d.state, d.attempts, d.last_error, "
            "e.received_at, d.updated_at, e.payload FROM deliveries d "
            "JOIN events e ON e.seq = d.event_seq WHERE " + where + " ORDER BY d.event_seq"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit) + len(skip)}"
        out: list[Delivery] = []
        with self._read_lock:
            cursor = self._reader.execute(sql, params)
            try:
                for seq, eid, topic, plugin, state, attempts, err, recv, upd, payload in cursor:
                    if eid in skip:
                        if skipped is not None:
                            skipped.append((seq, eid))
                        continue
                    out.append(
                        Delivery(
                            seq,
                            eid,
                            topic,
                            plugin,
                            state,
                            attempts,
                            err,
                            recv,
                            upd,
                            json.loads(payload),
                            len(payload),
                        )
                    )
                    if limit is not None and len(out) >= limit:
                        break
            finally:
                cursor.close()  # ends the read snapshot (a checkpoint may need it)
        return out

    #: ``pending`` takes ``skip=`` (ids the caller already holds are not decoded).
    pending_skips = True

    def pending(
        self,
        plugin: str | None = None,
        limit: int | None = None,
        skip: Collection[str] = (),
        after: int = 0,
        skipped: list[tuple[int, str]] | None = None,
    ) -> list[Delivery]:
        """Unfinished deliveries in arrival order (what a restart replays), at most
        *limit* of them, leaving out the event ids in *skip* (a lane's own, whose
        payload it need not decode; (sequence number, id) pairs go to *skipped*) and, with
        *after*, those journaled at or before that sequence number."""
        params: tuple[Any, ...]
        where, params = "d.state='pending'", ()
        if plugin is not None:
            where, params = where + " AND d.plugin=?", (plugin,)
        if after:
            where, params = where + " AND d.event_seq > ?", (*params, after)
        return self._select(where, params, limit, skip, skipped)

    def dead_letters(self, plugin: str | None = None) -> list[Delivery]:
        if plugin is None:
            return self._select("d.state='dead'", ())
        return self._select("d.state='dead' AND d.plugin=?", (plugin,))

    def deliveries(self, event_id: str) -> list[Delivery]:
        """The live deliveries of one event (a compacted, finished event has none)."""
        return self._select("e.id=?", (event_id,))

    def counts(self) -> dict[str, int]:
        """Deliveries per state, e.g. ``{"pending": 3, "done": 120, "dead": 1}`` (done
        includes the finished events already compacted)."""
        counts = {PENDING: 0, DONE: 0, DEAD: 0}
        counts.update(dict(self._query("SELECT state, COUNT(*) FROM deliveries GROUP BY state")))
        counts[DONE] += self._query("SELECT COALESCE(SUM(deliveries), 0) FROM seen")[0][0]
        return counts

    def stats(self) -> dict[str, Any]:
        """What ``reviewd journal stats`` prints: rows by state and bytes on disk."""
        live = self._query("SELECT COUNT(*) FROM events")[0][0]
        seen = self._query("SELECT COUNT(*) FROM seen")[0][0]
        page_size = self._query("PRAGMA page_size")[0][0]
        free = self._query("PRAGMA freelist_count")[0][0]
        return {
            "path": self.path,
            "deliveries": self.counts(),
            "live_events": live,
            "finished_events_kept_for_dedupe": seen,
            "bytes_on_disk": self.size_bytes(),
            "free_bytes": free * page_size,
        }

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
        """Commit what is queued, checkpoint the WAL into the database file and close
        (idempotent)."""
        try:
            self.flush()
        except Exception:  # noqa: BLE001 - closing anyway; pending rows replay next start
            pass
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass
            self._db.close()
        with self._read_lock:
            self._reader.close()
        self._attempts.close()


def _nothing(_cursor: Any) -> None:
    """A write with no statements: commits what rides along (deferred outcomes)."""


def _chunks(items: list, size: int) -> Iterator[Any]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _looks_corrupt(exc: BaseException) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB) or any(
        text in str(exc) for text in ("malformed", "not a database")
    )


def _corrupt_line(path: str, problem: Any) -> str:
    return (
        f"journal {path} is corrupt ({problem}); move it aside "
        f"(mv {path} {path}.corrupt) and start again - its unfinished events are lost "
        "unless you restore a backup"
    )
