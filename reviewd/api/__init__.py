"""reviewd's ftrack client: one module here for each public module of ``ftrack_api``.

``reviewd.api.session.Session`` is the client; ``reviewd.api.event`` the event hub.
The daemon, the plugin host and the embedded server sit beside this package and
use only its public names.  ``import ftrack_api`` resolves to this package, and
``ftrack_api.X`` to ``reviewd.api.X``, through :mod:`reviewd.compat`.

Submodules and ``Session`` load on first access, so importing the package (for
instance through ``import reviewd``) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

from reviewd.api.mixin import mixin

#: The ftrack_api release whose public interface this package follows.
__version__ = "3.1.0"

__all__ = ["Session", "mixin", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Session":
        from reviewd.api.session import Session

        return Session
    if not name.startswith("_"):
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
