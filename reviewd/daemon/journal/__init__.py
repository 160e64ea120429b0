"""Journals: where the daemon writes events before plugins see them.

Only the SQLite journal exists in this version; ``open_journal`` is the one place that
chooses a backend so that a Redis Streams journal can be added without touching callers.
"""

from __future__ import annotations

from reviewd.daemon.journal.sqlite import DEAD, DONE, PENDING, Delivery, JournalError, SqliteJournal

__all__ = ["DEAD", "DONE", "PENDING", "Delivery", "JournalError", "SqliteJournal", "open_journal"]


def open_journal(path: str) -> SqliteJournal:
    """Open (creating when missing) the journal at *path*."""
    return SqliteJournal(path)
