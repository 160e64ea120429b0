"""Reconnect delays: capped exponential backoff with full jitter.

A fleet of daemons that lost the same server must not reconnect in lock-step when it
returns, so each delay is drawn uniformly from ``[0, min(cap, base * 2**attempt)]``
("full jitter", as in the AWS architecture blog's comparison of backoff strategies).
The first retry therefore comes within ``base`` seconds, and no wait exceeds ``cap``.
"""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["Backoff"]


class Backoff:
    """Successive reconnect delays; :meth:`reset` after a connection that worked."""

    def __init__(
        self,
        base: float = 1.0,
        cap: float = 60.0,
        random_fraction: Callable[[], float] = random.random,
    ) -> None:
        if base <= 0 or cap <= 0:
            raise ValueError("backoff base and cap must be positive")
        self.base = float(base)
        self.cap = float(cap)
        self._random = random_fraction
        self.attempt = 0

    def ceiling(self, attempt: int | None = None) -> float:
        """The largest delay the given (or current) attempt may draw."""
        attempt = self.attempt if attempt is None else attempt
        # Cap the exponent too: 2**attempt for a months-long outage would be enormous.
        return min(self.cap, self.base * float(2 ** min(attempt, 62)))

    def next_delay(self) -> float:
        """Return the next delay and move to the following attempt."""
        delay = self._random() * self.ceiling()
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0
