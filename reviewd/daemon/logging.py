"""Logging: one structlog processor chain, three renderers (console, JSON, journald).

Why through the standard library's ``logging``: the client, the hub and every plugin log
with ``logging.getLogger``; routing structlog through a ``ProcessorFormatter`` on the root
handler gives their lines the same timestamp, level, ``event_id``/``plugin`` context
(bound by the router with ``structlog.contextvars``) and redaction as the daemon's own.

Redaction happens twice on purpose: a processor redacts every string value of the event
dict, and the formatter redacts the final rendered text (tracebacks included), so the
API key cannot slip out through an exception message or a repr.

A plugin's handler that raises is logged at error level with the plugin's frames
(``file:line in function``) as the ``frames`` field (:func:`log_handler_exception`):
a list in JSON and journald, an indented block under the line on the console.  Without
them an operator reads ``RuntimeError: boom`` and has to switch on debug logging and wait
for the failure to happen again to learn where.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from collections.abc import Mapping
from typing import Any, TextIO

import structlog

from reviewd.api.exception import redact

_PRIORITY = {"debug": 7, "info": 6, "warning": 4, "error": 3, "critical": 2}
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_FRAMES = 20


def plugin_frames(exc: BaseException) -> list[str]:
    """The frames of *exc*'s traceback from the first one outside reviewd on, as
    ``"path/to/plugin.py:42 in on_update"``.

    Why drop the leading frames: they are reviewd's delivery machinery (router, hub
    dispatch), the same for every failure; what a reader needs starts where the plugin's
    code does, including anything it called back into (``session.commit`` failing deep
    in the client).  When no frame is outside reviewd, every frame is kept.
    """
    frames = traceback.extract_tb(exc.__traceback__)
    start = next(
        (
            i
            for i, f in enumerate(frames)
            if not os.path.abspath(f.filename).startswith(_PACKAGE_DIR + os.sep)
        ),
        0,
    )
    chosen = list(frames)[start:][-MAX_FRAMES:]
    return [redact(f"{f.filename}:{f.lineno} in {f.name}") for f in chosen]


def log_handler_exception(logger: Any, exc: BaseException, **fields: Any) -> None:
    """Log a plugin handler's exception at error level, with its frames as a field."""
    logger.error(
        "handler raised",
        error=redact(f"{type(exc).__name__}: {exc}"),
        frames=plugin_frames(exc),
        **fields,
    )


class ConsoleWithFrames:
    """structlog's console renderer, with a ``frames`` list shown as an indented block
    under the line (the way a traceback reads) instead of a one-line list repr."""

    def __init__(self, renderer: Any) -> None:
        self._renderer = renderer

    def __call__(self, logger: Any, name: str, event_dict: dict[str, Any]) -> str:
        frames = event_dict.pop("frames", None)
        text = self._renderer(logger, name, event_dict)
        if frames and isinstance(frames, (list, tuple)):
            text += "".join(f"\n    at {frame}" for frame in frames)
        return text


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


def choose_format(
    requested: str, foreground: bool, environ: Mapping[str, str] | None = None
) -> str:
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
        renderer: Any = ConsoleWithFrames(
            structlog.dev.ConsoleRenderer(colors=hasattr(stream, "isatty") and stream.isatty())
        )
        final = [structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer]
    else:
        final = [
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.dict_tracebacks,
            structlog.processors.JSONRenderer(default=str),
        ]
    formatter = RedactingFormatter(foreign_pre_chain=shared, processors=final)
    handler: logging.Handler = (
        JournaldHandler() if fmt == "journald" else logging.StreamHandler(stream)
    )
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
