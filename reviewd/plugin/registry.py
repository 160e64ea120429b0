"""What a plugin declares to reviewd, and what reviewd records about it.

A pluggy plugin does not call ``session.event_hub.subscribe`` itself: in its
``reviewd_register`` hook it *declares* subscriptions on a
:class:`SubscriptionRegistry`, with the delivery options the daemon should honour
(priority, concurrency, timeout, retry).  Declaring instead of subscribing keeps the
plugin testable without a hub and lets the daemon own delivery.

Every subscription that ends up on the hub — declared here or made directly by a
classic ``register(session)`` plugin — is recorded as a :class:`Subscription`
naming the plugin it belongs to, so the daemon can route, measure, isolate and
unload per plugin.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reviewd.api.exception import PluginError

#: Priority the hub uses when none is given (lower runs first), as in ftrack.
DEFAULT_PRIORITY = 100


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently the daemon retries a failing handler.

    ``max_attempts`` counts the first attempt; after the last one the event is
    dead-lettered, never dropped.  Delays grow geometrically from
    ``initial_delay`` by ``multiplier`` up to ``max_delay`` seconds.
    """

    max_attempts: int = 5
    initial_delay: float = 1.0
    max_delay: float = 300.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise PluginError(
                f"retry max_attempts must be an integer >= 1, got {self.max_attempts!r}"
            )
        for label in ("initial_delay", "max_delay", "multiplier"):
            value = getattr(self, label)
            if not _is_number(value) or value < 0:
                raise PluginError(f"retry {label} must be a non-negative number, got {value!r}")
        if self.multiplier < 1:
            raise PluginError(f"retry multiplier must be >= 1, got {self.multiplier!r}")

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number *attempt* (1 = the first retry)."""
        if attempt < 1:
            return 0.0
        return min(self.max_delay, self.initial_delay * self.multiplier ** (attempt - 1))


@dataclass(frozen=True)
class SubscriptionOptions:
    """Delivery options for one subscription.

    ``timeout`` and ``retry`` left as ``None`` mean "the daemon's configured
    default", so a plugin only states what it needs to differ.
    """

    priority: int = DEFAULT_PRIORITY
    concurrency: int = 1
    timeout: float | None = None
    retry: RetryPolicy | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.priority, int) or isinstance(self.priority, bool):
            raise PluginError(f"priority must be an integer, got {self.priority!r}")
        if (
            not isinstance(self.concurrency, int)
            or isinstance(self.concurrency, bool)
            or self.concurrency < 1
        ):
            raise PluginError(f"concurrency must be an integer >= 1, got {self.concurrency!r}")
        if self.timeout is not None and (not _is_number(self.timeout) or self.timeout <= 0):
            raise PluginError(f"timeout must be a positive number of seconds, got {self.timeout!r}")
        if self.retry is not None and not isinstance(self.retry, RetryPolicy):
            raise PluginError(
                f"retry must be a reviewd.plugin.registry.RetryPolicy, got {self.retry!r}"
            )


@dataclass(frozen=True)
class Declaration:
    """A subscription a pluggy plugin asked for, before it is placed on the hub."""

    expression: str
    handler: Callable[[Any], Any]
    options: SubscriptionOptions
    metadata: Mapping[str, Any] = field(default_factory=dict)


class SubscriptionRegistry:
    """Collects the subscriptions one plugin declares in ``reviewd_register``.

    Use it directly or as a decorator::

        registry.subscribe("topic=ftrack.update", on_update, concurrency=4)

        @registry.subscribe("topic=ftrack.action.launch", timeout=30)
        def on_launch(event): ...

    Expressions are parsed here, so a typo fails the plugin's load with a message
    naming the bad token instead of surfacing later on the hub.
    """

    def __init__(self, plugin_name: str) -> None:
        self.plugin_name = plugin_name
        self.declarations: list[Declaration] = []

    def subscribe(
        self,
        expression: str,
        handler: Callable[[Any], Any] | None = None,
        *,
        priority: int = DEFAULT_PRIORITY,
        concurrency: int = 1,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Any:
        """Declare one subscription; without *handler*, return a decorator.

        Returns the :class:`Declaration` (or, as a decorator, the function
        unchanged).  Raises :class:`PluginError` for a malformed expression, a
        handler that is not callable or invalid options.
        """
        options = SubscriptionOptions(
            priority=priority, concurrency=concurrency, timeout=timeout, retry=retry
        )
        validate_expression(expression, self.plugin_name)

        def declare(function: Callable[[Any], Any]) -> Callable[[Any], Any]:
            if not callable(function):
                raise PluginError(
                    f"plugin {self.plugin_name!r}: the handler for {expression!r} is not callable"
                )
            self.declarations.append(
                Declaration(expression, function, options, dict(metadata or {}))
            )
            return function

        if handler is None:
            return declare
        declare(handler)
        return self.declarations[-1]


@dataclass(frozen=True)
class Subscription:
    """A subscription on the hub, attributed to the plugin that made it.

    ``origin`` is ``"register"`` for one made by a classic ``register()`` call and
    ``"hook"`` for one declared through ``reviewd_register``.
    """

    plugin: str
    subscriber_id: str
    expression: str
    options: SubscriptionOptions
    origin: str


@dataclass(frozen=True)
class PluginHealth:
    """A plugin's own view of whether it can do its job, and why not."""

    ready: bool = True
    problems: tuple[str, ...] = ()

    @classmethod
    def coerce(cls, value: Any) -> PluginHealth | None:
        """Accept what a health hook may reasonably return.

        ``None`` (no opinion), a bool, a ``PluginHealth``, a mapping with
        ``ready``/``problems``, or a string or list of strings naming problems.
        """
        if value is None or isinstance(value, PluginHealth):
            return value
        if isinstance(value, bool):
            return cls(ready=value)
        if isinstance(value, str):
            return cls(ready=False, problems=(value,))
        if isinstance(value, Mapping):
            problems = tuple(str(p) for p in value.get("problems", ()) or ())
            return cls(ready=bool(value.get("ready", not problems)), problems=problems)
        if isinstance(value, (list, tuple)):
            problems = tuple(str(p) for p in value)
            return cls(ready=not problems, problems=problems)
        raise TypeError(f"cannot read a plugin health report from {type(value).__name__}")


def validate_expression(expression: str, plugin_name: str) -> None:
    """Raise :class:`PluginError` naming the plugin when *expression* does not parse."""
    if not isinstance(expression, str):
        raise PluginError(
            f"plugin {plugin_name!r}: a subscription must be an expression string, "
            f"got {type(expression).__name__}"
        )
    try:
        from reviewd.api.event.expression import parse
    except ImportError:  # the expression module is not available: the hub will check
        return
    try:
        parse(expression)
    except ValueError as error:
        raise PluginError(
            f"plugin {plugin_name!r}: invalid subscription {expression!r}: {error}"
        ) from error


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
