"""The names that tie plugins to reviewd: pluggy's project name, the hook marker
and the entry-point group, in one place because packages outside this one rely
on all three."""

from __future__ import annotations

import pluggy

__all__ = ["ENTRY_POINT_GROUP", "PROJECT_NAME", "hookimpl"]

PROJECT_NAME = "reviewd"
ENTRY_POINT_GROUP = "reviewd.plugins"

#: Marks a function as the implementation of a hook in :mod:`reviewd.plugin.hookspecs`.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
