"""``reviewd journal stats``: what the journal holds and what it costs on disk.

Why a command: the journal's size is the first thing an operator asks about when a
disk fills, and its rows by state say whether that size is live work (pending), dead
letters waiting for a decision, or finished events kept only for de-duplication.
"""

from __future__ import annotations

from typing import Any


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def render_stats(journal: Any) -> str:
    """The stats of *journal* as text lines (any journal with ``counts``; SQLite adds
    events and bytes)."""
    stats = journal.stats() if hasattr(journal, "stats") else {"deliveries": journal.counts()}
    counts = stats["deliveries"]
    lines = [
        f"journal: {stats.get('path') or getattr(journal, 'path', '')}",
        "deliveries: "
        + ", ".join(f"{state} {counts.get(state, 0)}" for state in ("pending", "done", "dead")),
    ]
    if "live_events" in stats:
        lines.append(
            f"events: {stats['live_events']} with a payload, "
            f"{stats['finished_events_kept_for_dedupe']} finished "
            "(id and time kept for de-duplication)"
        )
    if "bytes_on_disk" in stats:
        lines.append(
            f"on disk: {_human(stats['bytes_on_disk'])} "
            f"({stats['bytes_on_disk']} bytes, of which "
            f"{_human(stats.get('free_bytes', 0))} free pages)"
        )
    return "\n".join(lines) + "\n"
