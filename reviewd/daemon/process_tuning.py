"""Process-wide settings for the long-running daemon (not for a library user's process).

Why the garbage collector: the daemon holds tens of thousands of live objects (queued
events, the plugin modules, the client's schema), and on the hot path every event
allocates a handful of dicts.  With CPython's default thresholds a full collection
walks all of them every few thousand events, which measured at about a tenth of the
daemon's CPU per event.  Events make no reference cycles that matter, so:

- the objects made during start-up (modules, classes, schema) are frozen: moved to a
  generation the collector never walks again;
- the youngest generation is collected after 20,000 allocations instead of 700, and
  older ones less often; cycles are still collected, only later.
"""

from __future__ import annotations

import gc

#: (young, middle, old) thresholds; see :func:`gc.set_threshold`.
GC_THRESHOLDS = (20000, 20, 20)


def tune_for_daemon() -> None:
    """Freeze what start-up made and raise the collector's thresholds (call once, in
    the daemon's own process, after its imports)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
