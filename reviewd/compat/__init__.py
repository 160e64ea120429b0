"""Compatibility with code written for ``ftrack_api``.

Most classic ftrack plugins start with ``import ftrack_api`` and guard their
``register`` with ``isinstance(session, ftrack_api.Session)``.  When the real
``ftrack-python-api`` is not installed, :func:`install` makes those imports
resolve to reviewd's own classes so such plugins run without edits.  When it is
installed, reviewd leaves it alone (a plugin may need it) and warns once; the
plugin host then names each plugin whose guard will refuse reviewd's session.
"""

from reviewd.compat.ftrack_api_alias import (
    ALIASES,
    install,
    installed,
    real_ftrack_api_available,
    uninstall,
    warn_if_guard_refuses,
)

__all__ = [
    "ALIASES",
    "install",
    "installed",
    "real_ftrack_api_available",
    "uninstall",
    "warn_if_guard_refuses",
]
