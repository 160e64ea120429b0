"""Running a classic ftrack ``register()`` and attributing what it subscribed.

A classic plugin subscribes on ``session.event_hub`` itself, so the daemon only
learns which subscriptions are whose by comparing the hub's subscribers before and
after ``register()``.  That attribution is what lets it route, measure, isolate
and unload per plugin.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from reviewd.api.exception import PluginError
from reviewd.plugin.arguments import cull_arguments
from reviewd.plugin.registry import DEFAULT_PRIORITY, Subscription, SubscriptionOptions

__all__ = ["run_classic_register", "unsubscribe"]

_log = logging.getLogger("reviewd.plugin")


def _plugin_hub(positional_arguments: Sequence[Any]) -> Any:
    for value in positional_arguments:
        hub = getattr(value, "event_hub", None)
        if hub is not None:
            return hub
    return None


def _subscribers(hub: Any) -> dict[str, Any]:
    if hub is None:
        return {}
    return {str(s.id): s for s in list(getattr(hub, "subscribers", ()) or ())}


def _options_of(subscriber: Any) -> SubscriptionOptions:
    priority = getattr(subscriber, "priority", DEFAULT_PRIORITY)
    try:
        return SubscriptionOptions(priority=priority)
    except PluginError:
        return SubscriptionOptions()


def unsubscribe(hub: Any, subscriber_id: str, plugin: str) -> None:
    """Remove one subscriber from *hub*; one that is already gone is not an error."""
    try:
        hub.unsubscribe(subscriber_id)
    except Exception as error:  # already gone, hub closed: nothing left to undo
        _log.debug("plugin %r: unsubscribing %s failed: %s", plugin, subscriber_id, error)


def run_classic_register(
    register: Callable,
    plugin: str,
    source: str,
    positional_arguments: Sequence[Any],
    keyword_arguments: Mapping[str, Any],
) -> list[Subscription]:
    """Call a classic ``register()`` and attribute the subscriptions it made.

    The hub's subscribers are compared before and after the call; the new ones
    belong to *plugin*.  If ``register()`` raises, what it had subscribed is
    unsubscribed again so a failed plugin leaves nothing behind.
    """
    hub = _plugin_hub(positional_arguments)
    before = _subscribers(hub)
    args, kwargs, dropped = cull_arguments(register, positional_arguments, keyword_arguments)
    if dropped:
        _log.warning(
            "plugin %r (%s): register() does not accept %s; dropped %s",
            plugin,
            source,
            ", ".join(repr(d) for d in dropped),
            "it" if len(dropped) == 1 else "them",
            extra={"plugin": plugin, "dropped_arguments": dropped},
        )
    try:
        register(*args, **kwargs)
    except BaseException:
        for subscriber_id in set(_subscribers(hub)) - set(before):
            unsubscribe(hub, subscriber_id, plugin)
        raise
    return [
        Subscription(plugin, subscriber_id, str(s.subscription), _options_of(s), "register")
        for subscriber_id, s in _subscribers(hub).items()
        if subscriber_id not in before
    ]
