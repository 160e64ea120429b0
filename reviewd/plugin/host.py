"""The daemon's plugin host: loads plugins and manages them while the daemon runs.

Beyond what classic discovery does, the host gives every plugin a stable, unique
name, attributes every subscription to its plugin (so the daemon can route,
measure and isolate per plugin), runs the pluggy hooks one plugin at a time,
enforces strict mode, and unloads or reloads one plugin without touching the rest.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from collections.abc import Iterable, Mapping
from typing import Any

import pluggy

from reviewd.api.exception import PluginError, redact
from reviewd.plugin import hookspecs
from reviewd.plugin.classic import run_classic_register, unsubscribe
from reviewd.plugin.entry_points import entry_point_path, installed_entry_points
from reviewd.plugin.hooks import (
    call_plugin,
    implements_hooks,
    run_registration_hook,
    validate_hookimpls,
)
from reviewd.plugin.importing import forget_modules, import_candidate, plugin_module_name
from reviewd.plugin.markers import PROJECT_NAME
from reviewd.plugin.paths import Candidate, find_candidates
from reviewd.plugin.records import (
    HookOutcome,
    PluginRecord,
    fail,
    log_failure,
    one_line,
    source_file,
)
from reviewd.plugin.registry import PluginHealth, Subscription
from reviewd.plugin.session_view import SessionView

__all__ = ["PluginHost"]

_log = logging.getLogger("reviewd.plugin")

#: The host imports each path plugin once, under this prefix and its name.
HOST_MODULE_PREFIX = "reviewd_plugin__"


class PluginHost:
    """Loads and manages the daemon's plugins.

    :param session: the ``reviewd.Session`` handed to plugins (its ``event_hub``
        carries their subscriptions).  Create it with ``plugin_paths=[]`` so the
        Session's own classic discovery does not load the plugins a second time.
    :param paths: plugin search paths (directories or ``.py`` files).
    :param arguments: global plugin arguments, given to every plugin.
    :param plugin_arguments: per-plugin sections ``{plugin name: mapping}``,
        overlaid on the global ones for that plugin.
    :param strict: make any plugin failure fatal: :meth:`load_all` unloads what
        it loaded and raises :class:`reviewd.api.exception.PluginError` with a
        one-line reason (the daemon exits 78).
    :param allow_world_writable: load from world-writable places anyway.
    :param entry_points: also load the ``reviewd.plugins`` entry-point group.
    :param ftrack_api_compat: let classic plugins ``import ftrack_api`` at all
        (False: leave imports alone, whatever *ftrack_api* says).
    :param ftrack_api: ``"reviewd"`` (default): ``import ftrack_api`` resolves to
        ``reviewd.api`` even when ftrack-python-api is installed, so the usual
        ``isinstance(session, ftrack_api.Session)`` guard passes; ``"installed"``:
        plugins get the real package (and guarded plugins are named in a warning).
    """

    def __init__(
        self,
        session: Any,
        paths: Iterable[str] = (),
        arguments: Mapping[str, Any] | None = None,
        plugin_arguments: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        strict: bool = False,
        allow_world_writable: bool = False,
        entry_points: bool = True,
        ftrack_api_compat: bool = True,
        ftrack_api: str = "reviewd",
    ) -> None:
        self.session = session
        self.paths = [str(p) for p in paths]
        self.arguments = dict(arguments or {})
        self.plugin_arguments = {k: dict(v) for k, v in (plugin_arguments or {}).items()}
        self.strict = strict
        self.allow_world_writable = allow_world_writable
        self.use_entry_points = entry_points
        self.ftrack_api_compat = ftrack_api_compat
        from reviewd.compat import MODES

        if ftrack_api not in MODES:
            raise PluginError(
                f"plugins.ftrack_api must be one of {', '.join(MODES)}, not {ftrack_api!r}"
            )
        self.ftrack_api_mode = ftrack_api
        self.manager = pluggy.PluginManager(PROJECT_NAME)
        self.manager.add_hookspecs(hookspecs)
        #: pluggy's hook relay, for callers that want plain pluggy semantics.
        self.hook = self.manager.hook
        #: Problems with the plugin paths themselves (refused, missing, unreadable).
        self.problems: list[str] = []
        self._records: list[PluginRecord] = []
        self._by_subscriber: dict[str, Subscription] = {}
        self._views: dict[str, Any] = {}
        # _lock guards the records and the subscriber map and is held only briefly, so
        # the daemon's dispatch thread (owner_of) never waits on plugin code; _operations
        # serialises load/unload/reload, which run plugin code.
        self._lock = threading.RLock()
        self._operations = threading.RLock()
        self._started = False

    # ------------------------------------------------------------- inspection
    @property
    def plugins(self) -> list[PluginRecord]:
        """Every plugin found, loaded or failed, in load order."""
        with self._lock:
            return list(self._records)

    @property
    def loaded(self) -> dict[str, PluginRecord]:
        with self._lock:
            return {r.name: r for r in self._records if r.loaded}

    @property
    def failures(self) -> list[PluginRecord]:
        with self._lock:
            return [r for r in self._records if r.error is not None]

    @property
    def subscriptions(self) -> list[Subscription]:
        with self._lock:
            return list(self._by_subscriber.values())

    def get(self, name: str) -> PluginRecord | None:
        with self._lock:
            for record in self._records:
                if record.name == name and record.error is None:
                    return record
            for record in self._records:
                if record.name == name:
                    return record
        return None

    def owner_of(self, subscriber_id: str) -> Subscription | None:
        """The attributed subscription (plugin and options) behind a hub subscriber."""
        with self._lock:
            return self._by_subscriber.get(str(subscriber_id))

    def arguments_for(self, name: str) -> dict[str, Any]:
        merged = dict(self.arguments)
        merged.update(self.plugin_arguments.get(name, {}))
        return merged

    # ------------------------------------------------------------- loading
    def load_all(self) -> list[PluginRecord]:
        """Find and load every plugin; return the records (see :attr:`plugins`).

        In strict mode, raise :class:`PluginError` after unloading everything if
        any plugin or plugin path failed.
        """
        with self._operations:
            if self.ftrack_api_compat:
                from reviewd import compat

                compat.install(self.ftrack_api_mode)
            for candidate in find_candidates(
                self.paths, allow_world_writable=self.allow_world_writable, problems=self.problems
            ):
                self._load_candidate(candidate)
            if self.use_entry_points:
                for entry_point in installed_entry_points():
                    self._load_entry_point(entry_point)
            if self.strict:
                self._enforce_strict()
        return self.plugins

    def _enforce_strict(self) -> None:
        reasons = [f"{r.describe()} failed to load: {r.error}" for r in self.failures]
        reasons += self.problems
        if not reasons:
            return
        for name in list(self.loaded):
            self.unload(name)
        more = f" (and {len(reasons) - 1} more problem(s), see the log)" if len(reasons) > 1 else ""
        raise PluginError(
            f"{reasons[0]}{more}; strict plugin mode makes this fatal: fix the plugin "
            f"or turn strict mode off"
        )

    def _duplicate(self, name: str) -> PluginRecord | None:
        for record in self._records:
            if record.name == name:
                return record
        return None

    def _already_loaded_path(self, real_path: str | None) -> PluginRecord | None:
        if real_path is None:
            return None
        for record in self._records:
            if record.path == real_path:
                return record
        return None

    def _new_record(self, record: PluginRecord) -> bool:
        """Add *record* unless its path or name is taken; False when it must be skipped."""
        with self._lock:
            same_path = self._already_loaded_path(record.path)
            if same_path is not None:
                _log.info(
                    "%s is the same code as already loaded %s; not importing it twice",
                    record.describe(),
                    same_path.describe(),
                )
                return False
            existing = self._duplicate(record.name)
            if existing is not None:
                record.module_name = None  # never touch the first plugin's module
            elif record.origin == "path":
                taken = {r.module_name for r in self._records}
                base, suffix = record.module_name, 2
                while record.module_name in taken:  # "a-b" and "a_b" sanitise alike
                    record.module_name = f"{base}_{suffix}"
                    suffix += 1
            self._records.append(record)
        if existing is not None:
            error = PluginError(
                f"two plugins are named {record.name!r}: {existing.source} and "
                f"{record.source}; rename one, plugin names must be unique"
            )
            record.error = str(error)
            log_failure(record)
            return False
        return True

    def _load_candidate(self, candidate: Candidate) -> PluginRecord | None:
        record = PluginRecord(
            candidate.name,
            candidate.path,
            "path",
            path=candidate.real_path,
            module_name=plugin_module_name(HOST_MODULE_PREFIX, candidate.name),
            candidate=candidate,
        )
        if not self._new_record(record):
            return None
        assert record.module_name is not None, "path plugins are always given a module name"
        try:
            module = import_candidate(candidate, record.module_name)
        except (Exception, SystemExit) as error:
            fail(record, error, "import failed")
            return record
        self._activate(record, module)
        return record

    def _load_entry_point(self, entry_point: Any) -> PluginRecord | None:
        dist = getattr(entry_point, "dist", None)
        dist_text = f", from {dist.name} {dist.version}" if dist is not None else ""
        record = PluginRecord(
            entry_point.name,
            f"entry point {entry_point.name} = {entry_point.value}{dist_text}",
            "entry-point",
            path=entry_point_path(entry_point),
            module_name=getattr(entry_point, "module", None),
            entry_point=entry_point,
        )
        if not self._new_record(record):
            return None
        try:
            plugin = entry_point.load()
        except (Exception, SystemExit) as error:
            fail(record, error, "import failed")
            return record
        self._activate(record, plugin)
        return record

    def _session_view(self, plugin: str) -> Any:
        """A new view for *plugin* (at each load): the session it registers with, so that
        its patches to the session stay its own (see :mod:`reviewd.plugin.session_view`)."""
        if self.session is None:
            return None
        view = SessionView(self.session, plugin)
        self._views[plugin] = view
        return view

    def session_view(self, plugin: str) -> Any:
        """The session *plugin* was given (its view), for events that carry the session
        (``ftrack.api.session.ready``): ``event["data"]["session"] is session`` holds
        in the plugin as it does under ftrack_api."""
        return self._views.get(plugin, self.session)

    def _activate(self, record: PluginRecord, plugin: Any) -> None:
        """Register *plugin*'s hooks and subscriptions; on any failure, undo them."""
        is_pluggy = implements_hooks(self.manager, plugin)
        register: Any = getattr(plugin, "register", None)
        is_classic = callable(register)
        kinds = [k for k, present in (("classic", is_classic), ("pluggy", is_pluggy)) if present]
        record.kind = "+".join(kinds) or "none"
        subscriptions: list[Subscription] = []
        phase = "import failed"
        try:
            if is_pluggy:
                phase = "invalid hook implementation"
                validate_hookimpls(self.manager, record.name, plugin)
                self.manager.register(plugin, name=record.name)
            if is_classic:
                phase = "register() raised"
                subscriptions += run_classic_register(
                    register,
                    record.name,
                    record.source,
                    (self._session_view(record.name),),
                    self.arguments_for(record.name),
                )
            if is_pluggy:
                phase = "reviewd_register hook raised"
                run_registration_hook(
                    self.manager,
                    self._session_view(record.name),
                    record.name,
                    self.arguments_for(record.name),
                    subscriptions,
                )
        except (Exception, SystemExit) as error:
            hub = getattr(self.session, "event_hub", None)
            for subscription in subscriptions:
                unsubscribe(hub, subscription.subscriber_id, record.name)
            if self.manager.get_plugin(record.name) is not None:
                self.manager.unregister(name=record.name)
            if record.module_name and record.origin == "path":
                forget_modules(record.module_name)
            fail(record, error, phase)
            return
        with self._lock:
            record.module = plugin  # only now does the record count as loaded
            record.subscriptions = subscriptions
            for subscription in subscriptions:
                self._by_subscriber[subscription.subscriber_id] = subscription
        if record.kind == "none":
            message = "defines neither register() nor @reviewd.hookimpl functions; nothing to run"
            record.warnings.append(message)
            _log.warning("%s %s", record.describe(), message, extra={"plugin": record.name})
        if is_classic and self.ftrack_api_compat:
            from reviewd import compat

            compat.warn_if_guard_refuses(record.name, source_file(record))
        if is_classic and not is_pluggy and not subscriptions:
            message = _registered_nothing(record)
            record.warnings.append(message)
            _log.warning("%s %s", record.describe(), message, extra={"plugin": record.name})
        _log.info(
            "loaded %s as %s with %d subscription(s)",
            record.describe(),
            record.kind,
            len(subscriptions),
            extra={"plugin": record.name, "plugin_kind": record.kind},
        )

    # ------------------------------------------------------------- unload / reload
    def unload(self, name: str) -> PluginRecord:
        """Stop one plugin: call its ``reviewd_stopping`` (if the host is started),
        remove its subscriptions from the hub and its hooks, forget its module."""
        with self._operations:
            record = self.get(name)
            if record is None:
                raise PluginError(f"no plugin named {name!r} is loaded")
            self._deactivate(record)
            with self._lock:
                self._records.remove(record)
        _log.info("unloaded %s", record.describe(), extra={"plugin": name})
        return record

    def _deactivate(self, record: PluginRecord) -> None:
        if record.loaded and self._started:
            self._call_each("reviewd_stopping", [record.name], session=self.session)
        hub = getattr(self.session, "event_hub", None)
        for subscription in record.subscriptions:
            unsubscribe(hub, subscription.subscriber_id, record.name)
            with self._lock:
                self._by_subscriber.pop(subscription.subscriber_id, None)
        record.subscriptions = []
        if self.manager.get_plugin(record.name) is not None and record.loaded:
            self.manager.unregister(name=record.name)
        if record.module_name:
            forget_modules(record.module_name)
        record.module = None

    def reload(self, name: str) -> PluginRecord:
        """Re-import one plugin from its source and register it again.

        The new code is imported first: if that fails, the running version is
        kept and the error is raised as :class:`PluginError`.  Otherwise the old
        subscriptions are removed and the new ``register()``/hooks run; a plugin
        whose new registration fails is left failed (see its record).
        """
        with self._operations:
            record = self.get(name)
            if record is None:
                raise PluginError(f"no plugin named {name!r} is known")
            previous = forget_modules(record.module_name) if record.module_name else {}
            try:
                if record.candidate is not None:
                    assert record.module_name is not None, "path plugins have a module name"
                    new_module = import_candidate(record.candidate, record.module_name)
                else:
                    new_module = record.entry_point.load()
            except (Exception, SystemExit) as error:
                sys.modules.update(previous)
                reason = f"{record.describe()} was not reloaded: {one_line(error)}"
                if record.loaded:
                    reason += "; the previous version keeps running"
                _log.error(reason, extra={"plugin": name})
                _log.debug("%s", redact("".join(traceback.format_exception(error))))
                raise PluginError(reason) from error
            fresh = {
                k: v
                for k, v in sys.modules.items()
                if k == record.module_name
                or (record.module_name and k.startswith(record.module_name + "."))
            }
            sys.modules.update(previous)  # let _deactivate forget the old ones cleanly
            self._deactivate(record)
            sys.modules.update(fresh)
            record.error = record.traceback = None
            record.warnings = []
            self._activate(record, new_module)
            if record.loaded and self._started:
                self._call_each("reviewd_started", [name], session=self.session)
        _log.info("reloaded %s", record.describe(), extra={"plugin": name})
        return record

    def _call_each(
        self, hook_name: str, names: Iterable[str] | None = None, /, **kwargs: Any
    ) -> list[HookOutcome]:
        outcomes = []
        wanted = None if names is None else set(names)
        for record in self.plugins:
            if not record.loaded or "pluggy" not in record.kind:
                continue
            if wanted is not None and record.name not in wanted:
                continue
            try:
                for result in call_plugin(self.manager, record.name, hook_name, **kwargs):
                    outcomes.append(HookOutcome(record.name, result))
            except Exception as error:
                _log.error(
                    "%s: hook %s raised %s",
                    record.describe(),
                    hook_name,
                    one_line(error),
                    extra={"plugin": record.name, "hook": hook_name},
                )
                _log.debug("%s", redact("".join(traceback.format_exception(error))))
                outcomes.append(HookOutcome(record.name, error=error))
        return outcomes

    def call_each(self, hook_name: str, /, **kwargs: Any) -> list[HookOutcome]:
        """Call a hook on every loaded plugin, one at a time; a plugin that raises
        is logged and reported in its :class:`HookOutcome`, the others still run."""
        return self._call_each(hook_name, None, **kwargs)

    def started(self) -> list[HookOutcome]:
        self._started = True
        return self._call_each("reviewd_started", session=self.session)

    def stopping(self) -> list[HookOutcome]:
        outcomes = self._call_each("reviewd_stopping", session=self.session)
        self._started = False
        return outcomes

    def hub_gap(self, gap_start: Any, gap_end: Any) -> list[HookOutcome]:
        return self._call_each(
            "reviewd_hub_gap", session=self.session, gap_start=gap_start, gap_end=gap_end
        )

    def health(self) -> dict[str, PluginHealth]:
        """Each plugin's health: failed loads and raising health hooks are not ready."""
        report: dict[str, PluginHealth] = {}
        for record in self.plugins:
            if record.error is not None:
                report[record.name] = PluginHealth(False, (record.error,))
            elif record.loaded:
                nothing = [w for w in record.warnings if w.startswith(REGISTERED_NOTHING)]
                # A classic plugin with no subscription will never run: not ready.
                report[record.name] = (
                    PluginHealth(False, tuple(nothing)) if nothing else (PluginHealth())
                )
        for outcome in self._call_each("reviewd_health", session=self.session):
            if outcome.error is not None:
                problem = f"health hook raised {one_line(outcome.error)}"
                report[outcome.plugin] = PluginHealth(False, (problem,))
                continue
            try:
                health = PluginHealth.coerce(outcome.result)
            except TypeError as error:
                health = PluginHealth(
                    False, (f"health hook returned something unreadable: {error}",)
                )
            if health is not None:
                report[outcome.plugin] = health
        return report

    def collectors(self) -> dict[str, list[Any]]:
        """Prometheus collectors each plugin wants exposed, by plugin name."""
        collected: dict[str, list[Any]] = {}
        for outcome in self._call_each("reviewd_prometheus_collectors", session=self.session):
            if outcome.error is None and outcome.result is not None:
                collected.setdefault(outcome.plugin, []).extend(outcome.result)
        return collected


#: Start of the warning for a classic plugin whose register() subscribed nothing;
#: ``reviewd plugins check`` and the daemon's readiness look for it.
REGISTERED_NOTHING = "register() subscribed nothing"


def _registered_nothing(record: PluginRecord) -> str:
    """The one-line problem for a classic plugin that made no subscription, with its likely cause."""
    from reviewd import compat

    path = source_file(record)
    guard: list[int] = []
    if path:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                guard = compat.guard_lines(handle.read())
        except OSError:
            pass
    if guard and not compat.installed():
        cause = (
            f"its isinstance(session, ftrack_api.Session) check (line {guard[0]}) refused "
            "reviewd's session because it got the real ftrack_api; set plugins.ftrack_api = "
            '"reviewd"'
        )
    elif guard:
        cause = (
            f"its session check (line {guard[0]}) returned early, or register() returned "
            "before subscribing"
        )
    else:
        cause = (
            "register() returned before calling session.event_hub.subscribe(), or it "
            "subscribes on a different session"
        )
    return f"{REGISTERED_NOTHING}: likely cause: {cause}"
