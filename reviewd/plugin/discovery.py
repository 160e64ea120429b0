"""Classic ftrack discovery, as a ``Session`` runs it when it is built.

ftrack's ``Session`` imports every plugin on its plugin paths and calls each
``register(session)``; reviewd's does the same through :func:`discover`, with the
loader's safety checks and argument culling.  The daemon uses :class:`PluginHost`
instead, which adds hooks, names, strict mode and reload.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from reviewd.plugin.classic import run_classic_register
from reviewd.plugin.importing import import_candidate, plugin_module_name
from reviewd.plugin.paths import find_candidates
from reviewd.plugin.records import PluginRecord, fail

__all__ = ["discover"]

_log = logging.getLogger("reviewd.plugin")

#: Discovery imports afresh for every Session: each module gets a unique name.
DISCOVER_MODULE_PREFIX = "reviewd_discovered__"


def discover(
    paths: Iterable[str],
    positional_arguments: Sequence[Any] = (),
    keyword_arguments: Mapping[str, Any] | None = None,
    *,
    allow_world_writable: bool = False,
    ftrack_api_compat: bool = True,
    report_failure: Callable[[PluginRecord], None] | None = None,
) -> list[PluginRecord]:
    """Classic ftrack discovery: import every plugin module and call its ``register``.

    ``register(*positional_arguments, **keyword_arguments)`` is called with the
    keyword arguments culled to what its signature accepts (a warning names the
    dropped ones).  A module that fails to import or whose ``register`` raises is
    logged and skipped.  Each call imports the modules afresh, as ftrack does, so
    every Session gets its own registration.  Hook implementations in these
    modules are ignored here: hooks need the daemon's :class:`PluginHost`.

    With *ftrack_api_compat*, ``import ftrack_api`` inside a plugin resolves to
    reviewd's classes when the real package is not installed.
    """
    if ftrack_api_compat:
        from reviewd import compat

        compat.install()
    positional_arguments = tuple(positional_arguments or ())
    keyword_arguments = dict(keyword_arguments or {})
    records = []
    for candidate in find_candidates(paths, allow_world_writable=allow_world_writable):
        record = PluginRecord(
            candidate.name, candidate.path, "path", path=candidate.real_path, candidate=candidate
        )
        records.append(record)
        unique = uuid.uuid4().hex
        module_name = f"{plugin_module_name(DISCOVER_MODULE_PREFIX, candidate.name)}_{unique}"
        try:
            module = import_candidate(candidate, module_name)
        except (Exception, SystemExit) as error:
            fail(record, error, "import failed", report_failure)
            continue
        register = getattr(module, "register", None)
        if not callable(register):
            record.module = module
            message = "defines no register() function at module level; nothing to call"
            record.warnings.append(message)
            _log.warning("%s %s", record.describe(), message)
            continue
        try:
            record.subscriptions = run_classic_register(
                register, candidate.name, candidate.path, positional_arguments, keyword_arguments
            )
        except (Exception, SystemExit) as error:
            fail(record, error, "register() raised", report_failure)
            continue
        record.module = module
        record.kind = "classic"
        _log.info(
            "loaded %s with %d subscription(s)",
            record.describe(),
            len(record.subscriptions),
            extra={"plugin": record.name},
        )
    return records
