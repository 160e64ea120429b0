"""The embedded demo server: started for ``reviewd --foreground`` with no server
configured, and its credentials handed to the developer without logging them.

:func:`start_server` starts it and points the daemon's configuration at it (and, in
the foreground with no plugin path given, at ``./plugins``).

Why a credentials file: in ``reviewd --foreground`` with no server configured, the
daemon invents a user and API key for its embedded server.  A newcomer wants to poke
that server from a second terminal (``reviewd devserver emit ...`` to play the ftrack
web UI), but the key must never be logged.  So the URL, user and key go to a ``0600``
file in the embedded run's private state folder (a ``0700`` temporary folder, removed
when the daemon stops), in the ``FTRACK_*`` form every ftrack tool reads; only the
file's *path* and a command to try are logged.
"""

from __future__ import annotations

import json
import os
import shlex
from typing import TYPE_CHECKING, Any

import structlog

from reviewd.api.exception import register_secret

if TYPE_CHECKING:
    from reviewd.daemon.config import Config

# These lines have always been the supervisor's; operators filter on the logger name.
log = structlog.get_logger("reviewd.supervisor")

FILE_NAME = "embedded-server.env"
#: The start of the log line that carries :func:`try_command` (tests look for it).
HINT_PREFIX = "try the demo from another terminal: "


def write_credentials(folder: str, url: str, user: str, key: str) -> str:
    """Write ``FTRACK_SERVER``/``FTRACK_API_USER``/``FTRACK_API_KEY`` to a new 0600 file.

    The file is created with mode 0600 from the start (never readable by others, not
    even for an instant) and must not exist yet.  Values are shell-quoted only when
    they need it, so the file works with ``set -a; . FILE`` and as an env-file.
    Returns its path.
    """
    path = os.path.join(folder, FILE_NAME)
    lines = [
        "# The embedded ftrack demo server of a running `reviewd --foreground`.",
        "# Valid while that daemon runs; removed when it stops.",
        f"FTRACK_SERVER={shlex.quote(url)}",
        f"FTRACK_API_USER={shlex.quote(user)}",
        f"FTRACK_API_KEY={shlex.quote(key)}",
    ]
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def try_command(path: str) -> str:
    """A one-line shell command that asks the demo's review-digest plugin for its action."""
    from reviewd.devserver.seed import seed_id  # only embedded runs need the demo's ids

    selection = {
        "selection": [
            {"entityId": seed_id("ReviewSession", "dailies"), "entityType": "reviewsession"}
        ]
    }
    data = shlex.quote(json.dumps(selection, separators=(",", ":")))
    # A subshell, so the FTRACK_* variables do not stay in the developer's shell (a later
    # `reviewd --foreground` there would otherwise aim at this run's server).
    return (
        f"(set -a; . {shlex.quote(path)}; reviewd devserver emit "
        f"ftrack.action.discover --data {data} --wait-reply 5)"
    )


def start_server(config: Config, folder: str) -> Any:
    """Start the demo :class:`~reviewd.devserver.DevServer` and point *config* at it.

    The server's URL, user and invented key replace the configured ones (the key is
    registered as a secret first, so no log line can show it); the credentials go to
    a file in *folder* (the run's private state folder), whose path and a command to
    try are logged.  In the foreground with no plugin path configured, ``./plugins``
    is used when it exists (README's first command).  Returns the running server.
    """
    from reviewd.devserver import DevServer

    rate = config.simulate or None
    devserver = DevServer(seed="demo", simulate=rate)
    devserver.start()
    config.server_url = devserver.url
    config.api_user = devserver.api_user
    config.api_key = devserver.api_key
    register_secret(config.api_key)
    try:
        credentials = write_credentials(folder, devserver.url, devserver.api_user, config.api_key)
    except BaseException:
        devserver.stop()  # the caller never got it, so it could not stop it
        raise
    log.info(
        "embedded server running", url=devserver.url, simulate=rate, credentials_file=credentials
    )
    # The command is the message itself so that the console shows it unquoted,
    # ready to copy; it names the file, never the key.
    log.info(f"{HINT_PREFIX}{try_command(credentials)}")
    if config.plugin_paths is None and config.foreground:
        local = os.path.join(os.getcwd(), "plugins")
        if os.path.isdir(local):
            config.plugin_paths = [local]
    return devserver
