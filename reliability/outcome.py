"""What a scenario measured, and the accounting every stream scenario shares."""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass, field

from reliability.processes import DaemonProcess, canonical_id, wait_until


@dataclass
class Outcome:
    """One scenario's figures, as the report's table shows them."""

    name: str
    runs: int = 0
    faults: int = 0
    sent: int = 0
    journaled: int = 0
    handled: int = 0
    lost: int = 0
    duplicates: int = 0
    crashes: int = 0
    longest_recovery: float = 0.0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def recovered(self, seconds: float) -> None:
        self.longest_recovery = max(self.longest_recovery, seconds)

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicates == 0 and self.crashes == 0


def settle(
    daemon: DaemonProcess,
    timeout: float = 180.0,
    quiet: float = 2.0,
    sent: Collection[str] | None = None,
) -> None:
    """Until every journaled reliability event has been handled and either the ids in
    *sent* are all journaled (nothing more is on its way) or nothing new has been journaled for
    *quiet* seconds (events published during a fault may never arrive, and a server
    resumed from SIGSTOP delivers its backlog in a burst after the publisher stopped),
    or *timeout*."""
    expected = None if sent is None else {canonical_id(i) for i in sent}
    deadline = time.monotonic() + timeout
    last_count, stable_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        journaled = daemon.journaled()
        if len(journaled) != last_count:
            last_count, stable_since = len(journaled), time.monotonic()
        everything_arrived = expected is not None and expected <= journaled
        quiet_enough = time.monotonic() - stable_since >= quiet
        if journaled <= set(daemon.handled()) and (everything_arrived or quiet_enough):
            return
        time.sleep(0.1)
    # what is left is counted as lost by account()


def account(outcome: Outcome, daemon: DaemonProcess, sent: int) -> Outcome:
    """Fill sent/journaled/handled/lost/duplicates from the journal and the plugin's log.

    *lost* counts events the journal accepted that the plugin never handled;
    *duplicates* counts handlings beyond the first of an event.
    """
    handled = daemon.handled()
    journaled = daemon.journaled()
    outcome.sent += sent
    outcome.journaled += len(journaled)
    outcome.handled += len(set(handled))
    outcome.lost += len(journaled - set(handled))
    outcome.duplicates += len(handled) - len(set(handled))
    return outcome


def time_to_next_delivery(daemon: DaemonProcess, timeout: float = 60.0) -> float:
    """Seconds until the plugin handles one more event than now (the stream is on)."""
    start = time.monotonic()
    before = len(daemon.handled())
    wait_until(lambda: len(daemon.handled()) > before, timeout, "the next delivery", 0.02)
    return time.monotonic() - start
