"""What the loader knows about each plugin, and how a failed one is recorded.

Loaded or failed, every plugin found gets a :class:`PluginRecord`: the daemon's
status page, ``reviewd plugins list`` and strict mode all read the same record,
so a failure is described once, in one line, with the traceback kept aside.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reviewd.api.exception import redact
from reviewd.plugin.paths import Candidate
from reviewd.plugin.registry import Subscription

__all__ = ["HookOutcome", "PluginRecord", "fail", "log_failure", "one_line", "source_file"]

_log = logging.getLogger("reviewd.plugin")


@dataclass
class PluginRecord:
    """What the host knows about one plugin, loaded or not.

    ``kind`` is ``"classic"``, ``"pluggy"``, ``"classic+pluggy"`` or ``"none"``
    (the module defines neither ``register()`` nor hook implementations: it is
    imported, warned about and otherwise ignored).  ``error`` is a one-line
    description of why the plugin is not running, ``traceback`` the detail.
    """

    name: str
    source: str
    origin: str  # "path" or "entry-point"
    path: str | None = None
    kind: str = "none"
    module: Any = None
    subscriptions: list[Subscription] = field(default_factory=list)
    error: str | None = None
    traceback: str | None = None
    warnings: list[str] = field(default_factory=list)
    module_name: str | None = None
    candidate: Candidate | None = None
    entry_point: Any = None

    @property
    def loaded(self) -> bool:
        return self.error is None and self.module is not None

    def describe(self) -> str:
        return f"plugin {self.name!r} ({self.source})"


@dataclass(frozen=True)
class HookOutcome:
    """The result of calling one hook on one plugin: a value or the error it raised."""

    plugin: str
    result: Any = None
    error: BaseException | None = None


def one_line(error: BaseException) -> str:
    """The error as one redacted line: its type and the first line of its message
    (for a syntax error, the line number instead)."""
    if isinstance(error, SyntaxError) and error.lineno:
        text = f"SyntaxError: {error.msg} (line {error.lineno})"
    else:
        detail = str(error).strip().splitlines()
        text = f"{type(error).__name__}: {detail[0]}" if detail else type(error).__name__
    return redact(text)


def log_failure(record: PluginRecord) -> None:
    """Log that *record* failed (one line), with its traceback at DEBUG."""
    _log.error(
        "%s failed to load and was skipped: %s",
        record.describe(),
        record.error,
        extra={"plugin": record.name, "plugin_source": record.source},
    )
    if record.traceback:
        _log.debug("%s traceback:\n%s", record.describe(), record.traceback)


def fail(
    record: PluginRecord,
    error: BaseException,
    phase: str,
    report: Callable[[PluginRecord], None] | None = None,
) -> None:
    """Mark *record* failed by *error* during *phase* (e.g. ``"import failed"``) and log it
    (with *report*, default :func:`log_failure`)."""
    record.error = f"{phase}: {one_line(error)}" if phase else one_line(error)
    record.traceback = redact("".join(traceback.format_exception(error)))
    record.module = None
    record.subscriptions = []
    (report or log_failure)(record)


def source_file(record: PluginRecord) -> str | None:
    """The file holding the plugin's top-level code (for the ftrack_api guard check)."""
    if record.candidate is not None:
        if record.candidate.is_package:
            return os.path.join(record.candidate.path, "__init__.py")
        return record.candidate.path
    return getattr(record.module, "__file__", None)
