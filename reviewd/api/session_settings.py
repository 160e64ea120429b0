"""The Session's configuration: constructor arguments, then environment, then fallbacks.

PROTOCOL.md section 1 is the table this follows: each setting comes from its argument,
else from its ``FTRACK_*`` variable, else from a fallback (the OS user, the user cache
directory) or is an error.  A missing required value raises ``TypeError`` naming both
the argument and the variable, as ``ftrack_api`` does, so that scripts catching it keep
working.  Resolving is kept apart from the Session so that the rules are in one
readable place and can be tested without a server.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from reviewd.api.exception import register_secret
from reviewd.api.schema import default_cache_folder


def required(value: str | None, argument: str, variables: tuple[str, ...]) -> str:
    """Return *value* or the first set environment variable, else raise TypeError."""
    if value:
        return value
    for variable in variables:
        found = os.environ.get(variable)
        if found:
            return found
    names = " or ".join(variables)
    raise TypeError(
        f'Required "{argument}" not specified. Pass it as an argument or set the '
        f"environment variable {names}."
    )


class Credentials:
    """Where and as whom to connect.  ``repr`` never shows the key.

    A plain class rather than a dataclass: building a dataclass costs a millisecond of
    start-up, a good share of what the whole Session adds to a bare API call.
    """

    __slots__ = ("server_url", "api_key", "api_user")

    def __init__(self, server_url: str, api_key: str, api_user: str) -> None:
        self.server_url = server_url
        self.api_key = api_key
        self.api_user = api_user

    def __repr__(self) -> str:
        return f"<Credentials {self.server_url} api_user={self.api_user!r}>"


def resolve_credentials(
    server_url: str | None, api_key: str | None, api_user: str | None
) -> Credentials:
    """Server URL (trailing ``/`` stripped), API key (registered as a secret), user."""
    server_url = required(server_url, "server_url", ("FTRACK_SERVER",))
    api_key = required(api_key, "api_key", ("FTRACK_API_KEY", "FTRACK_APIKEY"))
    register_secret(api_key)
    if not api_user:
        api_user = os.environ.get("FTRACK_API_USER")
    if not api_user:
        import getpass  # only needed for this fallback; kept off the start-up path

        try:
            api_user = getpass.getuser()
        except Exception:
            api_user = None
        api_user = required(api_user, "api_user", ("FTRACK_API_USER",))
    return Credentials(server_url.rstrip("/"), api_key, api_user)


def resolve_plugin_paths(plugin_paths: Iterable[str] | str | None) -> list[str]:
    """The plugin search paths: the argument, else ``FTRACK_EVENT_PLUGIN_PATH``."""
    if plugin_paths is None:
        plugin_paths = os.environ.get("FTRACK_EVENT_PLUGIN_PATH", "")
    if isinstance(plugin_paths, str):
        plugin_paths = plugin_paths.split(os.pathsep)
    return [path for path in plugin_paths if path]


def resolve_schema_cache_path(schema_cache_path: str | bool | None) -> str | None:
    """The schema cache folder: the argument, else the variable, else the user cache
    directory; ``False`` (or an empty value) disables the cache (None)."""
    if schema_cache_path is None:
        schema_cache_path = os.environ.get("FTRACK_API_SCHEMA_CACHE_PATH") or None
    if schema_cache_path is None or schema_cache_path is True:
        schema_cache_path = default_cache_folder()
    return schema_cache_path or None


def plain_mapping(value: Mapping[str, str] | None) -> dict[str, str]:
    """A private copy of user headers or cookies (None: empty)."""
    return dict(value or {})
