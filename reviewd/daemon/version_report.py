"""The text ``reviewd --version`` prints.

A platform team vetting a farm host wants three facts in one command: which reviewd
this is, on which Python, and which ftrack API it speaks (so they know which server
releases and which ``ftrack_api`` plugins it is meant for).  The first line stays
``reviewd X.Y.Z`` so scripts that parse it keep working.
"""

from __future__ import annotations

import platform

from reviewd import __version__
from reviewd.api.protocol_version import FTRACK_PYTHON_API_VERSION, MINIMUM_SERVER_VERSION


def version_text() -> str:
    """Three lines: reviewd's version, the Python running it, the ftrack API spoken."""
    minimum = ".".join(str(part) for part in MINIMUM_SERVER_VERSION)
    return (
        f"reviewd {__version__}\n"
        f"Python {platform.python_version()} ({platform.python_implementation()})\n"
        f"ftrack API: ftrack-python-api {FTRACK_PYTHON_API_VERSION} interface, "
        f"servers {minimum} or newer\n"
    )
