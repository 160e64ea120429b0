"""Journals: where the daemon writes events before plugins see them.

``SqliteJournal`` keeps one host's journal in a file; ``RedisJournal`` (Redis Streams)
lets several hosts share the work.  Both offer the same methods; ``dispatch_local`` tells
the supervisor whether the host that journals an event also queues it (SQLite) or
whether lanes pull their share from the shared streams (Redis).
"""

from __future__ import annotations

from typing import Any

from reviewd.daemon.journal.sqlite import DEAD, DONE, PENDING, Delivery, JournalError, SqliteJournal

__all__ = ["DEAD", "DONE", "PENDING", "Delivery", "JournalError", "SqliteJournal", "open_journal"]


def open_journal(path: str, config: Any = None, *, background: bool = True) -> Any:
    """Open the journal the configuration asks for (SQLite at *path* by default).

    *background* False (command-line tools): a Redis journal starts no threads of its
    own (no heartbeat: a tool is not a replica).
    """
    if config is not None and getattr(config, "journal_backend", "sqlite") == "redis":
        from reviewd.daemon.journal.redis import RedisJournal

        return RedisJournal(
            config.redis_url,
            prefix=config.redis_prefix,
            consumer=config.consumer,
            retention=config.journal_retention,
            claim_idle=config.claim_idle,
            pinned=getattr(config, "pinned_plugins", ()),
            lease_ttl=getattr(config, "lease_ttl", 10.0),
            background=background,
        )
    return SqliteJournal(path)
