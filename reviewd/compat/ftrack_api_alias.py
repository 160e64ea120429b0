"""An import hook that answers ``import ftrack_api...`` with reviewd's modules.

Each alias is a small module object that forwards attribute access to the
reviewd module it stands for, so ``ftrack_api.Session is reviewd.Session`` and
``ftrack_api.event.base.Event is reviewd.api.event.base.Event`` — a plugin's
``isinstance`` guard accepts reviewd's session, and exceptions it catches are
the ones reviewd raises.  The reviewd modules themselves are not renamed or
touched.  The hook is appended to ``sys.meta_path`` and only installed when no
real ``ftrack_api`` can be imported.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import logging
import re
import sys
import threading
import types
from typing import Any

_log = logging.getLogger("reviewd.compat")

#: ftrack_api module name -> the reviewd module that provides it.
ALIASES: dict[str, str] = {
    "ftrack_api": "reviewd",
    "ftrack_api.session": "reviewd.api.session",
    "ftrack_api.event": "reviewd.api.event",
    "ftrack_api.event.base": "reviewd.api.event.base",
    "ftrack_api.event.hub": "reviewd.api.event.hub",
    "ftrack_api.event.expression": "reviewd.api.event.expression",
    "ftrack_api.exception": "reviewd.api.exception",
    "ftrack_api.symbol": "reviewd.api.symbol",
    "ftrack_api.cache": "reviewd.api.cache",
    "ftrack_api.query": "reviewd.api.query",
    "ftrack_api.operation": "reviewd.api.operation",
    "ftrack_api.plugin": "reviewd.plugin",
}
_PACKAGES = {"ftrack_api", "ftrack_api.event"}

#: Names ftrack spells differently from reviewd, per module.
_RENAMED: dict[str, dict[str, str]] = {
    "ftrack_api.exception": {
        "AttributeError": "AttributeError_",
        "NoResultFoundError": "NotFoundError",
    },
}

#: Fixed values ftrack servers and clients share (topic names, well-known ids).
_CONSTANTS: dict[str, dict[str, Any]] = {
    "ftrack_api.symbol": {
        "COMPONENT_ADDED_TO_LOCATION_TOPIC": "ftrack.location.component-added",
        "COMPONENT_REMOVED_FROM_LOCATION_TOPIC": "ftrack.location.component-removed",
        "ORIGIN_LOCATION_ID": "ce9b348f-8809-11e3-821c-20c9d081909b",
        "UNMANAGED_LOCATION_ID": "cb268ecc-8809-11e3-a7e2-20c9d081909b",
        "REVIEW_LOCATION_ID": "cd41be70-8809-11e3-b98a-20c9d081909b",
        "CONNECT_LOCATION_ID": "07b82a97-8cf9-11e3-9383-20c9d081909b",
        "SERVER_LOCATION_ID": "3a372bde-05bc-11e4-8908-20c9d081909b",
    },
}

_GUARD = re.compile(r"isinstance\s*\(\s*[\w.]+\s*,\s*ftrack_api\s*\.\s*Session\s*\)")


class _AliasModule(types.ModuleType):
    """A stand-in ``ftrack_api`` module forwarding attributes to reviewd."""

    def __getattr__(self, name: str) -> Any:
        fullname = self.__name__
        if name.startswith("__") and name.endswith("__") and name != "__version__":
            # The import system probes dunders (__path__, __loader__, ...); forwarding
            # them would make it treat reviewd's files as ftrack_api's.
            raise AttributeError(name)
        submodule = f"{fullname}.{name}"
        if submodule in ALIASES:
            return importlib.import_module(submodule)
        constants = _CONSTANTS.get(fullname, {})
        if name in constants:
            return constants[name]
        target = importlib.import_module(ALIASES[fullname])
        try:
            return getattr(target, _RENAMED.get(fullname, {}).get(name, name))
        except AttributeError:
            raise AttributeError(
                f"reviewd's stand-in for {fullname!r} has no attribute {name!r} "
                f"({ALIASES[fullname]} does not provide it); import it from reviewd "
                f"or install ftrack-python-api"
            ) from None

    def __dir__(self) -> list[str]:
        target = sys.modules.get(ALIASES[self.__name__])
        names = set(super().__dir__()) | set(_CONSTANTS.get(self.__name__, {}))
        if target is not None:
            names |= set(dir(target))
        return sorted(names)


class _AliasLoader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return _AliasModule(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        # Import the real target now, so a missing piece fails at the plugin's
        # import line rather than at first use.
        importlib.import_module(ALIASES[module.__name__])


class _AliasFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != "ftrack_api" and not fullname.startswith("ftrack_api."):
            return None
        if fullname not in ALIASES:
            raise ModuleNotFoundError(
                f"No module named {fullname!r}: reviewd stands in for ftrack_api but does "
                f"not provide this module; import from reviewd instead, or install "
                f"ftrack-python-api in the daemon's environment",
                name=fullname,
            )
        return importlib.machinery.ModuleSpec(
            fullname, _AliasLoader(), is_package=fullname in _PACKAGES
        )


_FINDER = _AliasFinder()
_lock = threading.Lock()
_warned_real = False
_warned_plugins: set[str] = set()


def installed() -> bool:
    """Whether the alias hook is on ``sys.meta_path``."""
    return _FINDER in sys.meta_path


def real_ftrack_api_available() -> str | None:
    """Where the real ``ftrack_api`` would be imported from, or None."""
    module = sys.modules.get("ftrack_api")
    if module is not None and not isinstance(module, _AliasModule):
        return getattr(module, "__file__", None) or "an already imported ftrack_api"
    spec = importlib.machinery.PathFinder.find_spec("ftrack_api")
    if spec is None:
        return None
    return spec.origin or "a namespace package on sys.path"


def install() -> bool:
    """Make ``import ftrack_api`` resolve to reviewd, unless the real one exists.

    Returns True when the aliases are active.  When the real package is
    importable it is left alone and a warning is logged once per process.
    """
    global _warned_real
    with _lock:
        if installed():
            return True
        real = real_ftrack_api_available()
        if real is not None:
            if not _warned_real:
                _warned_real = True
                _log.warning(
                    "the real ftrack_api is installed (%s); leaving it alone, so classic "
                    "plugins import it and any that check isinstance(session, "
                    "ftrack_api.Session) will refuse reviewd's session",
                    real,
                )
            return False
        sys.meta_path.append(_FINDER)
        _log.debug("import ftrack_api now resolves to reviewd's own classes")
        return True


def uninstall() -> None:
    """Remove the hook and forget the alias modules already imported."""
    with _lock:
        while _FINDER in sys.meta_path:
            sys.meta_path.remove(_FINDER)
        for name in list(sys.modules):
            if isinstance(sys.modules[name], _AliasModule):
                del sys.modules[name]


def warn_if_guard_refuses(plugin: str, source_file: str | None) -> bool:
    """Warn (once per plugin) when *plugin* guards on the real ``ftrack_api.Session``.

    Only relevant while the real package is installed and the aliases are not
    active: then ``isinstance(session, ftrack_api.Session)`` is false for
    reviewd's session and the plugin silently registers nothing.
    """
    if installed() or not source_file or plugin in _warned_plugins:
        return False
    if real_ftrack_api_available() is None:
        return False
    try:
        with open(source_file, encoding="utf-8", errors="replace") as handle:
            source = handle.read()
    except OSError:
        return False
    if not _GUARD.search(source):
        return False
    _warned_plugins.add(plugin)
    _log.warning(
        "plugin %r checks isinstance(session, ftrack_api.Session), but the real "
        "ftrack_api is installed, so the check refuses reviewd's session and the plugin "
        "registers nothing; remove ftrack-python-api from the daemon's environment or "
        "accept reviewd.Session in the guard",
        plugin,
        extra={"plugin": plugin},
    )
    return True
