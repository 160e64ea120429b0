"""pluggy plugins: checking their hook implementations and calling one plugin's hooks.

pluggy calls a hook on every plugin at once and stops at the first exception; the
daemon needs each plugin called on its own, so one raising hurts only itself, and
needs a wrong hook caught at load time with one line a plugin author can act on.
"""

from __future__ import annotations

import inspect
from typing import Any

import pluggy

from reviewd.api.exception import PluginError
from reviewd.plugin import hookspecs
from reviewd.plugin.registry import Subscription, SubscriptionRegistry

__all__ = ["call_plugin", "implements_hooks", "run_registration_hook", "validate_hookimpls"]


def implements_hooks(manager: pluggy.PluginManager, plugin: Any) -> bool:
    """Does *plugin* have any ``@reviewd.hookimpl`` function?"""
    return any(
        manager.parse_hookimpl_opts(plugin, attribute) is not None for attribute in dir(plugin)
    )


def validate_hookimpls(manager: pluggy.PluginManager, name: str, plugin: Any) -> None:
    """Check hook names and arguments before pluggy sees them.

    pluggy would reject a wrong argument with a multi-line message and accept
    an unknown hook name silently; a plugin author needs one line naming the
    hook, the offending name and what is allowed.
    """
    known = sorted(n for n in dir(hookspecs) if n.startswith("reviewd_"))
    for attribute in dir(plugin):
        options = manager.parse_hookimpl_opts(plugin, attribute)
        if options is None:
            continue
        hook_name = options.get("specname") or attribute
        if hook_name not in known:
            if options.get("optionalhook"):
                continue
            raise PluginError(
                f"plugin {name!r} implements unknown hook {hook_name!r}; "
                f"known hooks: {', '.join(known)}"
            )
        spec_arguments = list(inspect.signature(getattr(hookspecs, hook_name)).parameters)
        try:
            parameters = inspect.signature(getattr(plugin, attribute)).parameters
        except (TypeError, ValueError):
            continue
        unknown = [
            p.name
            for p in parameters.values()
            if p.name not in spec_arguments
            and p.name != "self"
            and p.default is inspect.Parameter.empty
            and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        ]
        if unknown:
            raise PluginError(
                f"plugin {name!r}: hook {hook_name!r} asks for unknown argument(s) "
                f"{', '.join(repr(u) for u in unknown)}; it may take "
                f"{', '.join(spec_arguments)}"
            )


def call_plugin(
    manager: pluggy.PluginManager, plugin_name: str, hook_name: str, /, **kwargs: Any
) -> list[Any]:
    """Call *hook_name* on one plugin only, letting its exception propagate."""
    caller = getattr(manager.hook, hook_name)
    results = []
    for impl in caller.get_hookimpls():
        if impl.plugin_name != plugin_name or impl.hookwrapper or getattr(impl, "wrapper", False):
            continue
        results.append(impl.function(*[kwargs[arg] for arg in impl.argnames]))
    return results


def run_registration_hook(
    manager: pluggy.PluginManager,
    session: Any,
    name: str,
    arguments: dict[str, Any],
    placed: list[Subscription],
) -> None:
    """Run plugin *name*'s ``reviewd_register`` and subscribe what it declared.

    Each placed subscription is appended to *placed* at once, so that a
    failure part-way lets the caller roll back everything placed so far.
    """
    registry = SubscriptionRegistry(name)
    call_plugin(
        manager,
        name,
        "reviewd_register",
        session=session,
        registry=registry,
        arguments=arguments,
        name=name,
    )
    hub: Any = getattr(session, "event_hub", None)
    if registry.declarations and hub is None:
        raise PluginError(
            f"plugin {name!r} declared subscriptions but the session has no event hub"
        )
    for declaration in registry.declarations:
        metadata = dict(declaration.metadata) or None
        subscriber_id = hub.subscribe(
            declaration.expression,
            declaration.handler,
            subscriber=metadata,
            priority=declaration.options.priority,
        )
        placed.append(
            Subscription(
                name, str(subscriber_id), declaration.expression, declaration.options, "hook"
            )
        )
