"""reviewd: an ftrack event-processing daemon and an ftrack-compatible API client.

The public names mirror ``ftrack_api`` so that existing plugins and scripts port by
changing their imports: ``reviewd.Session``, ``reviewd.api.event.base.Event``,
``reviewd.api.exception``, ``reviewd.api.symbol``.  Imports are lazy so that ``import reviewd``
stays cheap for tools (the CLI, the devserver) that never build a Session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what editors and type checkers see; at run time the lazy path below
    from reviewd.api.session import Session
    from reviewd.plugin import hookimpl

__version__ = "0.1.0"

__all__ = ["Session", "hookimpl", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Session":
        from reviewd.api.session import Session

        return Session
    if name == "hookimpl":
        from reviewd.plugin import hookimpl

        return hookimpl
    raise AttributeError(f"module 'reviewd' has no attribute {name!r}")
