"""Opening the daemon's Session: wait for the server, never give up on it.

Why retry here and not exit: on a farm host the daemon often starts before the ftrack
server (or the network, or the proxy) is up.  A daemon that exits would be restarted
by systemd in a tight loop, each time logging a traceback; one that waits says once
per attempt what it waits for (``/readyz`` and ``STATUS=`` say it too) and becomes
ready when the server appears.  Attempts back off exponentially with jitter, capped
at ``connect_backoff_max``, so many hosts restarting together do not hammer the
server in step.

What is *not* retried: the server refusing the credentials, or arguments the Session
rejects — waiting cannot fix those, so they are configuration errors (exit 78).
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from typing import Any

import structlog

from reviewd.api.exception import AuthenticationError, redact
from reviewd.daemon.config import Config, ConfigError
from reviewd.daemon.metrics import Metrics
from reviewd.daemon.signals import SignalRequests

# These lines have always been the supervisor's; operators filter on the logger name.
log = structlog.get_logger("reviewd.supervisor")

#: The first retry waits up to this long (seconds); each failure doubles it.
FIRST_DELAY = 0.5


def refused_credentials_message(config: Config) -> str:
    """One sentence for refused credentials, naming what *reviewd* reads them from.

    Why not the server's own text: it speaks of the ``ftrack-user``/``ftrack-api-key``
    request headers, which are no setting of reviewd, and the daemon's line would then
    say "check" twice.  The user's source and the key's source are named so that the
    right one gets fixed (an old key in a forgotten variable is the usual cause).
    """
    user_from = config.sources.get("api_user", "default")
    key_from = config.sources.get("api_key", "default")
    return (
        f"the ftrack server at {config.server_url} refused user {config.api_user!r} "
        f"(from {user_from}) with the API key from {key_from}; set FTRACK_API_USER and "
        "FTRACK_API_KEY (or the key file: REVIEWD_API_KEY_FILE, the systemd credential "
        "ftrack_api_key), or server.user and server.api_key_file in the configuration "
        "file"
    )


def open_session(
    config: Config,
    metrics: Metrics,
    signals: SignalRequests,
    on_attempt: Callable[[str], None],
    on_failure: Callable[[str], None],
) -> Any:
    """Build the Session (event hub not connected yet), retrying while the server
    cannot be reached.

    *on_attempt* is told the state before each attempt (``connecting to URL (attempt
    N)``), *on_failure* the redacted error of each failed one.  Raises
    :class:`~reviewd.daemon.config.ConfigError` for refused credentials or bad
    arguments, and :class:`~reviewd.daemon.signals.StartupAborted` when a stop signal
    arrives while waiting.
    """
    from reviewd import Session

    if config.ca_bundle:
        # Read by requests (the API) and by the event hub's TLS options alike: one
        # setting covers both sockets.  Verification itself is never switched off.
        os.environ["REQUESTS_CA_BUNDLE"] = config.ca_bundle
    delay = FIRST_DELAY
    attempts = 0
    while True:
        signals.check_stop()
        attempts += 1
        on_attempt(f"connecting to {config.server_url} (attempt {attempts})")
        try:
            session = Session(
                server_url=config.server_url,
                api_key=config.api_key,
                api_user=config.api_user,
                plugin_paths=[],
                auto_connect_event_hub=False,
                # Plugin workers share this Session: each thread commits its own work.
                per_thread_operations=True,
            )
        except AuthenticationError:
            metrics.session_attempts.labels(outcome="refused").inc()
            raise ConfigError("server.api_key", refused_credentials_message(config)) from None
        except TypeError as exc:
            raise ConfigError("server", redact(str(exc))) from None
        except Exception as exc:  # noqa: BLE001 - unreachable server, proxy errors, ...
            if _certificate_refused(exc):
                # Waiting cannot make an untrusted certificate trusted: a configuration
                # error naming the fix, not a retry loop.
                raise ConfigError(
                    "server.url",
                    f"the TLS certificate of {config.server_url} is not "
                    "trusted (certificate verify failed); if it is your studio's own CA or "
                    "a self-signed certificate, set server.ca_bundle (REVIEWD_CA_BUNDLE) to "
                    "its PEM file",
                    config.sources.get("server_url"),
                ) from None
            metrics.session_attempts.labels(outcome="failed").inc()
            error = redact(f"{type(exc).__name__}: {exc}")
            on_failure(error)
            wait = random.uniform(delay / 2, delay)
            log.warning(
                "server not reachable, will retry",
                server=config.server_url,
                attempt=attempts,
                retry_in=round(wait, 2),
                error=error,
            )
        else:
            metrics.session_attempts.labels(outcome="ok").inc()
            return session
        signals.wait_or_abort(wait)
        delay = min(delay * 2, max(config.connect_backoff_max, FIRST_DELAY))


def _certificate_refused(exc: BaseException) -> bool:
    text = f"{exc} {exc.__cause__} {exc.__context__}".lower()
    return "certificate verify failed" in text or "certificate_verify_failed" in text
