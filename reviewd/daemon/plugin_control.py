"""The daemon's plugins: load them, give each a lane, reload one or all of them.

Why a module of its own: loading a plugin is more than importing it.  Each loaded
plugin gets its router lane (with the routing its subscriptions declare), the
Session's start-up events (:mod:`reviewd.daemon.lifecycle`), and its own Prometheus
collectors; a reload must undo all of that in the reverse order — drain the lane,
drop the collectors — and redo it, or keep the running version when the new one
fails.  :class:`PluginControl` owns the :class:`~reviewd.plugin.PluginHost` and does
these steps; the supervisor decides *when* (start-up, SIGHUP, a changed file).

Lanes are opened and closed under one lock, so a reload from the main loop and a
lane being opened never interleave.  Draining a lane can take up to the grace period;
the supervisor's *tick* keeps the watchdog fed meanwhile.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

import structlog

from reviewd.api.exception import PluginError, redact
from reviewd.daemon.config import Config, ConfigError
from reviewd.daemon.lifecycle import publish_session_events
from reviewd.daemon.metrics import Metrics
from reviewd.daemon.router import LaneSettings, Router
from reviewd.daemon.watch import Fingerprint, fingerprint

# These lines have always been the supervisor's; operators filter on the logger name.
log = structlog.get_logger("reviewd.supervisor")


class Parts(Protocol):
    """The daemon's parts plugin control uses (the :class:`~reviewd.daemon.supervisor.Daemon`)."""

    config: Config
    metrics: Metrics
    router: Router | None
    session: Any


class PluginControl:
    """Owns the plugin host; loads, reloads and watches plugins, one lane each."""

    def __init__(self, parts: Parts, tick: Callable[[], None]) -> None:
        self.parts = parts
        self.host: Any = None
        self._tick = tick
        self._fingerprints: dict[str, Fingerprint] = {}
        self._lane_lock = threading.RLock()

    # ------------------------------------------------------------------ loading
    def load(self) -> None:
        """Start-up: load every plugin, open a lane for each that loaded, tell them the
        Session is ready.  A malformed plugin in strict mode is a configuration error."""
        self.host = host = self._new_host(
            strict=self.parts.config.plugin_strict, raise_config_error=True
        )
        for problem in host.problems:
            log.warning("plugin path problem", problem=problem)
        for record in host.plugins:
            if record.loaded:
                # The host already said "loaded X as KIND with N subscription(s)" at
                # info: one line per load; the details here are for debugging.
                log.debug(
                    "plugin loaded",
                    plugin=record.name,
                    kind=record.kind,
                    source=record.source,
                    subscriptions=[s.expression for s in record.subscriptions],
                )
                self._open_lane(record.name)
            else:
                log.error(
                    "plugin failed to load",
                    plugin=record.name,
                    source=record.source,
                    error=record.error,
                )
        publish_session_events(self.parts.session, host)
        self._register_collectors()
        self.remember_fingerprints()

    def _new_host(self, strict: bool, raise_config_error: bool = False) -> Any:
        from reviewd.plugin import PluginHost

        config = self.parts.config
        host = PluginHost(
            self.parts.session,
            paths=list(config.plugin_paths or []),
            arguments=config.plugin_arguments,
            plugin_arguments=config.per_plugin_arguments,
            strict=strict,
            allow_world_writable=config.plugin_allow_world_writable,
            ftrack_api_compat=config.plugin_ftrack_api_compat,
            ftrack_api=config.plugin_ftrack_api,
        )
        if not raise_config_error:
            host.load_all()
            return host
        try:
            host.load_all()
        except PluginError as exc:
            raise ConfigError("plugins", redact(str(exc))) from None
        return host

    def _register_collectors(self, only: str | None = None) -> None:
        metrics = self.parts.metrics
        try:
            collectors = self.host.collectors()
        except Exception as exc:  # noqa: BLE001
            log.error("collecting plugin metrics failed", error=redact(str(exc)))
            return
        for plugin, items in collectors.items():
            if only is not None and plugin != only:
                continue
            metrics.remove_plugin_collectors(plugin)
            for problem in metrics.add_plugin_collectors(plugin, items):
                log.warning("plugin collector refused", plugin=plugin, problem=problem)

    # ------------------------------------------------------------------ lanes
    def _lane_settings(self, plugin: str) -> LaneSettings:
        """Configured routing for *plugin*, overlaid with what its subscriptions declare."""
        values = self.parts.config.routing_for(plugin)
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

    @property
    def _router(self) -> Router:
        """The daemon's router, which exists before any plugin is loaded."""
        router = self.parts.router
        assert router is not None, "plugin control used before the router was created"
        return router

    def _open_lane(self, plugin: str) -> None:
        with self._lane_lock:
            self._router.lane(plugin, self._lane_settings(plugin))
        self.parts.metrics.add_plugin(plugin, self._pinned_topics(plugin))

    def _pinned_topics(self, plugin: str) -> set[str]:
        """The exact topics *plugin*'s subscriptions pin (for its zero-valued series)."""
        from reviewd.api.event.expression import parse

        topics: set[str] = set()
        for subscription in self.host.subscriptions:
            if subscription.plugin != plugin:
                continue
            try:
                topics |= set(parse(subscription.expression).topics or ())
            except ValueError:
                continue
        return topics

    def _close_lane(self, plugin: str) -> None:
        """Drain *plugin*'s lane (up to the grace period) and drop its collectors."""
        self._router.remove_lane(plugin, self.parts.config.grace_period, self._tick)
        self.parts.metrics.remove_plugin_collectors(plugin)

    # ------------------------------------------------------------------ reloading
    def reload_plugin(self, name: str) -> bool:
        """Drain *name*'s lane, re-import the plugin, open a new lane and refill it."""
        router, metrics = self._router, self.parts.metrics
        with self._lane_lock:
            self._close_lane(name)
            try:
                record = self.host.reload(name)
            except PluginError as exc:
                log.error(
                    "plugin reload failed; keeping the running version",
                    plugin=name,
                    error=redact(str(exc)),
                )
                self._open_lane(name)
                router.refill([name])
                metrics.reloads.labels(outcome="failed").inc()
                return False
            if record.loaded:
                self._open_lane(name)
                publish_session_events(self.parts.session, self.host, [name])
                router.refill([name])
                self._register_collectors(only=name)
                log.info(
                    "plugin reloaded",
                    plugin=name,
                    subscriptions=[s.expression for s in record.subscriptions],
                )
                metrics.reloads.labels(outcome="ok").inc()
                return True
            log.error("plugin failed after reload", plugin=name, error=record.error)
            metrics.reloads.labels(outcome="failed").inc()
            return False

    def settings_differ(self) -> bool:
        """Whether the (reloaded) configuration's plugin paths or arguments differ from
        the running host's — then the host is replaced rather than each plugin reloaded."""
        config, host = self.parts.config, self.host
        return (
            list(config.plugin_paths or []) != list(host.paths)
            or config.plugin_arguments != host.arguments
            or config.per_plugin_arguments != host.plugin_arguments
        )

    def reload_all(self, replace_host: bool) -> None:
        """SIGHUP: a new host for new settings, else every plugin (failed ones too) again."""
        if replace_host:
            self._replace_host()
        else:
            for name in list(self.host.loaded if self.host else []):
                self.reload_plugin(name)
            for record in list(self.host.failures if self.host else []):
                self.reload_plugin(record.name)
        self.remember_fingerprints()

    def _replace_host(self) -> None:
        router = self._router
        with self._lane_lock:
            for name in list(router.lanes):
                self._close_lane(name)
            self.log_hook_errors("reviewd_stopping", self.host.stopping())
            for name in [r.name for r in self.host.plugins]:
                try:
                    self.host.unload(name)
                except PluginError:
                    pass
            self.host = None
            host = self._new_host(strict=False)
            self.host = host
            for name in host.loaded:
                self._open_lane(name)
            publish_session_events(self.parts.session, host)
            self._register_collectors()
            router.refill()
            self.log_hook_errors("reviewd_started", host.started())

    # ------------------------------------------------------------------ hot reload
    def remember_fingerprints(self) -> None:
        """Note each plugin's files as they are now (what later changes are measured against)."""
        if self.host is None:
            return
        self._fingerprints = {r.name: fingerprint(r.path) for r in self.host.plugins if r.path}

    def reload_changed(self) -> None:
        """``--foreground``: reload each plugin whose files changed since last noted."""
        for record in list(self.host.plugins if self.host else []):
            if not record.path:
                continue
            stamp = fingerprint(record.path)
            if stamp != self._fingerprints.get(record.name):
                self._fingerprints[record.name] = stamp
                log.info("plugin file changed; reloading", plugin=record.name, path=record.path)
                self.reload_plugin(record.name)

    # ------------------------------------------------------------------ daemon hooks
    def started(self) -> None:
        """Call the plugins' ``reviewd_started`` hooks (the daemon is ready)."""
        outcomes = self.host.started() if self.host is not None else []
        self.log_hook_errors("reviewd_started", outcomes)

    def stopping(self) -> None:
        """Call the plugins' ``reviewd_stopping`` hooks (the daemon is stopping)."""
        if self.host is not None:
            self.log_hook_errors("reviewd_stopping", self.host.stopping())

    def hub_gap(self, gap_start: Any, gap_end: Any) -> None:
        """Tell the plugins the event hub was disconnected from *gap_start* to *gap_end*."""
        if self.host is not None:
            self.log_hook_errors("reviewd_hub_gap", self.host.hub_gap(gap_start, gap_end))

    @staticmethod
    def log_hook_errors(hook: str, outcomes: list) -> None:
        """Log each plugin whose *hook* raised (the others ran; one plugin hurts only itself)."""
        for outcome in outcomes or []:
            if getattr(outcome, "error", None) is not None:
                log.error(
                    "plugin hook raised",
                    plugin=outcome.plugin,
                    hook=hook,
                    error=redact(f"{type(outcome.error).__name__}: {outcome.error}"),
                )
