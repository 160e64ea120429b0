"""Plugins installed as packages: the ``reviewd.plugins`` entry-point group."""

from __future__ import annotations

import importlib.util
import os
from typing import Any

from reviewd.plugin.markers import ENTRY_POINT_GROUP

__all__ = ["entry_point_path", "installed_entry_points"]


def installed_entry_points() -> list[Any]:
    """The group's entry points, each (name, value) once, sorted by name for a stable load order."""
    from importlib.metadata import entry_points

    unique: dict[tuple[str, str], Any] = {}
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        unique.setdefault((entry_point.name, entry_point.value), entry_point)
    return sorted(unique.values(), key=lambda ep: ep.name)


def entry_point_path(entry_point: Any) -> str | None:
    """The real path of the code an entry point would import, without importing it."""
    module = getattr(entry_point, "module", None)
    if not module:
        return None
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not os.path.isfile(spec.origin):
        return None
    origin = os.path.realpath(spec.origin)
    if spec.submodule_search_locations is not None:
        return os.path.dirname(origin)
    return origin
