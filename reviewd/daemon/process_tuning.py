"""Process-wide settings for the long-running daemon (not for a library user's process).

Only ``reviewd``'s own entry point applies them (:func:`tune_for_daemon`); a daemon run
inside another process (the plugin test runner) leaves that process as it is.

The garbage collector: the daemon holds tens of thousands of live objects (queued
events, the plugin modules, the client's schema), and on the hot path every event
allocates a handful of dicts.  With CPython's default thresholds a full collection
walks all of them every few thousand events, which measured at about a tenth of the
daemon's CPU per event.  Events make no reference cycles that matter, so the objects
made during start-up are frozen (a generation the collector never walks again), and the
youngest generation is collected after 20,000 allocations instead of 700; cycles are
still collected, only later.

Memory given back: glibc's malloc gives each thread that allocates its own arena (up to
eight per core), and memory freed in one arena is not reused by another, so a daemon
whose threads take turns allocating (the hub's reader, the journal writer with SQLite's
page cache, the plugins' workers) grows by fragments of every burst.  The arenas are
limited to two (``mallopt(M_ARENA_MAX)``, the same as ``MALLOC_ARENA_MAX=2`` but set
from inside, so that it holds however the daemon is started: systemd, a container,
``reviewd --foreground``), and once a burst is over the free memory is handed back to
the system (``malloc_trim``).  Both are no-ops where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import gc
import platform
import time

#: (young, middle, old) thresholds; see :func:`gc.set_threshold`.
GC_THRESHOLDS = (20000, 20, 20)
#: glibc's malloc arenas for the whole process.
MALLOC_ARENAS = 2
#: Give memory back at most this often (seconds), and only after this much work.
TRIM_EVERY = 10.0
TRIM_AFTER_EVENTS = 10000

_M_ARENA_MAX = -8  # glibc's malloc.h
_libc: ctypes.CDLL | None = None
_trim_enabled = False
_last_trim = 0.0


def _glibc() -> ctypes.CDLL | None:
    global _libc
    if _libc is None and platform.libc_ver()[0] == "glibc":
        try:
            _libc = ctypes.CDLL("libc.so.6")
        except OSError:
            return None
    return _libc


def limit_malloc_arenas(count: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas (call before the daemon starts its threads); True if
    the C library took it."""
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.mallopt(_M_ARENA_MAX, count))


def tune_gc() -> None:
    """Freeze what start-up made and raise the collector's thresholds."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def tune_for_daemon() -> None:
    """Everything above, in the daemon's own process (its entry point calls this)."""
    global _trim_enabled
    limit_malloc_arenas()
    tune_gc()
    _trim_enabled = True


def give_back_memory(events_since: int) -> bool:
    """After a burst (*events_since* events handled since the last call that returned
    True), hand free heap memory back to the system; True if it did.  Only in the
    daemon's own process, at most every TRIM_EVERY seconds."""
    global _last_trim
    if not _trim_enabled or events_since < TRIM_AFTER_EVENTS:
        return False
    now = time.monotonic()
    if now - _last_trim < TRIM_EVERY:
        return False
    libc = _glibc()
    if libc is None:
        return False
    _last_trim = now
    libc.malloc_trim(0)
    return True
