"""Signals as requests to the main loop: stop, stop now, reload.

Why handlers only set flags: a signal handler runs between two bytecodes of whatever
the main thread was doing (writing the journal, swapping plugin lanes).  Doing the
work there would interleave two state changes; so, as in gunicorn's arbiter, the
handlers record what was asked and wake the main loop, which does the work on its
own turn.  The one exception is a *second* SIGTERM/SIGINT: the operator has said
"now", so the process exits at once (unfinished deliveries stay in the journal and
replay on the next start).

- SIGTERM, SIGINT: graceful stop (:attr:`SignalRequests.stop` is set).
- SIGHUP: reload configuration and plugins (:meth:`SignalRequests.take_reload`).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any


class StartupAborted(Exception):
    """A stop signal arrived before the daemon finished starting."""


class SignalRequests:
    """What the signal handlers asked for, and the event that wakes the main loop."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self._wake = threading.Event()
        self._reload_requested = False
        self._stop_signals = 0

    def install(self) -> None:
        """Route SIGTERM/SIGINT to a graceful stop and SIGHUP to a reload."""
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGHUP, self._on_hup)

    def _on_stop_signal(self, signum: int, _frame: Any) -> None:
        self._stop_signals += 1
        if self._stop_signals > 1:
            sys.stderr.write(
                f"reviewd: second {signal.Signals(signum).name}: exiting now; "
                "unfinished deliveries stay in the journal\n"
            )
            sys.stderr.flush()
            os._exit(1)
        self.request_stop()

    def _on_hup(self, _signum: int, _frame: Any) -> None:
        self._reload_requested = True
        self.wake()

    def request_stop(self) -> None:
        """Ask for a graceful stop (what SIGTERM does), from any thread."""
        self.stop.set()
        self.wake()

    def check_stop(self) -> None:
        """During start-up: give up starting (:class:`StartupAborted`) once asked to stop."""
        if self.stop.is_set():
            raise StartupAborted()

    def wait_or_abort(self, seconds: float) -> None:
        """Wait *seconds* during start-up; :class:`StartupAborted` if a stop comes first."""
        if self.stop.wait(seconds):
            raise StartupAborted()

    def take_reload(self) -> bool:
        """True once per SIGHUP received since the last call."""
        if not self._reload_requested:
            return False
        self._reload_requested = False
        return True

    def wake(self) -> None:
        """Make the main loop take its next turn now rather than at the next tick."""
        self._wake.set()

    def sleep(self, seconds: float) -> None:
        """The main loop's pause between turns: *seconds*, or less when woken."""
        self._wake.wait(seconds)
        self._wake.clear()
