"""SQLite storage for the embedded server: one table per storage group, one column per attribute.

Types that a real server keeps together share a table (every context — projects and
all typed contexts — lives in ``context`` so a ``parent`` can point at either); the
hidden ``__type__`` column remembers each row's concrete schema id.  Everything goes
through one connection guarded by one lock: the server is for development and tests,
where a serialised writer keeps batches trivially atomic.
"""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from reviewd.devserver.schema.model import EntityType, Model

CHUNK = 500  # ids per "IN (...)" so no statement nears SQLite's variable limit


def quote(name: str) -> str:
    """An SQL identifier, quoted (attribute names such as ``sort`` are keywords)."""
    return '"' + name.replace('"', '""') + '"'


class Store:
    """Rows of every entity type, API credentials, and small server settings."""

    def __init__(self, model: Model, path: str | None = None) -> None:
        self.model = model
        self.path = path
        self.lock = threading.RLock()
        self.conn = sqlite3.connect(
            path or ":memory:", check_same_thread=False, isolation_level=None
        )
        self.conn.execute("PRAGMA foreign_keys=OFF")
        if path:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
        self._in_transaction = False
        self._create_tables()
        # Credentials are checked on the event loop for every request and handshake; a
        # copy in memory keeps that check from waiting on a long batch holding the lock.
        self._api_keys: dict[str, str] = dict(
            self.conn.execute("SELECT username, api_key FROM __credentials").fetchall()
        )

    # ------------------------------------------------------------------ schema
    def _create_tables(self) -> None:
        with self.lock:
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS __credentials (username TEXT PRIMARY KEY, api_key TEXT NOT NULL)"
            )
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS __settings (name TEXT PRIMARY KEY, value TEXT)"
            )
            for table, columns in self.model.tables.items():
                existing = {
                    row[1] for row in self.conn.execute(f"PRAGMA table_info({quote(table)})")
                }
                if not existing:
                    cols = ", ".join(quote(c) for c in columns)
                    self.conn.execute(f"CREATE TABLE {quote(table)} ({cols})")
                else:
                    for column in columns:
                        if column not in existing:
                            self.conn.execute(
                                f"ALTER TABLE {quote(table)} ADD COLUMN {quote(column)}"
                            )
                self._create_indexes(table, columns)

    def _create_indexes(self, table: str, columns: dict[str, str]) -> None:
        keys = {tuple(t.primary_key) for t in self.model.types.values() if t.table == table}
        for number, key in enumerate(sorted(keys)):
            if all(k in columns for k in key):
                cols = ", ".join(quote(k) for k in key)
                self.conn.execute(
                    f"CREATE INDEX IF NOT EXISTS {quote(f'ix_{table}_pk{number}')} "
                    f"ON {quote(table)} ({cols})"
                )
        for column in columns:
            if column.endswith("_id") or column == "__type__":
                self.conn.execute(
                    f"CREATE INDEX IF NOT EXISTS {quote(f'ix_{table}_{column}')} "
                    f"ON {quote(table)} ({quote(column)})"
                )

    # ------------------------------------------------------------------ transactions
    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together or not at all."""
        with self.lock:
            if self._in_transaction:
                yield
                return
            self.conn.execute("BEGIN")
            self._in_transaction = True
            try:
                yield
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")
            finally:
                self._in_transaction = False

    # ------------------------------------------------------------------ reading
    def select(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self.lock:
            return self.conn.execute(sql, params).fetchall()

    def columns(self, entity_type: EntityType) -> list[str]:
        return list(self.model.tables[entity_type.table])

    def _key_where(self, entity_type: EntityType, key: Sequence[Any]) -> tuple[str, list]:
        clause = " AND ".join(f"{quote(k)} = ?" for k in entity_type.primary_key)
        return clause, list(key)

    def get_row(self, entity_type: EntityType, key: Sequence[Any]) -> dict | None:
        """The stored row of *entity_type* (or any of its subtypes) with primary *key*."""
        columns = self.columns(entity_type)
        where, params = self._key_where(entity_type, key)
        sql = f"SELECT {', '.join(quote(c) for c in columns)} FROM {quote(entity_type.table)} WHERE {where}"
        with self.lock:
            for row in self.conn.execute(sql, params):
                record = dict(zip(columns, row, strict=True))
                if record["__type__"] in entity_type.subtypes:
                    return record
        return None

    def rows_by(
        self,
        entity_type: EntityType,
        column: str,
        values: Iterable[Any],
        columns: list[str] | None = None,
    ) -> list[dict]:
        """Rows of *entity_type* whose *column* is one of *values* (chunked IN).

        *columns* limits what is read (``__type__`` is always included).
        """
        values = [v for v in dict.fromkeys(values) if v is not None]
        columns = columns or self.columns(entity_type)
        head = (
            f"SELECT {', '.join(quote(c) for c in columns)} FROM {quote(entity_type.table)} WHERE "
        )
        found: list[dict] = []
        subtypes = entity_type.subtypes
        with self.lock:
            for start in range(0, len(values), CHUNK):
                chunk = values[start : start + CHUNK]
                sql = head + f"{quote(column)} IN ({', '.join('?' * len(chunk))})"
                for row in self.conn.execute(sql, chunk):
                    record = dict(zip(columns, row, strict=True))
                    if record["__type__"] in subtypes:
                        found.append(record)
        return found

    # ------------------------------------------------------------------ writing
    def insert(self, entity_type: EntityType, row: dict) -> None:
        columns = [c for c in row if c in self.model.tables[entity_type.table]]
        sql = (
            f"INSERT INTO {quote(entity_type.table)} ({', '.join(quote(c) for c in columns)}) "
            f"VALUES ({', '.join('?' * len(columns))})"
        )
        with self.lock:
            self.conn.execute(sql, [row[c] for c in columns])

    def update(self, entity_type: EntityType, key: Sequence[Any], changes: dict) -> None:
        if not changes:
            return
        where, params = self._key_where(entity_type, key)
        sets = ", ".join(f"{quote(c)} = ?" for c in changes)
        with self.lock:
            self.conn.execute(
                f"UPDATE {quote(entity_type.table)} SET {sets} WHERE {where}",
                [*changes.values(), *params],
            )

    def delete(self, entity_type: EntityType, key: Sequence[Any]) -> None:
        where, params = self._key_where(entity_type, key)
        with self.lock:
            self.conn.execute(f"DELETE FROM {quote(entity_type.table)} WHERE {where}", params)

    # ------------------------------------------------------------------ credentials / settings
    def set_api_key(self, username: str, api_key: str | None = None) -> str:
        """Give *username* an API key (a fresh random one unless given); return it."""
        api_key = api_key or secrets.token_hex(16)
        with self.lock:
            self.conn.execute(
                "INSERT INTO __credentials (username, api_key) VALUES (?, ?) "
                "ON CONFLICT(username) DO UPDATE SET api_key = excluded.api_key",
                (username, api_key),
            )
            self._api_keys[username] = api_key
        return api_key

    def api_key_of(self, username: str) -> str | None:
        return self._api_keys.get(username)

    def authenticate(self, username: str | None, api_key: str | None) -> bool:
        """True when *api_key* is the key stored for *username* (constant-time compare)."""
        if not username or not api_key:
            return False
        expected = self.api_key_of(username)
        return expected is not None and secrets.compare_digest(expected, api_key)

    def setting(self, name: str) -> str | None:
        with self.lock:
            row = self.conn.execute(
                "SELECT value FROM __settings WHERE name = ?", (name,)
            ).fetchone()
        return row[0] if row else None

    def set_setting(self, name: str, value: str) -> None:
        with self.lock:
            self.conn.execute(
                "INSERT INTO __settings (name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                (name, value),
            )

    def close(self) -> None:
        with self.lock:
            self.conn.close()
