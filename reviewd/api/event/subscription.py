"""A subscription expression kept with its parsed form."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reviewd.api.event.expression import Parser


class Subscription:
    """The text a subscriber gave and the matcher built from it."""

    parser = Parser()

    def __init__(self, subscription: str) -> None:
        self._subscription = subscription
        self._expression = self.parser.parse(subscription)

    def __str__(self) -> str:
        return self._subscription

    def includes(self, event: Mapping[str, Any]) -> bool:
        """Whether *event* matches this subscription."""
        return self._expression.match(event)
