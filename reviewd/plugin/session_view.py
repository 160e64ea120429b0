"""Each plugin's own view of the shared session: its monkeypatches stay its own.

All plugins of a daemon share one :class:`~reviewd.api.session.Session` (one
connection, one cache, one event hub).  Plugins written for ftrack sometimes patch
the session they are given — ``session.query = my_logging_query`` — which, on a
shared object, silently changed every *other* plugin's session too: a plugin's patch
that raised made another plugin's handler fail.

A :class:`SessionView` is what a plugin's ``register()`` (and ``reviewd_register``
hook) receives instead: reading an attribute reads the shared session's, but
*setting* or *deleting* one on the view changes only the view.  The shared session's
own methods are bound to the shared session, so nothing any plugin patches on its
view can reach another plugin or the daemon.  ``isinstance(view, Session)`` holds.

The limit, on purpose: this isolates assignments to the session object, not changes
to the objects it shares — patching the ``Session`` *class*, the event hub, the cache
or an entity type still affects everyone, as in any one Python process.  Plugins that
need stronger isolation must run in separate daemons (see docs/operations.md).
"""

from __future__ import annotations

from typing import Any

__all__ = ["SessionView", "shared_session_of"]


class SessionView:
    """A per-plugin proxy over *session*: reads fall through, writes stay local."""

    __slots__ = ("_reviewd_shared", "_reviewd_plugin", "_reviewd_overrides")

    def __init__(self, session: Any, plugin: str) -> None:
        object.__setattr__(self, "_reviewd_shared", session)
        object.__setattr__(self, "_reviewd_plugin", plugin)
        object.__setattr__(self, "_reviewd_overrides", {})

    # isinstance(view, Session) and ftrack-style type checks keep working.
    @property  # type: ignore[misc]
    def __class__(self) -> type:  # noqa: D105
        return type(object.__getattribute__(self, "_reviewd_shared"))

    def __getattr__(self, name: str) -> Any:
        overrides = object.__getattribute__(self, "_reviewd_overrides")
        if name in overrides:
            return overrides[name]
        return getattr(object.__getattribute__(self, "_reviewd_shared"), name)

    def __setattr__(self, name: str, value: Any) -> None:
        object.__getattribute__(self, "_reviewd_overrides")[name] = value

    def __delattr__(self, name: str) -> None:
        overrides = object.__getattribute__(self, "_reviewd_overrides")
        if name not in overrides:
            raise AttributeError(f"{name!r} was not set on this plugin's session view")
        del overrides[name]

    def __repr__(self) -> str:
        shared = object.__getattribute__(self, "_reviewd_shared")
        plugin = object.__getattribute__(self, "_reviewd_plugin")
        return f"<session view of plugin {plugin!r} over {shared!r}>"

    # Context-manager and equality use the shared session (dunder lookups skip __getattr__).
    def __enter__(self) -> SessionView:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None  # the daemon owns the shared session's lifetime, not a plugin

    def __eq__(self, other: object) -> bool:
        return shared_session_of(self) is shared_session_of(other)

    def __hash__(self) -> int:
        return hash(id(shared_session_of(self)))


def shared_session_of(session: Any) -> Any:
    """The shared session behind a view (or *session* itself)."""
    try:
        return object.__getattribute__(session, "_reviewd_shared")
    except AttributeError:
        return session
