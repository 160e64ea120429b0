"""Running code written for ``ftrack_api`` unchanged.

:func:`install` puts :class:`~reviewd.compat.importer.FtrackApiFinder` first on
``sys.meta_path``: from then on ``import ftrack_api.X`` gives the module
``reviewd.api.X`` — module for module, because ``reviewd/api/`` is laid out as
ftrack_api's tree.  This happens whether or not the real ftrack-python-api is
installed (the daemon's setting ``plugins.ftrack_api = "reviewd"``, the default),
so the usual plugin guard ``isinstance(session, ftrack_api.Session)`` accepts
reviewd's session.  With ``"installed"`` the hook stays off, plugins get the
real package, and the plugin host names each plugin whose guard will then
refuse reviewd's session (see :mod:`reviewd.compat.guard`).
"""

from __future__ import annotations

import importlib.machinery
import logging
import sys
import threading

from reviewd.compat.guard import guard_lines, has_session_guard
from reviewd.compat.importer import ALIAS_ROOT, TARGET_ROOT, FtrackApiFinder, alias_modules

__all__ = [
    "ALIAS_ROOT",
    "MODES",
    "TARGET_ROOT",
    "guard_lines",
    "has_session_guard",
    "install",
    "installed",
    "real_ftrack_api_available",
    "uninstall",
    "warn_if_guard_refuses",
]

#: Values of the daemon setting ``plugins.ftrack_api``.
MODES = ("reviewd", "installed")

_log = logging.getLogger("reviewd.compat")
_FINDER = FtrackApiFinder()
_lock = threading.Lock()
_warned_plugins: set[str] = set()


def installed() -> bool:
    """Whether ``import ftrack_api`` currently resolves to reviewd."""
    return _FINDER in sys.meta_path


def real_ftrack_api_available() -> str | None:
    """Where the real ``ftrack_api`` is (or would be imported from), or None."""
    module = sys.modules.get(ALIAS_ROOT)
    if module is not None and getattr(module, "__name__", "") != TARGET_ROOT:
        return getattr(module, "__file__", None) or "an already imported ftrack_api"
    spec = importlib.machinery.PathFinder.find_spec(ALIAS_ROOT)
    if spec is None:
        return None
    return spec.origin or "a namespace package on sys.path"


def _forget_ftrack_api_modules() -> None:
    for name in alias_modules():
        del sys.modules[name]


def install(mode: str = "reviewd") -> bool:
    """Make ``import ftrack_api`` resolve to reviewd (*mode* ``"reviewd"``).

    Returns whether the hook is active afterwards.  A real ``ftrack_api`` that
    was already imported is dropped from ``sys.modules`` so later imports see
    reviewd's; objects made from it earlier keep working but are not reviewd's.
    *mode* ``"installed"`` removes the hook instead (the real package, if any).
    """
    if mode not in MODES:
        raise ValueError(f"ftrack_api mode must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "installed":
        uninstall()
        return False
    with _lock:
        if installed():
            return True
        real = real_ftrack_api_available()
        if real is not None:
            _log.info(
                "ftrack-python-api is installed (%s); classic plugins get reviewd's ftrack_api "
                'all the same (set plugins.ftrack_api = "installed" to give them the real one)',
                real,
            )
        _forget_ftrack_api_modules()
        sys.meta_path.insert(0, _FINDER)
        _log.debug("import ftrack_api now resolves to reviewd.api")
        return True


def uninstall() -> None:
    """Remove the hook and forget every ``ftrack_api`` module already imported."""
    with _lock:
        was_installed = installed()
        while _FINDER in sys.meta_path:
            sys.meta_path.remove(_FINDER)
        if was_installed:
            _forget_ftrack_api_modules()


def warn_if_guard_refuses(plugin: str, source_file: str | None) -> bool:
    """Warn once when *plugin* guards on the real ``ftrack_api.Session`` it will get.

    Only relevant while the hook is off and the real package is importable: then
    the guard is false for reviewd's session and the plugin registers nothing.
    """
    if installed() or not source_file or plugin in _warned_plugins:
        return False
    if real_ftrack_api_available() is None:
        return False
    try:
        with open(source_file, encoding="utf-8", errors="replace") as handle:
            lines = guard_lines(handle.read())
    except OSError:
        return False
    if not lines:
        return False
    _warned_plugins.add(plugin)
    _log.warning(
        "plugin %r checks isinstance(session, ftrack_api.Session) (line %d) but gets the "
        "real ftrack_api, so the check refuses reviewd's session and the plugin registers "
        'nothing; set plugins.ftrack_api = "reviewd" (the default)',
        plugin,
        lines[0],
        extra={"plugin": plugin},
    )
    return True
