"""Running one plugin under the real daemon, in the test's own process.

Why the real :class:`~reviewd.daemon.supervisor.Daemon` rather than calling the
plugin's functions: a plugin author wants to know that the plugin works *as deployed*
— loaded by the plugin host, its subscriptions on a real event hub, each event
journaled before it is handed to the plugin's own lane, failures retried and finally
dead-lettered.  The daemon runs on a thread of the test process, so the plugin's code
is importable, debuggable and measured by coverage like any other code under test.
Only the settings differ from production: no HTTP listener, the journal in the test's
temporary folder, and retries that start after 0.1 s instead of 1 s.

:meth:`PluginHandle.wait_idle` is a barrier, not a guess: it sends a marker event
through the server to the daemon's hub and waits for it to come back, so every event
published before it has been handed to the daemon's intake, then waits until the
intake has journaled them and the plugin's lane and journal have nothing left to do.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Mapping, MutableMapping
from pathlib import Path
from types import ModuleType
from typing import Any

from reviewd.testing.failures import Failure, PluginFailure, PluginLoadError, plugin_traceback

__all__ = ["PluginHandle", "start_plugin", "TEST_ROUTING"]

#: Routing for tests: the daemon's defaults, with retries quick enough to watch.
TEST_ROUTING: dict[str, Any] = {"retry_backoff": 0.1, "retry_backoff_max": 1.0}
SYNC_TOPIC = "reviewd.testing.sync"
POLL = 0.02


def _deadline_poll(
    condition: Callable[[], Any],
    timeout: float,
    message: str,
    check: Callable[[], None] | None = None,
) -> Any:
    __tracebackhide__ = True
    deadline = time.monotonic() + timeout
    while True:
        if check is not None:
            check()
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {message}")
        time.sleep(POLL)


def resolve_target(target: str | os.PathLike | ModuleType, workdir: Path) -> tuple[str, list[str]]:
    """(plugin name, plugin paths) that make the daemon load *target* and nothing else
    from paths: a ``.py`` file, a package directory, an installed ``reviewd.plugins``
    entry point (loaded the way the daemon loads installed plugins: paths stay empty),
    or an importable module."""
    if isinstance(target, ModuleType):
        target = target.__name__
    text = os.fspath(target)
    if os.path.exists(text):
        path = Path(text).resolve()
        if path.is_file() and path.suffix == ".py":
            return path.stem, [str(path)]
        if path.is_dir() and (path / "__init__.py").is_file():
            return path.name, [_link(path, path.name, workdir)]
        raise PluginLoadError(
            f"{text} is neither a .py file nor a package directory (a folder with "
            "__init__.py); give the plugin itself, not the folder that holds plugins"
        )
    from importlib.metadata import entry_points

    from reviewd.plugin import ENTRY_POINT_GROUP

    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        if text in (entry_point.name, entry_point.value, getattr(entry_point, "module", None)):
            return entry_point.name, []
    try:
        spec = importlib.util.find_spec(text)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin or not os.path.isfile(spec.origin):
        raise PluginLoadError(
            f"cannot find plugin {text!r}: it is not a file, not an installed "
            f"'{ENTRY_POINT_GROUP}' entry point and not an importable module "
            "(did you 'pip install -e .' the plugin's package?)"
        )
    name = text.rsplit(".", 1)[-1]
    origin = Path(spec.origin).resolve()
    if spec.submodule_search_locations is not None:
        return name, [_link(origin.parent, name, workdir)]
    return name, [_link(origin, name + ".py", workdir)]


def _link(source: Path, name: str, workdir: Path) -> str:
    """A plugin folder in *workdir* holding only *source* (as a symlink), so the host
    loads that one package or module, from its real place (hot reload sees edits)."""
    folder = workdir / "plugin-path"
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / name
    if not link.exists():
        link.symlink_to(source, target_is_directory=source.is_dir())
    return str(folder)


class PluginHandle:
    """One plugin running under an in-process daemon: counts, failures, waiting."""

    def __init__(
        self, name: str, daemon: Any, thread: threading.Thread, server: Any, expect_failures: bool
    ) -> None:
        self.name = name
        self.daemon = daemon
        self.server = server
        self.expect_failures = expect_failures
        self._thread = thread
        self._run_id = uuid.uuid4().hex
        self._synced: set[str] = set()
        self._reported: set[str] = set()
        self._stopped = False

    # ------------------------------------------------------------------ inspection
    @property
    def session(self) -> Any:
        """The ``reviewd.Session`` the plugin was given."""
        return self.daemon.session

    @property
    def record(self) -> Any:
        """The plugin host's :class:`~reviewd.plugin.PluginRecord` of this plugin."""
        return self.daemon.host.get(self.name)

    @property
    def stats(self) -> dict[str, Any]:
        """The lane's counters: handled, succeeded, failed (attempts), retried,
        dead_lettered, slow, queue_depth, in_flight, last_error."""
        lane = self.daemon.router.lanes.get(self.name) if self.daemon.router else None
        return lane.snapshot() if lane is not None else {}

    handled = property(
        lambda self: self.stats.get("handled", 0),
        doc="Deliveries finished (succeeded, or dead-lettered).",
    )
    succeeded = property(
        lambda self: self.stats.get("succeeded", 0), doc="Deliveries whose handlers all returned."
    )
    failed = property(
        lambda self: self.stats.get("failed", 0), doc="Attempts that raised (each retry counts)."
    )
    dead_lettered = property(
        lambda self: self.stats.get("dead_lettered", 0),
        doc="Deliveries given up after the retry budget.",
    )

    def metric(self, name: str, **labels: str) -> float:
        """The value of the daemon's Prometheus sample *name* with *labels* (0 when
        absent), e.g. ``metric("reviewd_plugin_my_plugin_actions_total", action="noted")``
        for an :class:`~reviewd.plugin.helpers.ActionLog` counter."""
        from prometheus_client.parser import text_string_to_metric_families

        text = self.daemon.metrics_text().decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    return float(sample.value)
        return 0.0

    def failures(self) -> list[Failure]:
        """Deliveries that raised: still waiting for a retry, or dead-lettered."""
        journal = self.daemon.journal
        rows = [d for d in journal.pending(self.name) if d.last_error]
        rows += journal.dead_letters(self.name)
        return [
            Failure(
                self.name,
                d.payload,
                d.attempts,
                d.state == "dead",
                plugin_traceback(d.last_error or ""),
            )
            for d in rows
        ]

    def dead_letters(self) -> list[Failure]:
        """Deliveries the daemon gave up on (what ``reviewd journal list`` shows)."""
        return [f for f in self.failures() if f.dead]

    # ------------------------------------------------------------------ checking
    def check(self) -> None:
        """Raise :class:`PluginFailure` (event + plugin traceback) if the plugin raised
        and the test did not say it expects failures."""
        __tracebackhide__ = True
        if self.expect_failures or self._stopped:
            return
        # Each failing event is reported once: its retries failing too add nothing.
        new = [f for f in self.failures() if str(f.event.get("id")) not in self._reported]
        if new:
            self._reported.update(str(f.event.get("id")) for f in new)
            raise PluginFailure(new)

    def wait_idle(self, timeout: float = 15.0) -> None:
        """Return once every event published so far reached the plugin and its lane
        and journal have nothing left to run (retries included)."""
        __tracebackhide__ = True
        token = uuid.uuid4().hex
        self.server.emit(SYNC_TOPIC, {"run": self._run_id, "token": token})
        _deadline_poll(
            lambda: token in self._synced,
            timeout,
            f"the daemon running {self.name!r} to receive the events sent so far",
            self.check,
        )
        _deadline_poll(
            self._idle,
            timeout,
            f"plugin {self.name!r} to become idle (lane: {self.stats})",
            self.check,
        )

    def _idle(self) -> bool:
        # Events the hub handed over but the intake has not journaled yet (the intake
        # may journal on a writer thread of its own, through a spool).
        spool = getattr(self.daemon.intake, "spool", None)
        if spool is not None and len(spool):
            return False
        stats = self.stats
        if stats.get("queue_depth") or stats.get("in_flight"):
            return False
        return not self.daemon.journal.pending(self.name)

    def reload(self) -> bool:
        """Re-import the plugin as hot reload does (lane drained, new code, lane again)."""
        return self.daemon.reload_plugin(self.name)

    # ------------------------------------------------------------------ lifecycle
    def _on_sync(self, event: Any) -> None:
        self._synced.add(str(event["data"].get("token")))

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the daemon as SIGTERM would (hooks, drain, journal closed)."""
        if self._stopped:
            return
        self._stopped = True
        self.daemon.request_stop()
        self._thread.join(timeout)
        if self._thread.is_alive():
            warnings.warn(
                f"the daemon running plugin {self.name!r} did not stop within "
                f"{timeout:g}s (a handler still running?)",
                stacklevel=2,
            )

    def __repr__(self) -> str:
        return f"<PluginHandle {self.name!r} {self.stats}>"


def _configure_logging() -> None:
    """Send the daemon's structlog lines to the standard ``logging`` module, where
    pytest captures them, unless the application configured structlog already."""
    import structlog

    if structlog.is_configured():
        return
    from reviewd.daemon.logging import redact_processor

    def redact(logger: Any, name: str, event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
        return redact_processor(logger, name, dict(event_dict))

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            redact,
            structlog.processors.KeyValueRenderer(key_order=["event"], drop_missing=True),
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def start_plugin(
    server: Any,
    target: str | os.PathLike | ModuleType,
    workdir: Path,
    *,
    arguments: Mapping[str, Any] | None = None,
    routing: Mapping[str, Any] | None = None,
    expect_failures: bool = False,
    watch: bool = False,
    timeout: float = 30.0,
) -> PluginHandle:
    """Start a daemon on *server* loading *target*; return once its subscriptions are
    registered at the server (an event published after this reaches the plugin)."""
    __tracebackhide__ = True
    from reviewd.api.exception import register_secret
    from reviewd.daemon.config import SETTINGS, Config, validate
    from reviewd.daemon.supervisor import Daemon

    _configure_logging()
    workdir.mkdir(parents=True, exist_ok=True)
    name, paths = resolve_target(target, workdir)
    register_secret(server.api_key)
    config = Config(
        server_url=server.url,
        api_user=server.api_user,
        api_key=server.api_key,
        http=None,
        state_dir=str(workdir),
        journal_path=str(workdir / "journal.sqlite3"),
        plugin_paths=paths,
        per_plugin_arguments={name: dict(arguments or {})},
        watch_plugins=watch,
        grace_period=5.0,
        log_level="warning",
    )
    routing_keys = {s.attr for s in SETTINGS if s.key.startswith("routing.")}
    for key, value in {**TEST_ROUTING, **dict(routing or {})}.items():
        if key not in routing_keys:
            raise TypeError(
                f"unknown routing setting {key!r}; choose from "
                f"{', '.join(sorted(routing_keys))} (routing.* in "
                "docs/operations.md)"
            )
        setattr(config, key, value)
    validate(config)
    daemon = Daemon(config)
    thread = threading.Thread(target=daemon.run, name=f"reviewd-test-daemon-{name}", daemon=True)
    handle = PluginHandle(name, daemon, thread, server, expect_failures)
    thread.start()
    try:
        _wait_started(handle, thread, timeout)
    except BaseException:
        handle.stop()
        raise
    return handle


def _wait_started(handle: PluginHandle, thread: threading.Thread, timeout: float) -> None:
    __tracebackhide__ = True
    daemon = handle.daemon
    _deadline_poll(
        lambda: daemon.ready or not thread.is_alive(),
        timeout,
        f"the daemon to start (state: {daemon.state}, last error: {daemon.last_error})",
    )
    if not daemon.ready:
        raise AssertionError(f"the daemon did not start: {daemon.last_error or daemon.state}")
    record = daemon.host.get(handle.name)
    if record is None:
        found = ", ".join(r.name for r in daemon.host.plugins) or "none"
        raise PluginLoadError(f"no plugin named {handle.name!r} was loaded (found: {found})")
    if record.error is not None:
        detail = plugin_traceback(record.traceback) if record.traceback else ""
        raise PluginLoadError(
            f"plugin {handle.name!r} failed to load: {record.error}"
            + (f"\n\n{detail}" if detail else "")
        )
    hub = daemon.hub
    hub.subscribe(f"topic={SYNC_TOPIC} and data.run={handle._run_id}", handle._on_sync)
    wanted = {s.id for s in hub.subscribers}

    def registered() -> bool:
        at_server = {
            sub["id"] for conn in handle.server.events.connections() for sub in conn["subscribers"]
        }
        return wanted <= at_server

    _deadline_poll(registered, timeout, "the plugin's subscriptions to reach the server")
