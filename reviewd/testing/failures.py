"""What a plugin author reads when a plugin test fails: the plugin's traceback and the
event that triggered it, without reviewd's own frames.

Why from the journal's text: the daemon records every failed attempt as the formatted
traceback of the handler's exception (``last_error`` of the delivery), so the fixtures
report exactly what ``reviewd journal list`` would show an operator; only the frames
of reviewd's machinery (the lane, the intake, the hub's dispatch) are cut out, since
they are the same for every failure and hide the two lines that matter.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import reviewd

__all__ = ["PluginFailure", "PluginLoadError", "Failure", "format_event", "plugin_traceback"]

#: Frames from files under this folder are reviewd's, not the plugin author's.
_REVIEWD_DIR = os.path.dirname(os.path.abspath(reviewd.__file__)) + os.sep
_FRAME = re.compile(r'^  File "(?P<file>[^"]+)", line \d+')
#: Longest event data shown in a failure; a huge payload would bury the traceback.
MAX_EVENT_CHARS = 3000


def _is_reviewd_frame(filename: str) -> bool:
    return os.path.abspath(filename).startswith(_REVIEWD_DIR)


def plugin_traceback(text: str) -> str:
    """*text* (a formatted traceback) without the frames of files inside reviewd.

    Each run of hidden frames becomes one line saying how many were hidden, so the
    reader knows the chain is intact.  Text that is not a traceback is returned as is.
    """
    out: list[str] = []
    hidden = 0
    skipping = False
    for line in text.splitlines():
        frame = _FRAME.match(line)
        if frame:
            skipping = _is_reviewd_frame(frame.group("file"))
            if skipping:
                hidden += 1
                continue
        elif skipping and line.startswith("    "):
            continue  # the source line and caret markers of a hidden frame
        else:
            skipping = False
        if hidden:
            out.append(f"  ... {hidden} frame(s) of reviewd hidden ...")
            hidden = 0
        out.append(line)
    if hidden:
        out.append(f"  ... {hidden} frame(s) of reviewd hidden ...")
    return "\n".join(out)


def format_event(event: Mapping[str, Any]) -> str:
    """The event as a reader wants it: topic, id, source user, then its data as JSON."""
    source = event.get("source") or {}
    user = (source.get("user") or {}).get("username") if isinstance(source, Mapping) else None
    head = f"topic={event.get('topic')} id={event.get('id')}"
    if user:
        head += f" source.user={user}"
    if event.get("target"):
        head += f" target={event.get('target')}"
    try:
        data = json.dumps(event.get("data"), indent=2, sort_keys=True, default=str)
    except (TypeError, ValueError):
        data = repr(event.get("data"))
    if len(data) > MAX_EVENT_CHARS:
        data = data[:MAX_EVENT_CHARS] + f"\n... ({len(data) - MAX_EVENT_CHARS} more characters)"
    return f"{head}\ndata = {data}"


@dataclass(frozen=True)
class Failure:
    """One delivery of an event to the plugin that raised (still retrying, or dead)."""

    plugin: str
    event: dict[str, Any]
    attempts: int
    dead: bool
    error: str  # the plugin's traceback, reviewd's frames hidden

    @property
    def last_line(self) -> str:
        lines = self.error.strip().splitlines()
        return lines[-1] if lines else ""

    def describe(self) -> str:
        state = "dead-lettered" if self.dead else "will be retried"
        return (
            f"plugin {self.plugin!r} raised while handling an event "
            f"(attempt {self.attempts}, {state}):\n\n{self.error}\n\n"
            f"the event that triggered it:\n{format_event(self.event)}"
        )


class PluginFailure(AssertionError):
    """A plugin raised while handling an event the test did not expect it to fail on.

    An ``AssertionError`` so that pytest reports the test as failed (not errored) and
    shows this message: the event and the plugin's traceback.
    """

    def __init__(self, failures: list[Failure]) -> None:
        self.failures = list(failures)
        first = self.failures[0]
        more = (
            f"\n\n({len(self.failures) - 1} more failed delivery(ies) not shown)"
            if len(self.failures) > 1
            else ""
        )
        super().__init__(first.describe() + more)


class PluginLoadError(AssertionError):
    """The plugin under test did not load: its import or registration raised."""
