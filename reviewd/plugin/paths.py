"""Where plugins are: the modules on plugin paths, and which of them are safe to load.

A plugin path may hold ``.py`` files, package directories and plain folders of
either; the loader needs one ordered list of modules, each once, from places no
other user on the host can write to.  Nothing is imported here.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Candidate", "find_candidates", "split_plugin_paths", "unsafe_reason"]

#: One logger for the whole plugin loader, whichever of its modules speaks.
_log = logging.getLogger("reviewd.plugin")


def split_plugin_paths(value: str | None) -> list[str]:
    """Split a ``FTRACK_EVENT_PLUGIN_PATH``-style string on ``os.pathsep``."""
    return [part.strip() for part in (value or "").split(os.pathsep) if part.strip()]


@dataclass(frozen=True)
class Candidate:
    """A module found on a plugin path: a ``.py`` file or a package directory."""

    name: str
    path: str
    is_package: bool

    @property
    def real_path(self) -> str:
        return os.path.realpath(self.path)


def _trusted_owners() -> frozenset[int]:
    """Who may own a plugin or a directory above it: root and the daemon's own user."""
    return frozenset({0, os.geteuid()})


def _weakness(path: str, st: os.stat_result, trusted: frozenset[int]) -> str | None:
    """Why one path component lets someone else change what is loaded, or None."""
    mode = st.st_mode
    if st.st_uid not in trusted:
        return f"is owned by uid {st.st_uid}, not by root or the daemon's user"
    writable = mode & (stat.S_IWGRP | stat.S_IWOTH)
    if not writable:
        return None
    # A sticky directory owned by a trusted user (/tmp) is shared, but nobody else can
    # rename or replace the entries we own in it: as sshd and sudo, accept it.
    if stat.S_ISDIR(mode) and mode & stat.S_ISVTX:
        return None
    who = "world-writable" if mode & stat.S_IWOTH else "group-writable"
    return f"is {who} (mode {stat.S_IMODE(mode):o})"


def unsafe_reason(path: str, cache: dict[str, str | None] | None = None) -> str | None:
    """Why loading *path* is unsafe, naming the offending path, or None when it is safe.

    As sshd's StrictModes and sudo do, the whole way is checked: the file (after
    resolving symlinks) and every directory above it up to ``/``, and the directories
    above the name as given too (a safe file reached through a symlink in an unsafe
    directory can be swapped).  Each must be owned by root or the daemon's user and
    writable by no one else — except sticky directories such as ``/tmp``.
    """
    cache = {} if cache is None else cache
    trusted = _trusted_owners()
    given = os.path.abspath(path)
    chains = [os.path.realpath(given), os.path.dirname(given)]
    for start in chains:
        current = start
        while True:
            if current not in cache:
                try:
                    reason = _weakness(current, os.lstat(current), trusted)
                except OSError:
                    reason = None  # vanished meanwhile: the import will fail on its own
                cache[current] = f"{current} {reason}" if reason else None
            if cache[current]:
                return cache[current]
            parent = os.path.dirname(current)
            if parent == current:
                break
            current = parent
    return None


def _refusal(kind: str, path: str, reason: str) -> str:
    return (
        f"refusing to load plugin {kind} {path}: {reason}, so another user on this "
        f"host could put code there that reviewd would run; fix the ownership or mode "
        f"('chmod o-w' / 'chmod g-w', or chown) or set allow_world_writable to accept the risk"
    )


def find_candidates(
    paths: Iterable[str],
    *,
    allow_world_writable: bool = False,
    problems: list[str] | None = None,
) -> list[Candidate]:
    """Return the plugin modules on *paths*, in a stable order.

    A path may be a directory or a single ``.py`` file.  Hidden entries,
    ``__pycache__`` and an ``__init__.py`` directly in a searched directory are
    ignored; a directory with ``__init__.py`` is one package
    plugin; other directories are searched recursively.  World-writable
    directories and files are refused (logged, and appended to *problems*) unless
    *allow_world_writable*; so is anything with a path someone other than root or the
    daemon's user could change (see :func:`unsafe_reason`).  A real path reached twice (overlapping paths,
    symlinks) is returned once.
    """
    problems = problems if problems is not None else []
    found: list[Candidate] = []
    seen: set[str] = set()

    checked: dict[str, str | None] = {}

    def refuse(kind: str, path: str) -> bool:
        if allow_world_writable:
            return False
        reason = unsafe_reason(path, checked)
        if reason is None:
            return False
        message = _refusal(kind, path, reason)
        _log.error(message, extra={"plugin_path": path})
        problems.append(message)
        return True

    def add(candidate: Candidate) -> None:
        real = candidate.real_path
        if real in seen:
            _log.debug("plugin %s reached twice (%s); loading it once", real, candidate.path)
            return
        seen.add(real)
        found.append(candidate)

    def package_is_safe(directory: str) -> bool:
        if refuse("directory", directory):
            return False
        for base, directories, filenames in os.walk(directory):
            directories[:] = [d for d in directories if not d.startswith(".")]
            for entry in [*directories, *filenames]:
                full = os.path.join(base, entry)
                if refuse("directory" if os.path.isdir(full) else "file", full):
                    return False
        return True

    def walk(directory: str, visited: set[str]) -> None:
        real = os.path.realpath(directory)
        if real in visited:
            return
        visited.add(real)
        if refuse("directory", directory):
            return
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as error:
            message = f"cannot read plugin directory {directory}: {error.strerror or error}"
            _log.error(message)
            problems.append(message)
            return
        for entry in entries:
            if entry.name.startswith(".") or entry.name in ("__pycache__", "__init__.py"):
                # __init__.py directly on a search path is package glue, not a plugin
                continue
            if entry.is_dir():
                if os.path.isfile(os.path.join(entry.path, "__init__.py")):
                    if package_is_safe(entry.path):
                        add(Candidate(entry.name, entry.path, True))
                else:
                    walk(entry.path, visited)
            elif entry.name.endswith(".py") and entry.is_file():
                if not refuse("file", entry.path):
                    add(Candidate(entry.name[:-3], entry.path, False))

    for raw in paths:
        path = str(raw).strip()
        if not path:  # an empty entry would mean the current directory: ignore it
            continue
        path = os.path.abspath(os.path.expanduser(path))
        if os.path.isdir(path):
            walk(path, set())
        elif os.path.isfile(path) and path.endswith(".py"):
            if not refuse("file", path):
                add(Candidate(os.path.basename(path)[:-3], path, False))
        else:
            message = f"plugin path {path} does not exist or is not a directory or .py file"
            _log.warning(message)
            problems.append(message)
    return found
