"""Which ftrack API this client speaks, stated once.

The client follows the public interface and wire protocol of one release of the
official ``ftrack-python-api``; the interop tests run that exact release as a peer.
Tools that report versions (``reviewd --version``) read the figures from here so
that they cannot drift from what the tests prove.
"""

from __future__ import annotations

from typing import Final

#: The ``ftrack-python-api`` release whose public API and wire protocol reviewd follows.
FTRACK_PYTHON_API_VERSION: Final[str] = "3.1.0"

#: The oldest ftrack server version the client accepts (``dev`` servers always pass).
MINIMUM_SERVER_VERSION: Final[tuple[int, int, int]] = (3, 3, 11)
