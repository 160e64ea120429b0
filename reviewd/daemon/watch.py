"""What "a plugin's files changed" means, for ``--foreground`` hot reload.

Why not the plugin's path's mtime: for a package plugin (a directory with
``__init__.py``) that path is the directory, and a directory's mtime changes only when
an entry is added, removed or renamed — not when an editor saves ``helpers.py`` inside
it in place.  So the watcher fingerprints the plugin's ``.py`` files themselves: their
names, modification times (nanoseconds) and sizes.  Any saved edit, new module or
deleted module changes the fingerprint; compiled files (``__pycache__``) and hidden
folders (editor and VCS state) are ignored so that importing the plugin never looks
like an edit.
"""

from __future__ import annotations

import os

Fingerprint = tuple[tuple[str, int, int], ...]


def plugin_files(path: str | None) -> list[str]:
    """The ``.py`` files that make up the plugin at *path* (a file or a package folder)."""
    if not path:
        return []
    if os.path.isfile(path):
        return [path]
    files: list[str] = []
    for base, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
        files.extend(os.path.join(base, n) for n in sorted(names) if n.endswith(".py"))
    return files


def fingerprint(path: str | None) -> Fingerprint:
    """``(file, mtime_ns, size)`` of each of the plugin's files; ``()`` when none exist."""
    stamps = []
    for name in plugin_files(path):
        try:
            info = os.stat(name)
        except OSError:  # deleted between the walk and the stat: it is simply absent
            continue
        stamps.append((name, info.st_mtime_ns, info.st_size))
    return tuple(stamps)
