"""pytest plugin (``-p conformance_reviewd``): make ``import ftrack_api`` load reviewd.

pytest imports ``-p`` plugins before it loads any ``conftest.py``, so the suite's
``import ftrack_api`` already goes through reviewd's compat import hook.
"""

from __future__ import annotations

import reviewd.compat

if not reviewd.compat.install():
    raise RuntimeError(
        "reviewd.compat.install() refused: a real ftrack_api is importable in this "
        "interpreter, so the run would not test reviewd"
    )
