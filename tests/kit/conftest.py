"""The kit's own tests use reviewd's pytest plugin the way a plugin project does.

Imported rather than listed in ``pytest_plugins`` (pytest accepts that only in the
top-level conftest): importing the fixtures and the marker hook into this conftest
enables them for this folder alone.
"""

from reviewd.testing import (  # noqa: F401 - fixtures and hooks are found by name
    _reviewd_handles,
    _reviewd_module_servers,
    emit,
    ftrack_api_session,
    ftrack_changes,
    ftrack_server,
    ftrack_session,
    pytest_configure,
    reviewd_plugin,
    wait_for,
)
