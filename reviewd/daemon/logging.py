"""Logging: one structlog processor chain, three renderers (console, JSON, journald).

Why through the standard library's ``logging``: the client, the hub and every plugin log
with ``logging.getLogger``; routing structlog through a ``ProcessorFormatter`` on the root
handler gives their lines the same timestamp, level, ``event_id``/``plugin`` context
(bound by the router with ``structlog.contextvars``) and redaction as the daemon's own.

Redaction happens twice on purpose: a processor redacts every string value of the event
dict, and the formatter redacts the final rendered text (tracebacks included), so the
API key cannot slip out through an exception message or a repr.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from typing import Any, TextIO

import structlog

from reviewd.api.exception import redact

_PRIORITY = {"debug": 7, "info": 6, "warning": 4, "error": 3, "critical": 2}


def redact_processor(_logger: Any, _name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Remove registered secrets from every value (recursively through containers)."""
    return {
        key: value if key in ("exc_info", "stack_info") else _redact_value(value)
        for key, value in event_dict.items()
    }


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_redact_value(v) for v in value)
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return redact(repr(value)) if not isinstance(value, BaseException) else value


class RedactingFormatter(structlog.stdlib.ProcessorFormatter):
    """ProcessorFormatter whose output passes through :func:`redact` once more."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JournaldHandler(logging.Handler):
    """Sends each record to the systemd journal with structured fields.

    The formatter renders JSON; its keys become journal fields (``EVENT_ID``,
    ``PLUGIN``, ...), ``event`` becomes ``MESSAGE``, the level becomes ``PRIORITY``.
    """

    def __init__(self) -> None:
        super().__init__()
        from systemd import journal  # noqa: PLC0415 - optional dependency

        self._send = journal.send

    def emit(self, record: logging.LogRecord) -> None:
        try:
            data = json.loads(self.format(record))
            message = str(data.pop("event", ""))
            level = str(data.pop("level", "info"))
            fields = {
                _field_name(key): value if isinstance(value, str) else json.dumps(value)
                for key, value in data.items()
            }
            fields["PRIORITY"] = str(_PRIORITY.get(level, 6))
            fields["SYSLOG_IDENTIFIER"] = "reviewd"
            self._send(message, **fields)
        except Exception:  # noqa: BLE001
            self.handleError(record)


def _field_name(key: str) -> str:
    name = "".join(ch if ch.isalnum() else "_" for ch in key).upper().lstrip("_")
    return name or "FIELD"


def journald_available() -> bool:
    try:
        from systemd import journal  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def choose_format(requested: str, foreground: bool,
                  environ: Mapping[str, str] | None = None) -> str:
    """Resolve ``auto``: console in the foreground, journald under systemd's journal, else JSON."""
    if requested != "auto":
        return requested
    environ = os.environ if environ is None else environ
    if foreground:
        return "console"
    if environ.get("JOURNAL_STREAM") and journald_available():
        return "journald"
    return "json"


def configure(level: str = "info", fmt: str = "json", stream: TextIO | None = None) -> str:
    """Install the processor chain and root handler; return the format actually used.

    Safe to call again (SIGHUP reload): the previous root handler is replaced.
    """
    if fmt == "journald" and not journald_available():
        fmt = "json"
    stream = stream or sys.stderr
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
        redact_processor,
    ]
    if fmt == "console":
        renderer: Any = structlog.dev.ConsoleRenderer(
            colors=hasattr(stream, "isatty") and stream.isatty())
        final = [structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer]
    else:
        final = [
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.dict_tracebacks,
            structlog.processors.JSONRenderer(default=str),
        ]
    formatter = RedactingFormatter(foreign_pre_chain=shared, processors=final)
    handler: logging.Handler = JournaldHandler() if fmt == "journald" else logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.set_name("reviewd")
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == "reviewd":  # ours from a previous configure(): replace it
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    return fmt


def set_level(level: str) -> None:
    logging.getLogger().setLevel(level.upper())
