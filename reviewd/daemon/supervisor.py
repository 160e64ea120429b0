"""The supervisor: starts the parts in order, runs the main loop, reloads and stops.

Modelled on gunicorn's arbiter: signal handlers only set flags and wake the main loop
(:mod:`reviewd.daemon.signals`); the main loop does the work (reload, stop, watchdog,
housekeeping), so every state change happens on one thread and is easy to follow.
The jobs that are not supervision live in their own modules:

- :mod:`reviewd.daemon.session_open` — the Session, retried while the server is away;
- :mod:`reviewd.daemon.plugin_control` — plugins, their lanes, reloads, hot reload;
- :mod:`reviewd.daemon.intake` — hub events → journal → the plugins' lanes;
- :mod:`reviewd.daemon.hub_link` — the hub's connection state, reconnects and gaps;
- :mod:`reviewd.daemon.report` — ``/healthz``, ``/readyz``, ``/status``, scrape values.
- :mod:`reviewd.daemon.status_page` — the HTML page at ``/`` and its last hour.
- :mod:`reviewd.daemon.embedded` — the demo server when no server is configured.

Startup order (each step logged; ``/healthz`` answers from the second one on, ``/readyz``
says what is missing until the last one):

1. configuration (done by the CLI), 2. logging (CLI), 3. HTTP listener (not ready),
4. journal, 5. embedded server when configured, 6. Session — retried with capped
exponential backoff while the server cannot be reached (the daemon waits, it does not
exit), 7. plugins (then the Session's configure-location/ready events to them,
see :mod:`reviewd.daemon.lifecycle`), 8. replay of unfinished deliveries, 9. event hub connected,
10. ready (``READY=1`` to systemd).

Event flow: the hub's dispatch hook hands every matched event to
:meth:`~reviewd.daemon.intake.EventIntake.on_events`, which journals it once per plugin
(deduplicated by id) *before* queueing it on the plugin's lane.  Subscribers that
belong to no plugin (the hub's own reply subscriber) and ``ftrack.meta.*`` events are
delivered inline, as the hub would have.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import structlog

from reviewd.api.exception import redact
from reviewd.daemon import config as config_module
from reviewd.daemon import embedded, report, status_page
from reviewd.daemon import logging as daemon_logging
from reviewd.daemon.cluster import ClusterCollector
from reviewd.daemon.config import Config, ConfigError
from reviewd.daemon.http import HttpServer
from reviewd.daemon.hub_link import HubLink
from reviewd.daemon.intake import EventIntake
from reviewd.daemon.journal import JournalError, open_journal
from reviewd.daemon.metrics import Metrics
from reviewd.daemon.plugin_control import PluginControl
from reviewd.daemon.router import Router
from reviewd.daemon.session_open import open_session
from reviewd.daemon.signals import SignalRequests, StartupAborted
from reviewd.daemon.systemd import Notifier

log = structlog.get_logger("reviewd.supervisor")

EX_OK, EX_SOFTWARE, EX_CANTCREAT, EX_CONFIG = 0, 70, 73, 78
TICK = 0.25
REFILL_EVERY = 2.0
PRUNE_EVERY = 3600.0
WATCH_EVERY = 1.0
HISTORY_EVERY = 1.0
#: Start-up time asked of systemd for each step that may wait (EXTEND_TIMEOUT_USEC):
#: an attempt to reach the server gets this on top of the backoff before it.
START_STEP_SECONDS = 60.0

__all__ = ["Daemon", "StartupAborted", "EX_OK", "EX_SOFTWARE", "EX_CANTCREAT", "EX_CONFIG"]


_DURATION_TEXT = re.compile(r"\d+(?:\.\d+)?\s*(?:ms|s)\b")


def state_without_durations(status: str) -> str:
    """*status* with every duration ("12.3s", "250 ms") blanked, to tell a change of
    state from the same state lasting longer."""
    return _DURATION_TEXT.sub("…", status)


class Daemon:
    """One run of the daemon; :meth:`run` returns the process exit code."""

    def __init__(
        self,
        config: Config,
        reload_config: Callable[[], Config] | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.config = config
        self._reload_config = reload_config
        self.notifier = notifier or Notifier()
        self.metrics = Metrics()
        self.metrics.add_snapshot(lambda: report.metrics_snapshot(self))
        self.started_at = time.time()
        self.state = "starting"
        self.last_error: str | None = None
        self.http: HttpServer | None = None
        self.journal: Any = None
        self.router: Router | None = None
        self.session: Any = None
        self.hub: Any = None
        self.devserver: Any = None
        self.ready = False
        #: When the main loop last turned (``/healthz`` says when it stalls).
        self.heartbeat = time.monotonic()
        self.signals = SignalRequests()
        self.hub_link = HubLink(self.metrics)
        self.intake = EventIntake(self)
        self.plugins = PluginControl(self, tick=self._tick)
        self._temp_dir: str | None = None
        self._removers: list[Callable[[], None]] = []
        #: The status page's last hour (events per minute, handler time).
        self.history = status_page.History()

    @property
    def host(self) -> Any:
        """The running :class:`~reviewd.plugin.PluginHost` (None until plugins load)."""
        return self.plugins.host

    # ================================================================== signals
    def install_signal_handlers(self) -> None:
        """TERM/INT: graceful stop (a second one: exit now); HUP: reload."""
        self.signals.install()

    def request_stop(self) -> None:
        """Stop gracefully, as SIGTERM would."""
        self.signals.request_stop()

    # ================================================================== run
    def run(self) -> int:
        """Start, serve until a stop signal, stop gracefully; return the exit code."""
        try:
            code = self._start()
            if code is not None:
                return code
            self._main_loop()
            return self._shutdown()
        except StartupAborted:
            log.info("stop requested during startup")
            return self._shutdown()
        except ConfigError as exc:
            return self._abort(f"configuration error: {exc}", EX_CONFIG)
        except Exception as exc:  # noqa: BLE001 - report in one line, details in the log
            log.exception("unexpected error")
            return self._abort(f"unexpected error: {type(exc).__name__}: {exc}", 1)
        finally:
            self.notifier.close()

    def _abort(self, message: str, code: int) -> int:
        """Stop what started, then end with one line naming the problem (the last line)."""
        self.last_error = redact(message)
        log.error("cannot continue", error=self.last_error)
        try:
            self._shutdown(code)
        except Exception:  # noqa: BLE001
            log.exception("shutdown after an error failed")
        sys.stderr.flush()
        sys.stderr.write(f"reviewd: {self.last_error}\n")
        sys.stderr.flush()
        return code

    def _set_state(self, state: str) -> None:
        self.state = state
        self.notifier.status(state)
        log.info("state", state=state)

    def _start(self) -> int | None:
        """Steps 3-10 of the start-up order, in order; the exit code when the run must
        end (the journal cannot be opened), None once ready."""
        for warning in self.config.warnings:
            log.warning("configuration warning", problem=warning)
        self._start_http()
        code = self._open_journal()
        if code is not None:
            return code
        if config_module.uses_embedded_server(self.config):
            self._start_embedded_server()
        self._connect_session()
        self._load_plugins()
        self._replay_unfinished()
        self._connect_hub()
        self._become_ready()
        return None

    def _start_http(self) -> None:
        """The HTTP listener, first, so that probes answer (not ready) from now on."""
        if self.config.http is None:
            return
        host, port = self.config.http
        try:
            self.http = HttpServer(self, host, port).start()
        except OSError as exc:
            raise ConfigError(
                "daemon.http",
                f"cannot listen on {host}:{port}: {exc.strerror} "
                "(choose another with --http ADDR:PORT or REVIEWD_HTTP, "
                "or 'off')",
            ) from None
        self._add_status_page_route()
        log.info("http listening", address="{}:{}".format(*self.http.address))

    def _add_status_page_route(self) -> None:
        """Serve the status page at ``/`` on a listener with a route table.

        A listener without ``add_route`` asks :meth:`status_page` for ``/`` itself."""
        add_route = getattr(self.http, "add_route", None)
        if add_route is None:
            return
        from reviewd.daemon import http as daemon_http

        response = daemon_http.Response
        add_route(
            "/", lambda request: response(200, self.status_page(), "text/html; charset=utf-8")
        )

    def _open_journal(self) -> int | None:
        """Open the journal and the router on it; EX_CANTCREAT when it cannot be opened."""
        self._set_state("opening the journal")
        try:
            self.journal = open_journal(self._journal_path(), self.config)
        except JournalError as exc:
            return self._abort(f"journal.path: {exc}", EX_CANTCREAT)
        log.info("journal open", path=self.journal.path, **self.journal.counts())
        if getattr(self.journal, "recovered", 0):
            log.warning(
                "handlers were running when the process died; each counts as a failed attempt",
                deliveries=self.journal.recovered,
            )
        self.intake.dispatch_local = getattr(self.journal, "dispatch_local", True)
        self.router = Router(
            self.journal,
            self.intake.deliver,
            self.metrics,
            resolver=self.intake.resolve,
            report_failure=self.intake.report_failure,
        )
        if getattr(self.journal, "feeds_lanes", False):
            self.metrics.registry.register(
                ClusterCollector(lambda: self.journal, lambda: self.intake.spool)
            )
        self.intake.start()  # the journal writer: batches, compaction, file checks
        return None

    def _journal_path(self) -> str:
        if self.config.journal_backend == "redis":
            return ""
        if self.config.journal_path:
            return self.config.journal_path
        if config_module.uses_embedded_server(self.config):
            # Demo events mean nothing to a later run: keep them out of the real journal.
            self._temp_dir = tempfile.mkdtemp(prefix="reviewd-embedded-")
            return os.path.join(self._temp_dir, "journal.sqlite3")
        return config_module.journal_path(self.config)

    def _start_embedded_server(self) -> None:
        self._set_state("starting the embedded server")
        if self._temp_dir is None:
            self._temp_dir = tempfile.mkdtemp(prefix="reviewd-embedded-")
        self.devserver = embedded.start_server(self.config, self._temp_dir)

    def _connect_session(self) -> None:
        def attempting(state: str) -> None:
            self.state = state
            self.notifier.status(state)
            # The wait before this attempt is at most connect_backoff_max; the attempt
            # itself is bounded by the request timeouts.
            self.notifier.extend_timeout(self.config.connect_backoff_max + START_STEP_SECONDS)

        def failed(error: str) -> None:
            self.last_error = error

        self.session = open_session(
            self.config, self.metrics, self.signals, on_attempt=attempting, on_failure=failed
        )
        remove = self.metrics.api.attach(self.session)
        if remove is not None:
            self._removers.append(remove)
        self.hub = self.session.event_hub
        log.info(
            "session ready",
            server=self.config.server_url,
            server_version=self.session.server_version,
        )

    def _load_plugins(self) -> None:
        self.signals.check_stop()
        self._set_state("loading plugins")
        self.notifier.extend_timeout(START_STEP_SECONDS)
        self.plugins.load()

    def _connect_hub(self) -> None:
        self._set_state("connecting the event hub")
        hub = self.hub
        self.intake.attach(hub)  # the dispatch hook, and the hub's backlog bound
        self._removers.append(
            hub.add_connection_listener(self._on_hub_connected, self._on_hub_disconnected)
        )
        hub.connect(wait=False)
        extended = 0.0
        while not hub.connected:
            self.heartbeat = time.monotonic()
            if self.heartbeat - extended > START_STEP_SECONDS / 4:
                # The hub reconnects forever; systemd waits as long as it keeps trying.
                self.notifier.extend_timeout(START_STEP_SECONDS)
                extended = self.heartbeat
            self.signals.wait_or_abort(0.05)

    def _replay_unfinished(self) -> None:
        """Queue the journaled deliveries an earlier run did not finish."""
        assert self.router is not None, "replay runs after the router was created"
        replayed = self.router.refill()
        if replayed:
            log.info("replaying unfinished deliveries from the journal", count=replayed)

    def _become_ready(self) -> None:
        """Plugins' ``reviewd_started`` hooks, then ready: ``/readyz`` and ``READY=1``."""
        self.plugins.started()
        self.ready = True
        plugins = sorted(self.host.loaded) if self.host is not None else []
        status = f"ready: {len(plugins)} plugin(s), server {self.config.server_url}"
        self.state = "running"
        self.notifier.ready(status)
        log.info("ready", plugins=plugins, server=self.config.server_url)

    def _on_hub_connected(self) -> None:
        self.hub_link.on_connected()
        self.signals.wake()

    def _on_hub_disconnected(self, reason: str = "") -> None:
        self.hub_link.on_disconnected(getattr(self.hub, "last_heard", None))
        self.last_error = redact(f"event hub disconnected: {reason}")
        self.signals.wake()

    # ================================================================== main loop
    def _main_loop(self) -> None:
        """Turn every TICK seconds (at once when a signal or the hub wakes it) until asked
        to stop: reload on SIGHUP, pass hub gaps to the plugins, keep lanes and the journal
        in step (refill every REFILL_EVERY, prune every PRUNE_EVERY), hot-reload changed
        plugins (``--foreground``), tell systemd each state change, feed the watchdog
        while healthy."""
        next_refill = next_prune = next_watch = next_history = time.monotonic()
        last_status = None
        watchdog_every = self.notifier.watchdog_interval
        next_watchdog = time.monotonic()
        assert self.router is not None, "the main loop starts after the router was created"
        while not self.signals.stop.is_set():
            now = time.monotonic()
            self.heartbeat = now
            if self.signals.take_reload():
                self.reload()
            for start, end in self.hub_link.pending_gaps():
                self.plugins.hub_gap(*self.hub_link.record_gap(start, end))
            if now >= next_refill:
                self._housekeep(self.router.keepalive)
                self._housekeep(self.router.refill)
                next_refill = now + REFILL_EVERY
            if now >= next_prune:
                self._prune()
                next_prune = now + PRUNE_EVERY
            if now >= next_history:
                self._housekeep(self._record_history)
                next_history = now + HISTORY_EVERY
            if self.config.watch_plugins and now >= next_watch:
                self.plugins.reload_changed()
                next_watch = now + WATCH_EVERY
            ok, body = self.readiness()
            status = "running" if ok else "degraded: " + "; ".join(body["reasons"])
            # Compared without its durations ("not connected (for 3.2s)"): a state line
            # per change, not one per tick while a duration grows.
            state_key = state_without_durations(status)
            if state_key != last_status:
                self.notifier.status(status)
                # The first turn follows "ready": only news if the daemon is already
                # degraded (the hub lost before the loop's first turn).
                if last_status is not None or not ok:
                    log.info("state", state=status)
                last_status = state_key
            if watchdog_every and now >= next_watchdog and self.health()[0]:
                self.notifier.watchdog()
                next_watchdog = now + watchdog_every
            self.signals.sleep(TICK)

    def _tick(self) -> None:
        """While the main loop waits on something long (draining, reloading): still alive."""
        self.heartbeat = time.monotonic()
        if self.notifier.watchdog_interval and self.health()[0]:
            self.notifier.watchdog()

    def _housekeep(self, task: Callable[[], Any]) -> None:
        """Run a periodic task; a failure (journal unreachable) is logged, not fatal."""
        try:
            task()
        except Exception as exc:  # noqa: BLE001
            self.last_error = redact(f"{getattr(task, '__name__', 'task')} failed: {exc}")
            log.error(
                "housekeeping failed", task=getattr(task, "__name__", "task"), error=self.last_error
            )

    def _prune(self) -> None:
        try:
            removed = self.journal.prune(self.config.journal_retention)
        except Exception as exc:  # noqa: BLE001
            log.error("journal pruning failed", error=redact(str(exc)))
            return
        if removed:
            log.info("journal pruned", deliveries=removed)

    # ================================================================== reload
    def reload_plugin(self, name: str) -> bool:
        """Drain *name*'s lane, re-import the plugin, open a new lane and refill it."""
        return self.plugins.reload_plugin(name)

    def reload(self) -> None:
        """SIGHUP: re-read configuration, reload every plugin; the hub stays connected."""
        self.notifier.reloading()
        log.info("reloading configuration and plugins")
        if self._reload_config is not None:
            try:
                new = self._reload_config()
            except ConfigError as exc:
                log.error(
                    "reload refused: invalid configuration; keeping the running one", error=str(exc)
                )
                self.metrics.reloads.labels(outcome="failed").inc()
                self.notifier.notify("READY=1")
                return
            self._apply_config(new)
        replace_host = (
            self._reload_config is not None
            and self.host is not None
            and self.plugins.settings_differ()
        )
        self.plugins.reload_all(replace_host)
        self.notifier.notify("READY=1\nSTATUS=running")
        log.info("reload finished", plugins=sorted(self.host.loaded) if self.host else [])

    def _apply_config(self, new: Config) -> None:
        old = self.config
        for key in (
            "server_url",
            "api_user",
            "api_key",
            "http",
            "journal_path",
            "state_dir",
            "embedded_server",
        ):
            if getattr(new, key) != getattr(old, key) and not (
                self.devserver is not None and key in ("server_url", "api_user", "api_key")
            ):
                log.warning(
                    "setting changed; restart the daemon to apply it",
                    setting=key if key != "api_key" else "server.api_key",
                )
            setattr(new, key, getattr(old, key))
        if self.devserver is not None and new.plugin_paths is None:
            new.plugin_paths = old.plugin_paths
        new.foreground = old.foreground
        self.config = new
        daemon_logging.set_level(new.log_level)

    # ================================================================== stop
    def _shutdown(self, code: int = EX_OK) -> int:
        self.ready = False
        self.state = "stopping"
        self.notifier.stopping("stopping: finishing in-flight handlers")
        log.info("stopping", grace_period=self.config.grace_period)
        self.intake.accepting = False
        self.plugins.stopping()
        if self.router is not None:
            finished = self.router.stop(self.config.grace_period, self._tick)
            if not finished:
                unfinished = {
                    name: lane.snapshot()["in_flight"]
                    for name, lane in self.router.lanes.items()
                    if lane.snapshot()["in_flight"]
                }
                log.warning(
                    "grace period over; unfinished handlers abandoned (their "
                    "deliveries stay pending and replay on the next start)",
                    in_flight=unfinished,
                )
        for remove in self._removers:
            remove()
        if self.hub is not None and self.hub.running:
            try:
                # The hook stays: an event arriving until the socket closes is journaled
                # (and replayed next start), never handled inline.
                self.hub.disconnect()
            except Exception as exc:  # noqa: BLE001
                log.warning("event hub disconnect failed", error=redact(str(exc)))
        self.intake.close(self.config.grace_period)
        if self.journal is not None:
            counts = self.journal.counts()
            self.intake.journal_closed = True
            self.journal.close()
            log.info("journal closed", **counts)
        if self.session is not None:
            try:
                self.session.close()
            except Exception as exc:  # noqa: BLE001
                log.warning("session close failed", error=redact(str(exc)))
        if self.devserver is not None:
            self.devserver.stop()
        if self._temp_dir:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
        if self.http is not None:
            self.http.stop()
        log.info("stopped", exit_code=code)
        return code

    # ================================================================== probes
    def health(self) -> tuple[bool, dict[str, Any]]:
        """``/healthz``: see :func:`reviewd.daemon.report.health`."""
        return report.health(self, TICK)

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """``/readyz``: see :func:`reviewd.daemon.report.readiness`."""
        return report.readiness(self)

    def status(self) -> dict[str, Any]:
        """``/status``: see :func:`reviewd.daemon.report.status`."""
        return report.status(self)

    def _record_history(self) -> None:
        latency = status_page.handler_latency(self.metrics.handler_duration)
        lanes = self.router.snapshot() if self.router is not None else {}
        self.history.record(*status_page.totals_of({"plugins": lanes}, latency))

    def status_page(self) -> bytes:
        """``/``: the read-only HTML status page (:mod:`reviewd.daemon.status_page`)."""
        if self.state == "running":
            self._record_history()
        return status_page.render(
            self.status(),
            self.history.series(),
            status_page.handler_latency(self.metrics.handler_duration),
        )

    def metrics_text(self) -> bytes:
        """``/metrics``: the Prometheus exposition text."""
        return self.metrics.render()
