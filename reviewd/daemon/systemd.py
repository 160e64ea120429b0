"""sd_notify over ``$NOTIFY_SOCKET``: READY, STATUS, WATCHDOG, EXTEND_TIMEOUT_USEC and
STOPPING messages.

Why a pure-socket implementation: the protocol is one datagram per message to a Unix
socket named by an environment variable, so a dozen lines replace a dependency on
libsystemd and work the same in a container or a test.  Outside systemd (no
``NOTIFY_SOCKET``) every call is a cheap no-op.
"""

from __future__ import annotations

import os
import socket
import threading


class Notifier:
    """Sends sd_notify messages; thread-safe, never raises (a lost status is not fatal)."""

    def __init__(self, address: str | None = None) -> None:
        address = os.environ.get("NOTIFY_SOCKET") if address is None else address
        self.address: str | None = None
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        if address:
            # '@' names a socket in the abstract namespace (leading NUL byte).
            self.address = "\0" + address[1:] if address.startswith("@") else address
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.watchdog_interval = watchdog_interval()

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def notify(self, message: str) -> bool:
        """Send *message* (``"KEY=value"`` lines); True when it was sent."""
        if self._sock is None or self.address is None:
            return False
        with self._lock:
            try:
                self._sock.sendto(message.encode("utf-8"), self.address)
                return True
            except OSError:
                return False

    def ready(self, status: str = "ready") -> bool:
        return self.notify(f"READY=1\nSTATUS={_one_line(status)}")

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={_one_line(text)}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for *seconds* more before the current start (or stop) timeout: systemd
        fails the start unless another message comes within that time.

        Why: the unit's ``TimeoutStartSec`` is finite so that a wedged start fails, but
        waiting for an ftrack server that is down is not wedged; each attempt extends it.
        """
        return self.notify(f"EXTEND_TIMEOUT_USEC={max(1, int(seconds * 1_000_000))}")

    def reloading(self) -> bool:
        return self.notify("RELOADING=1\nSTATUS=reloading configuration and plugins")

    def stopping(self, status: str = "stopping") -> bool:
        return self.notify(f"STOPPING=1\nSTATUS={_one_line(status)}")

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


def watchdog_interval() -> float | None:
    """Seconds between WATCHDOG=1 pings: half of ``$WATCHDOG_USEC``, or None when unset.

    ``$WATCHDOG_PID``, when set, must be our pid (systemd's rule for forked children).
    """
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid.isdigit() and int(pid) != os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 1e6 / 2 if value > 0 else None


def _one_line(text: str) -> str:
    return " ".join(str(text).split())
