"""The import hook that answers ``import ftrack_api.X`` with the module ``reviewd.api.X``.

The mapping is structural: ``reviewd/api/`` has one module for each public module
of ``ftrack_api``, so ``ftrack_api`` followed by any dotted path means
``reviewd.api`` followed by the same path.  There is no table of names to keep up
to date; a module ftrack has and reviewd lacks fails at the import line.

The hook hands out the reviewd module object itself (not a copy or a proxy), so
``ftrack_api.session.Session is reviewd.api.session.Session`` and patching
``ftrack_api.x.y`` in a test patches what reviewd uses.  The module keeps its own
``__spec__`` and ``__name__``: reviewd's modules are not renamed by being aliased.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
from typing import Any

#: The package name plugins import, and the package that provides it.
ALIAS_ROOT = "ftrack_api"
TARGET_ROOT = "reviewd.api"


def target_name(fullname: str) -> str:
    """``ftrack_api.event.hub`` -> ``reviewd.api.event.hub``."""
    return TARGET_ROOT + fullname[len(ALIAS_ROOT) :]


def is_alias_name(fullname: str) -> bool:
    return fullname == ALIAS_ROOT or fullname.startswith(ALIAS_ROOT + ".")


class _ExistingModuleLoader(importlib.abc.Loader):
    """Loads an alias name by importing its reviewd counterpart and reusing that object."""

    def __init__(self, target: types.ModuleType) -> None:
        self._target = target
        self._spec = target.__spec__

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return self._target

    def exec_module(self, module: types.ModuleType) -> None:
        # The import machinery stamped the alias spec on the shared module object;
        # give reviewd's module its own identity back.
        module.__spec__ = self._spec
        if self._spec is not None:
            module.__loader__ = self._spec.loader


class FtrackApiFinder(importlib.abc.MetaPathFinder):
    """``sys.meta_path`` entry mapping ``ftrack_api[.X]`` onto ``reviewd.api[.X]``."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if not is_alias_name(fullname):
            return None
        wanted = target_name(fullname)
        try:
            module = importlib.import_module(wanted)
        except ModuleNotFoundError as error:
            if error.name != wanted:
                raise  # a bug inside reviewd's module, not a missing counterpart
            raise ModuleNotFoundError(
                f"No module named {fullname!r}: reviewd stands in for ftrack_api and has no "
                f"{wanted!r}; import from reviewd instead, or set plugins.ftrack_api = "
                f'"installed" to give plugins the real ftrack-python-api',
                name=fullname,
            ) from None
        is_package = hasattr(module, "__path__")
        spec = importlib.machinery.ModuleSpec(
            fullname, _ExistingModuleLoader(module), is_package=is_package
        )
        if is_package:
            spec.submodule_search_locations = []  # submodules come through this finder too
        return spec


def alias_modules() -> list[str]:
    """Names in ``sys.modules`` under the ``ftrack_api`` prefix."""
    return [name for name in sys.modules if is_alias_name(name)]
