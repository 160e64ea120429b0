"""Importing a plugin module afresh, under a name of the loader's choosing.

Plugins are not on ``sys.path`` and must be importable again after an edit (reload)
and once per Session (classic discovery), so each import compiles the source
anew under a unique module name, and can be forgotten again completely.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import re
import sys
from types import ModuleType
from typing import Any

from reviewd.plugin.paths import Candidate

__all__ = ["forget_modules", "import_candidate", "plugin_module_name"]


class _FreshSourceLoader(importlib.machinery.SourceFileLoader):
    """Compile the plugin from its source every time, bypassing ``__pycache__``.

    A reload must see an edit made within the same second as the previous load
    (the bytecode cache only compares whole-second mtimes and sizes), and plugin
    directories are often read-only to the daemon's user.
    """

    def get_code(self, fullname: str) -> Any:
        path = self.get_filename(fullname)
        return compile(self.get_data(path), path, "exec", dont_inherit=True)


def plugin_module_name(prefix: str, name: str) -> str:
    """A valid module name for plugin *name*: *prefix*, then the name with ``_``
    for every character a module name cannot hold."""
    return prefix + re.sub(r"\W", "_", name)


def forget_modules(module_name: str) -> dict[str, ModuleType]:
    """Remove *module_name* and its submodules from ``sys.modules``; return them."""
    removed = {}
    for key in list(sys.modules):
        if key == module_name or key.startswith(module_name + "."):
            removed[key] = sys.modules.pop(key)
    return removed


def _fresh_finders_for(package_directory: str) -> None:
    """Make the package's own submodules compile from source too (see above).

    The import system looks a directory's finder up in ``sys.path_importer_cache``
    first, so placing one there for each directory of the package is enough;
    nothing outside the plugin's directories is affected.
    """
    loaders = (
        (importlib.machinery.ExtensionFileLoader, importlib.machinery.EXTENSION_SUFFIXES),
        (_FreshSourceLoader, importlib.machinery.SOURCE_SUFFIXES),
        (importlib.machinery.SourcelessFileLoader, importlib.machinery.BYTECODE_SUFFIXES),
    )
    for base, directories, _files in os.walk(package_directory):
        directories[:] = [d for d in directories if not d.startswith(".") and d != "__pycache__"]
        sys.path_importer_cache[base] = importlib.machinery.FileFinder(base, *loaders)


def import_candidate(candidate: Candidate, module_name: str) -> ModuleType:
    """Execute *candidate* as a fresh module called *module_name*.

    The module is in ``sys.modules`` while it runs (dataclasses, pickling and a
    package's relative imports need that) and is removed again if it fails.
    """
    if candidate.is_package:
        filename = os.path.join(candidate.path, "__init__.py")
        locations: list[str] | None = [candidate.path]
        _fresh_finders_for(candidate.path)
    else:
        filename, locations = candidate.path, None
    loader = _FreshSourceLoader(module_name, filename)
    spec = importlib.util.spec_from_file_location(
        module_name, filename, loader=loader, submodule_search_locations=locations
    )
    assert spec is not None, "a file location with an explicit loader always has a spec"
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        loader.exec_module(module)
    except BaseException:
        forget_modules(module_name)
        raise
    return module
