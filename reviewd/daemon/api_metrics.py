"""Prometheus metrics of the session's ``/api`` requests, fed by a call listener.

Why a listener and not a wrapper: the daemon must not reach into the Session; the
Session offers ``add_call_listener(callback)``, which calls ``callback(info)`` after
every ``/api`` request with ``info.actions`` (the batch's action names, in order),
``info.duration`` (seconds), ``info.error`` (the exception raised, or ``None``) and
``info.status`` (HTTP status or ``None``).  Plugin code, the daemon's own calls and
queries made by the ``Session`` all go through it.

A batch of several operations is *one* request, so its duration is observed once for
each *distinct* action in it (a batch of three creates and an update observes
``create`` once and ``update`` once, each with the whole batch's duration); a failed
batch counts one error for each distinct action.  Summing the histogram over actions
therefore over-counts mixed batches; per-action series are exact.  Labels carry only
action names and exception class names — never query text, ids or credentials.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import Counter, Histogram

#: ``/api`` latencies: a cached ``query`` takes milliseconds, a large commit seconds.
API_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
#: Label of a request that carried no operation at all.
NO_ACTION = "none"


class ApiMetrics:
    """The two ``/api`` metric families, registered on the daemon's registry."""

    def __init__(self, registry: Any) -> None:
        self.duration = Histogram(
            "reviewd_api_request_duration_seconds",
            "Duration of the session's /api requests, observed once per distinct action "
            "in the batch.",
            ["action"],
            buckets=API_BUCKETS,
            registry=registry,
        )
        self.errors = Counter(
            "reviewd_api_request_errors",
            "Failed /api requests, once per distinct action in the batch, by exception class.",
            ["action", "error"],
            registry=registry,
        )

    def observe(self, info: Any) -> None:
        """Record one ``CallInfo``; never raises (it runs inside the Session's call)."""
        try:
            actions = list(dict.fromkeys(str(a) or NO_ACTION for a in info.actions or ()))
            actions = actions or [NO_ACTION]
            duration = max(float(info.duration), 0.0)
            error = info.error
            for action in actions:
                self.duration.labels(action=action).observe(duration)
                if error is not None:
                    self.errors.labels(action=action, error=type(error).__name__).inc()
        except Exception:  # noqa: BLE001 - a metric must never break an API call
            pass

    def attach(self, session: Any) -> Callable[[], None] | None:
        """Listen to *session*'s calls; return the remover, or ``None`` when the session
        offers no call listener (then these metrics stay empty)."""
        add = getattr(session, "add_call_listener", None)
        if add is None:
            return None
        return add(self.observe)
