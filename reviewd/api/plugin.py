"""ftrack_api's plugin discovery entry point: ``discover(paths, args, kwargs)``.

Discovery itself (safe path scanning, fresh imports, argument culling,
attribution of subscriptions) lives in :mod:`reviewd.plugin.discovery`; this
module gives it ftrack_api's module path and signature.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

_log = logging.getLogger("reviewd.api.plugin")


def _report_failure(record: Any) -> None:
    """ftrack_api's wording and levels: a warning per broken plugin, its traceback at debug."""
    _log.warning("Failed to load plugin from %r: %s", record.path or record.source, record.error)
    if record.traceback:
        _log.debug("%s", record.traceback)


def discover(
    paths: Iterable[str],
    positional_arguments: Sequence[Any] | None = None,
    keyword_arguments: Mapping[str, Any] | None = None,
) -> None:
    """Import every ``*.py`` plugin under *paths* and call its ``register``.

    Failures are logged and skipped, as in ftrack_api: one broken plugin must
    not stop the others from loading.
    """
    paths = [path for path in paths if path and path.strip()]
    if not paths:
        return  # nothing to scan; do not even load the plugin machinery
    from reviewd.plugin.discovery import discover as discover_plugins

    discover_plugins(
        paths,
        tuple(positional_arguments or ()),
        dict(keyword_arguments or {}),
        report_failure=_report_failure,
    )
