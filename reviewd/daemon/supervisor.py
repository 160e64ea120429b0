"""The supervisor: starts the parts in order, runs the main loop, reloads and stops.

Modelled on gunicorn's arbiter: signal handlers only set flags and wake the main loop;
the main loop does the work (reload, stop, watchdog, housekeeping), so every state
change happens on one thread and is easy to follow.

Startup order (each step logged; ``/healthz`` answers from the second one on, ``/readyz``
says what is missing until the last one):

1. configuration (done by the CLI), 2. logging (CLI), 3. HTTP listener (not ready),
4. journal, 5. embedded server when configured, 6. Session — retried with capped
exponential backoff while the server cannot be reached (the daemon waits, it does not
exit), 7. plugins (then the Session's configure-location/ready events to them,
see :mod:`reviewd.daemon.lifecycle`), 8. replay of unfinished deliveries, 9. event hub connected,
10. ready (``READY=1`` to systemd).

Event flow: the hub's dispatch hook hands every matched event to :meth:`_on_events`,
which journals it once per plugin (deduplicated by id) *before* queueing it on the
plugin's lane.  Subscribers that belong to no plugin (the hub's own reply subscriber)
and ``ftrack.meta.*`` events are delivered inline, as the hub would have.
"""

from __future__ import annotations

import datetime
import os
import queue
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog

from reviewd import __version__
from reviewd.daemon import config as config_module
from reviewd.daemon import embedded
from reviewd.daemon import logging as daemon_logging
from reviewd.daemon.config import Config, ConfigError
from reviewd.daemon.http import HttpServer
from reviewd.daemon.journal import JournalError, open_journal
from reviewd.daemon.lifecycle import publish_session_events
from reviewd.daemon.metrics import Metrics
from reviewd.daemon.router import Job, LaneSettings, Router, clone_event
from reviewd.daemon.systemd import Notifier
from reviewd.daemon.watch import Fingerprint, fingerprint
from reviewd.exception import AuthenticationError, PluginError, redact, register_secret

log = structlog.get_logger("reviewd.supervisor")

EX_OK, EX_SOFTWARE, EX_CANTCREAT, EX_CONFIG = 0, 70, 73, 78
TICK = 0.25
REFILL_EVERY = 2.0
PRUNE_EVERY = 3600.0
WATCH_EVERY = 1.0


class StartupAborted(Exception):
    """A stop signal arrived before the daemon finished starting."""


class Daemon:
    """One run of the daemon; :meth:`run` returns the process exit code."""

    def __init__(self, config: Config, reload_config: Callable[[], Config] | None = None,
                 notifier: Notifier | None = None) -> None:
        self.config = config
        self._reload_config = reload_config
        self.notifier = notifier or Notifier()
        self.metrics = Metrics()
        self.metrics.add_snapshot(self._metrics_snapshot)
        self.started_at = time.time()
        self.state = "starting"
        self.last_error: str | None = None
        self.http: HttpServer | None = None
        self.journal: Any = None
        self.router: Router | None = None
        self.session: Any = None
        self.hub: Any = None
        self.host: Any = None
        self.devserver: Any = None
        self.ready = False
        self._temp_dir: str | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._reload_requested = False
        self._signals = 0
        self._heartbeat = time.monotonic()
        self._hub_connected = False
        self._ever_connected = False
        self._disconnected_at: float | None = None
        self._gaps: queue.SimpleQueue = queue.SimpleQueue()
        self._gap_stats = {"count": 0, "seconds": 0.0, "last": None}
        self._reconnects = 0
        self._accepting = True
        self._plugin_mtimes: dict[str, Fingerprint] = {}
        self._journal_error: str | None = None
        self._journal_closed = False
        self._dispatch_local = True
        self._connect_attempts = 0
        self._removers: list[Callable[[], None]] = []
        self._lane_lock = threading.RLock()

    # ================================================================== signals
    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGHUP, self._on_hup)

    def _on_stop_signal(self, signum: int, _frame: Any) -> None:
        self._signals += 1
        if self._signals > 1:
            sys.stderr.write(f"reviewd: second {signal.Signals(signum).name}: exiting now; "
                             "unfinished deliveries stay in the journal\n")
            sys.stderr.flush()
            os._exit(1)
        self._stop.set()
        self._wake.set()

    def _on_hup(self, _signum: int, _frame: Any) -> None:
        self._reload_requested = True
        self._wake.set()

    def request_stop(self) -> None:
        self._stop.set()
        self._wake.set()

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
        config = self.config
        if config.http is not None:
            host, port = config.http
            try:
                self.http = HttpServer(self, host, port).start()
            except OSError as exc:
                raise ConfigError("daemon.http",
                                  f"cannot listen on {host}:{port}: {exc.strerror}") from None
            log.info("http listening", address="{}:{}".format(*self.http.address))
        self._set_state("opening the journal")
        try:
            self.journal = open_journal(self._journal_path(), self.config)
        except JournalError as exc:
            return self._abort(f"journal.path: {exc}", EX_CANTCREAT)
        log.info("journal open", path=self.journal.path, **self.journal.counts())
        self._dispatch_local = getattr(self.journal, "dispatch_local", True)
        self.router = Router(self.journal, self._deliver, self.metrics, resolver=self._resolve)
        if config_module.uses_embedded_server(config):
            self._start_embedded_server()
        self._connect_session()
        self._load_plugins()
        replayed = self.router.refill()
        if replayed:
            log.info("replaying unfinished deliveries from the journal", count=replayed)
        self._connect_hub()
        outcomes = self.host.started() if self.host is not None else []
        self._log_hook_errors("reviewd_started", outcomes)
        self.ready = True
        plugins = sorted(self.host.loaded) if self.host is not None else []
        status = f"ready: {len(plugins)} plugin(s), server {config.server_url}"
        self.state = "running"
        self.notifier.ready(status)
        log.info("ready", plugins=plugins, server=config.server_url)
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
        from reviewd.devserver import DevServer

        self._set_state("starting the embedded server")
        rate = self.config.simulate or None
        self.devserver = DevServer(seed="demo", simulate=rate)
        self.devserver.start()
        self.config.server_url = self.devserver.url
        self.config.api_user = self.devserver.api_user
        self.config.api_key = self.devserver.api_key
        register_secret(self.config.api_key)
        if self._temp_dir is None:
            self._temp_dir = tempfile.mkdtemp(prefix="reviewd-embedded-")
        credentials = embedded.write_credentials(self._temp_dir, self.devserver.url,
                                                 self.devserver.api_user, self.config.api_key)
        log.info("embedded server running", url=self.devserver.url, simulate=rate,
                 credentials_file=credentials)
        # The command is the message itself so that the console shows it unquoted,
        # ready to copy; it names the file, never the key.
        log.info(f"{embedded.HINT_PREFIX}{embedded.try_command(credentials)}")
        if self.config.plugin_paths is None and self.config.foreground:
            local = os.path.join(os.getcwd(), "plugins")
            if os.path.isdir(local):
                self.config.plugin_paths = [local]

    def _connect_session(self) -> None:
        from reviewd import Session

        config = self.config
        delay = 0.5
        while True:
            self._check_stop()
            self._connect_attempts += 1
            self.state = f"connecting to {config.server_url} (attempt {self._connect_attempts})"
            self.notifier.status(self.state)
            try:
                self.session = Session(
                    server_url=config.server_url, api_key=config.api_key,
                    api_user=config.api_user, plugin_paths=[], auto_connect_event_hub=False)
            except AuthenticationError as exc:
                self.metrics.session_attempts.labels(outcome="refused").inc()
                raise ConfigError("server.api_key", f"the server refused the credentials of "
                                  f"user {config.api_user!r}: {redact(str(exc))}") from None
            except TypeError as exc:
                raise ConfigError("server", redact(str(exc))) from None
            except Exception as exc:  # noqa: BLE001 - unreachable server, proxy errors, ...
                self.metrics.session_attempts.labels(outcome="failed").inc()
                self.last_error = redact(f"{type(exc).__name__}: {exc}")
                wait = random.uniform(delay / 2, delay)
                log.warning("server not reachable, will retry", server=config.server_url,
                            attempt=self._connect_attempts, retry_in=round(wait, 2),
                            error=self.last_error)
                if self._stop.wait(wait):
                    raise StartupAborted() from None
                delay = min(delay * 2, max(config.connect_backoff_max, 0.5))
                continue
            self.metrics.session_attempts.labels(outcome="ok").inc()
            remove = self.metrics.api.attach(self.session)
            if remove is not None:
                self._removers.append(remove)
            self.hub = self.session.event_hub
            log.info("session ready", server=config.server_url,
                     server_version=self.session.server_version)
            return

    def _check_stop(self) -> None:
        if self._stop.is_set():
            raise StartupAborted()

    def _load_plugins(self) -> None:
        from reviewd.plugin import PluginHost

        self._check_stop()
        self._set_state("loading plugins")
        config = self.config
        paths = list(config.plugin_paths or [])
        host = PluginHost(self.session, paths=paths, arguments=config.plugin_arguments,
                          plugin_arguments=config.per_plugin_arguments,
                          strict=config.plugin_strict,
                          allow_world_writable=config.plugin_allow_world_writable,
                          ftrack_api_compat=config.plugin_ftrack_api_compat)
        try:
            host.load_all()
        except PluginError as exc:
            raise ConfigError("plugins", redact(str(exc))) from None
        self.host = host
        for problem in host.problems:
            log.warning("plugin path problem", problem=problem)
        for record in host.plugins:
            if record.loaded:
                log.info("plugin loaded", plugin=record.name, kind=record.kind,
                         source=record.source,
                         subscriptions=[s.expression for s in record.subscriptions])
                self._open_lane(record.name)
            else:
                log.error("plugin failed to load", plugin=record.name, source=record.source,
                          error=record.error)
        publish_session_events(self.session, host)
        self._register_collectors()
        self._remember_mtimes()

    def _register_collectors(self, only: str | None = None) -> None:
        try:
            collectors = self.host.collectors()
        except Exception as exc:  # noqa: BLE001
            log.error("collecting plugin metrics failed", error=redact(str(exc)))
            return
        for plugin, items in collectors.items():
            if only is not None and plugin != only:
                continue
            self.metrics.remove_plugin_collectors(plugin)
            for problem in self.metrics.add_plugin_collectors(plugin, items):
                log.warning("plugin collector refused", plugin=plugin, problem=problem)

    def _lane_settings(self, plugin: str) -> LaneSettings:
        """Configured routing for *plugin*, overlaid with what its subscriptions declare."""
        values = self.config.routing_for(plugin)
        subscriptions = [s for s in self.host.subscriptions if s.plugin == plugin]
        declared_concurrency = max([s.options.concurrency for s in subscriptions] or [1])
        values["concurrency"] = max(values["concurrency"], declared_concurrency)
        timeouts = [s.options.timeout for s in subscriptions if s.options.timeout]
        if timeouts:
            values["hard_timeout"] = min(timeouts)
            values["soft_timeout"] = min(values["soft_timeout"], values["hard_timeout"])
        multiplier = 2.0
        retries = [s.options.retry for s in subscriptions if s.options.retry is not None]
        if retries:
            policy = retries[0]
            values["max_attempts"] = policy.max_attempts
            values["retry_backoff"] = policy.initial_delay
            values["retry_backoff_max"] = policy.max_delay
            multiplier = policy.multiplier
        return LaneSettings(retry_multiplier=multiplier, **values)

    def _open_lane(self, plugin: str) -> None:
        with self._lane_lock:
            self.router.lane(plugin, self._lane_settings(plugin))

    def _connect_hub(self) -> None:
        self._set_state("connecting the event hub")
        hub = self.hub
        hub.set_dispatch_hook(self._on_events)
        self._removers.append(hub.add_connection_listener(self._on_hub_connected,
                                                          self._on_hub_disconnected))
        hub.connect(wait=False)
        while not hub.connected:
            self._heartbeat = time.monotonic()
            if self._stop.wait(0.05):
                raise StartupAborted()

    def _log_hook_errors(self, hook: str, outcomes: list) -> None:
        for outcome in outcomes or []:
            if getattr(outcome, "error", None) is not None:
                log.error("plugin hook raised", plugin=outcome.plugin, hook=hook,
                          error=redact(f"{type(outcome.error).__name__}: {outcome.error}"))

    # ================================================================== events
    def _on_events(self, event: Any, subscribers: list) -> None:
        """The hub's dispatch hook: journal, then queue per plugin (never blocks on plugins)."""
        topic = str(event.get("topic", ""))
        by_plugin: dict[str, list] = {}
        inline = []
        host = self.host
        for subscriber in subscribers:
            owner = host.owner_of(subscriber.id) if host is not None else None
            if owner is None or topic.startswith("ftrack.meta."):
                inline.append(subscriber)
            else:
                by_plugin.setdefault(owner.plugin, []).append(subscriber)
        for subscriber in inline:
            try:
                self.hub.deliver(event, subscriber)
            except Exception as exc:  # noqa: BLE001
                log.error("inline handler failed", event_id=event.get("id"), topic=topic,
                          subscriber=subscriber.id, error=redact(str(exc)))
        if not by_plugin or self._journal_closed:
            return
        self.metrics.received.labels(topic=topic).inc()
        try:
            new = self.journal.record(event, list(by_plugin))
        except Exception as exc:  # noqa: BLE001 - disk full, locked, corrupt
            self._journal_error = redact(f"journal write failed: {exc}")
            log.error("journal write failed; event not dispatched", event_id=event.get("id"),
                      topic=topic, error=self._journal_error)
            return
        self._journal_error = None
        event_id = str(event["id"])
        for plugin, subs in by_plugin.items():
            labels = {"plugin": plugin, "topic": topic}
            if plugin not in new:
                self.metrics.deduplicated.labels(**labels).inc()
                log.info("duplicate event ignored", event_id=event_id, plugin=plugin)
                continue
            self.metrics.journaled.labels(**labels).inc()
            if not self._accepting or not self._dispatch_local:
                # Stopping: it stays pending for the next start.  Shared (Redis) journal:
                # whichever host's lane pulls it first handles it.
                continue
            job = Job(clone_event(event), event_id, topic, plugin, subs)
            self.router.submit(job)

    def _deliver(self, event: Any, subscriber: Any) -> Any:
        """Run one handler on this lane's worker thread.

        The Session's unit of work is per thread, so a handler that fails half-way leaves
        its recorded operations and local values on this worker's thread; the next
        handler's ``commit()`` would send them, and until then every other plugin reads
        the half-made values.  Rolling this thread back keeps a failure to its plugin.
        """
        try:
            return self.hub.deliver(event, subscriber)
        except BaseException:
            self._discard_unsaved_work()
            raise

    def _discard_unsaved_work(self) -> None:
        session = self.session
        if session is None or session.closed or not session.recorded_operations:
            return
        try:
            session.rollback()
        except Exception as exc:  # noqa: BLE001 - the handler's own error is what matters
            log.warning("rolling back a failed handler's changes failed", error=redact(str(exc)))

    def _resolve(self, plugin: str, delivery: Any) -> Job | None:
        """A journaled delivery back into a job: the plugin's current matching subscribers."""
        from reviewd.event import expression
        from reviewd.event.base import Event

        try:
            event = Event.from_wire(delivery.payload)
        except ValueError:
            return None
        target = event.get("target") or ""
        target_match = expression.parse(target).match if target else None
        by_id = {s.id: s for s in self.hub.subscribers}
        subscribers = []
        for subscription in self.host.subscriptions:
            if subscription.plugin != plugin:
                continue
            subscriber = by_id.get(subscription.subscriber_id)
            if subscriber is None or not subscriber.interested_in(event):
                continue
            if target_match is not None and not target_match(subscriber.metadata):
                continue
            subscribers.append(subscriber)
        if not subscribers:
            return None
        subscribers.sort(key=lambda s: s.sort_key())
        return Job(event, delivery.event_id, delivery.topic, plugin, subscribers,
                   attempts=delivery.attempts)

    def _on_hub_connected(self) -> None:
        now = time.time()
        self._hub_connected = True
        if self._ever_connected and self._disconnected_at is not None:
            self._reconnects += 1
            self.metrics.reconnects.inc()
            self._gaps.put((self._disconnected_at, now))
        self._ever_connected = True
        self._disconnected_at = None
        self._wake.set()

    def _on_hub_disconnected(self, reason: str = "") -> None:
        self._hub_connected = False
        if self._disconnected_at is None:
            self._disconnected_at = time.time()
        self.last_error = redact(f"event hub disconnected: {reason}")
        self._wake.set()

    # ================================================================== main loop
    def _main_loop(self) -> None:
        next_refill = next_prune = next_watch = time.monotonic()
        last_status = None
        watchdog_every = self.notifier.watchdog_interval
        next_watchdog = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            self._heartbeat = now
            if self._reload_requested:
                self._reload_requested = False
                self.reload()
            while not self._gaps.empty():
                self._handle_gap(*self._gaps.get())
            if now >= next_refill:
                self._housekeep(self.router.keepalive)
                self._housekeep(self.router.refill)
                next_refill = now + REFILL_EVERY
            if now >= next_prune:
                self._prune()
                next_prune = now + PRUNE_EVERY
            if self.config.watch_plugins and now >= next_watch:
                self._reload_changed_plugins()
                next_watch = now + WATCH_EVERY
            ok, body = self.readiness()
            status = "running" if ok else "degraded: " + "; ".join(body["reasons"])
            if status != last_status:
                self.notifier.status(status)
                if last_status is not None:
                    log.info("state", state=status)
                last_status = status
            if watchdog_every and now >= next_watchdog and self.health()[0]:
                self.notifier.watchdog()
                next_watchdog = now + watchdog_every
            self._wake.wait(TICK)
            self._wake.clear()

    def _tick(self) -> None:
        """While the main loop waits on something long (draining, reloading): still alive."""
        self._heartbeat = time.monotonic()
        if self.notifier.watchdog_interval and self.health()[0]:
            self.notifier.watchdog()

    def _housekeep(self, task: Callable[[], Any]) -> None:
        """Run a periodic task; a failure (journal unreachable) is logged, not fatal."""
        try:
            task()
        except Exception as exc:  # noqa: BLE001
            self.last_error = redact(f"{getattr(task, '__name__', 'task')} failed: {exc}")
            log.error("housekeeping failed", task=getattr(task, "__name__", "task"),
                      error=self.last_error)

    def _handle_gap(self, start: float, end: float) -> None:
        seconds = max(0.0, end - start)
        self._gap_stats["count"] += 1
        self._gap_stats["seconds"] += seconds
        self.metrics.gaps.inc()
        self.metrics.gap_seconds.inc(seconds)
        gap_start = datetime.datetime.fromtimestamp(start, datetime.timezone.utc)
        gap_end = datetime.datetime.fromtimestamp(end, datetime.timezone.utc)
        self._gap_stats["last"] = {"start": gap_start.isoformat(), "end": gap_end.isoformat(),
                                   "seconds": round(seconds, 3)}
        log.warning("event hub gap", gap_start=gap_start.isoformat(),
                    gap_end=gap_end.isoformat(), seconds=round(seconds, 3))
        if self.host is not None:
            self._log_hook_errors("reviewd_hub_gap", self.host.hub_gap(gap_start, gap_end))

    def _prune(self) -> None:
        try:
            removed = self.journal.prune(self.config.journal_retention)
        except Exception as exc:  # noqa: BLE001
            log.error("journal pruning failed", error=redact(str(exc)))
            return
        if removed:
            log.info("journal pruned", deliveries=removed)

    # ================================================================== reload
    def _remember_mtimes(self) -> None:
        if self.host is None:
            return
        self._plugin_mtimes = {r.name: fingerprint(r.path) for r in self.host.plugins
                               if r.path}

    def _reload_changed_plugins(self) -> None:
        for record in list(self.host.plugins if self.host else []):
            if not record.path:
                continue
            stamp = fingerprint(record.path)
            if stamp != self._plugin_mtimes.get(record.name):
                self._plugin_mtimes[record.name] = stamp
                log.info("plugin file changed; reloading", plugin=record.name, path=record.path)
                self.reload_plugin(record.name)

    def reload_plugin(self, name: str) -> bool:
        """Drain *name*'s lane, re-import the plugin, open a new lane and refill it."""
        with self._lane_lock:
            self.router.remove_lane(name, self.config.grace_period, self._tick)
            self.metrics.remove_plugin_collectors(name)
            try:
                record = self.host.reload(name)
            except PluginError as exc:
                log.error("plugin reload failed; keeping the running version", plugin=name,
                          error=redact(str(exc)))
                self._open_lane(name)
                self.router.refill([name])
                self.metrics.reloads.labels(outcome="failed").inc()
                return False
            if record.loaded:
                self._open_lane(name)
                publish_session_events(self.session, self.host, [name])
                self.router.refill([name])
                self._register_collectors(only=name)
                log.info("plugin reloaded", plugin=name,
                         subscriptions=[s.expression for s in record.subscriptions])
                self.metrics.reloads.labels(outcome="ok").inc()
                return True
            log.error("plugin failed after reload", plugin=name, error=record.error)
            self.metrics.reloads.labels(outcome="failed").inc()
            return False

    def reload(self) -> None:
        """SIGHUP: re-read configuration, reload every plugin; the hub stays connected."""
        self.notifier.reloading()
        log.info("reloading configuration and plugins")
        if self._reload_config is not None:
            try:
                new = self._reload_config()
            except ConfigError as exc:
                log.error("reload refused: invalid configuration; keeping the running one",
                          error=str(exc))
                self.metrics.reloads.labels(outcome="failed").inc()
                self.notifier.notify("READY=1")
                return
            self._apply_config(new)
        plugins_changed = False
        if self._reload_config is not None and self.host is not None:
            plugins_changed = (
                list(self.config.plugin_paths or []) != list(self.host.paths)
                or self.config.plugin_arguments != self.host.arguments
                or self.config.per_plugin_arguments != self.host.plugin_arguments)
        if plugins_changed:
            self._replace_host()
        else:
            for name in list(self.host.loaded if self.host else []):
                self.reload_plugin(name)
            for record in list(self.host.failures if self.host else []):
                self.reload_plugin(record.name)
        self._remember_mtimes()
        self.notifier.notify("READY=1\nSTATUS=running")
        log.info("reload finished", plugins=sorted(self.host.loaded) if self.host else [])

    def _apply_config(self, new: Config) -> None:
        old = self.config
        for key in ("server_url", "api_user", "api_key", "http", "journal_path", "state_dir",
                    "embedded_server"):
            if getattr(new, key) != getattr(old, key) and not (
                    self.devserver is not None and key in ("server_url", "api_user", "api_key")):
                log.warning("setting changed; restart the daemon to apply it",
                            setting=key if key != "api_key" else "server.api_key")
            setattr(new, key, getattr(old, key))
        if self.devserver is not None and new.plugin_paths is None:
            new.plugin_paths = old.plugin_paths
        new.foreground = old.foreground
        self.config = new
        daemon_logging.set_level(new.log_level)

    def _replace_host(self) -> None:
        from reviewd.plugin import PluginHost

        with self._lane_lock:
            for name in list(self.router.lanes):
                self.router.remove_lane(name, self.config.grace_period, self._tick)
                self.metrics.remove_plugin_collectors(name)
            self._log_hook_errors("reviewd_stopping", self.host.stopping())
            for name in [r.name for r in self.host.plugins]:
                try:
                    self.host.unload(name)
                except PluginError:
                    pass
            self.host = None
            config = self.config
            host = PluginHost(self.session, paths=list(config.plugin_paths or []),
                              arguments=config.plugin_arguments,
                              plugin_arguments=config.per_plugin_arguments, strict=False,
                              allow_world_writable=config.plugin_allow_world_writable,
                              ftrack_api_compat=config.plugin_ftrack_api_compat)
            host.load_all()
            self.host = host
            for name in host.loaded:
                self._open_lane(name)
            publish_session_events(self.session, host)
            self._register_collectors()
            self.router.refill()
            self._log_hook_errors("reviewd_started", host.started())

    # ================================================================== stop
    def _shutdown(self, code: int = EX_OK) -> int:
        self.ready = False
        self.state = "stopping"
        self.notifier.stopping("stopping: finishing in-flight handlers")
        log.info("stopping", grace_period=self.config.grace_period)
        self._accepting = False
        if self.host is not None:
            self._log_hook_errors("reviewd_stopping", self.host.stopping())
        if self.router is not None:
            finished = self.router.stop(self.config.grace_period, self._tick)
            if not finished:
                unfinished = {name: lane.snapshot()["in_flight"]
                              for name, lane in self.router.lanes.items()
                              if lane.snapshot()["in_flight"]}
                log.warning("grace period over; unfinished handlers abandoned (their "
                            "deliveries stay pending and replay on the next start)",
                            in_flight=unfinished)
        for remove in self._removers:
            remove()
        if self.hub is not None:
            try:
                # The hook stays: an event arriving until the socket closes is journaled
                # (and replayed next start), never handled inline.
                self.hub.disconnect()
            except Exception as exc:  # noqa: BLE001
                log.warning("event hub disconnect failed", error=redact(str(exc)))
        if self.journal is not None:
            counts = self.journal.counts()
            self._journal_closed = True
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
        age = time.monotonic() - self._heartbeat
        problems = []
        if age > max(10.0, 20 * TICK) and self.state == "running":
            problems.append(f"main loop has not turned for {age:.1f}s")
        if self.http is not None and not self.http.alive:
            problems.append("http listener stopped")
        return not problems, {"alive": not problems, "problems": problems,
                              "state": self.state}

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        reasons = []
        if not self.ready:
            reasons.append(f"not ready: {self.state}")
            if self.last_error:
                reasons.append(f"last error: {self.last_error}")
        if self.session is None:
            reasons.append("no session with the server yet")
        if self.hub is not None and not self.hub.connected:
            since = self._disconnected_at
            text = "event hub not connected"
            if since:
                text += f" (for {time.time() - since:.1f}s)"
            reasons.append(text)
        if self.router is not None:
            for plugin, reason in sorted(self.router.stuck().items()):
                reasons.append(f"plugin {plugin} stuck: {reason}")
        if self._journal_error:
            reasons.append(self._journal_error)
        if self.host is not None and self.ready:
            try:
                for name, health in sorted(self.host.health().items()):
                    if not health.ready and name in self.host.loaded:
                        problems = ", ".join(health.problems) or "reports not ready"
                        reasons.append(f"plugin {name} not ready: {problems}")
            except Exception as exc:  # noqa: BLE001
                reasons.append(f"plugin health check failed: {redact(str(exc))}")
        return not reasons, {"ready": not reasons, "reasons": reasons}

    def status(self) -> dict[str, Any]:
        ready, readiness = self.readiness()
        lanes = self.router.snapshot() if self.router is not None else {}
        plugins: dict[str, Any] = {}
        for record in list(self.host.plugins if self.host is not None else []):
            plugins[record.name] = {
                "kind": record.kind, "source": record.source, "loaded": record.loaded,
                "error": record.error,
                "subscriptions": [s.expression for s in record.subscriptions],
                **lanes.get(record.name, {}),
            }
        journal: dict[str, Any] = {}
        dead: list[dict[str, Any]] = []
        if self.journal is not None and self.state != "stopping":
            try:
                journal = {"path": self.journal.path, "size_bytes": self.journal.size_bytes(),
                           **self.journal.counts()}
                dead = [{"event_id": d.event_id, "plugin": d.plugin, "topic": d.topic,
                         "attempts": d.attempts,
                         "error": (d.last_error or "").strip().splitlines()[-1:]}
                        for d in self.journal.dead_letters()[-20:]]
            except Exception as exc:  # noqa: BLE001
                journal = {"error": redact(str(exc))}
        hub_stats: dict[str, Any] = {}
        if self.hub is not None:
            try:
                hub_stats = dict(self.hub.stats())
            except Exception:  # noqa: BLE001
                hub_stats = {}
        return {
            "version": __version__,
            "pid": os.getpid(),
            "uptime_seconds": round(time.time() - self.started_at, 3),
            "state": self.state,
            "ready": ready,
            "reasons": readiness["reasons"],
            "server": {"url": self.config.server_url, "user": self.config.api_user,
                       "embedded": self.devserver is not None,
                       "version": (self.session.server_version if self.session else None)},
            "hub": {"connected": bool(self.hub is not None and self.hub.connected),
                    "reconnects": self._reconnects, "gaps": self._gap_stats["count"],
                    "gap_seconds": round(self._gap_stats["seconds"], 3),
                    "last_gap": self._gap_stats["last"], **{f"stats_{k}": v
                                                           for k, v in hub_stats.items()}},
            "plugins": plugins,
            "plugin_problems": list(self.host.problems) if self.host is not None else [],
            "journal": journal,
            "dead_letters": dead,
            "last_error": self.last_error,
        }

    def metrics_text(self) -> bytes:
        return self.metrics.render()

    def _metrics_snapshot(self) -> dict[str, Any]:
        snap: dict[str, Any] = {
            "hub_connected": bool(self.hub is not None and self.hub.connected),
            "ready": self.readiness()[0],
            "uptime": time.time() - self.started_at,
        }
        if self.router is not None:
            snap["plugins"] = self.router.snapshot()
        if self.journal is not None and self.state != "stopping":
            try:
                snap["journal_size"] = self.journal.size_bytes()
                snap["journal"] = self.journal.counts()
            except Exception:  # noqa: BLE001
                pass
        return snap
