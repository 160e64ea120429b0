"""Finding, loading, attributing and unloading plugins.

Two kinds of plugin run side by side:

* **classic** ftrack plugins: a module with ``register(session, **kwargs)`` that
  subscribes callbacks on ``session.event_hub`` itself — what studios already have;
* **pluggy** plugins: a module (or any object) with functions marked
  ``@reviewd.hookimpl`` implementing the hooks in :mod:`reviewd.hookspecs`.

A module with both is both.  Plugins come from plugin paths (every ``.py`` file and
every package directory; plain sub-directories are searched too, as ftrack does)
and from installed distributions through the ``reviewd.plugins`` entry-point group.

:func:`discover` is the classic ftrack discovery a ``Session`` runs at construction.
:class:`PluginHost` is what the daemon uses: stable names, attribution of every
subscription to its plugin, failure isolation (or strict mode), unload and reload.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import inspect
import logging
import os
import re
import stat
import sys
import threading
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pluggy

from reviewd import hookspecs
from reviewd.exception import PluginError, redact
from reviewd.registry import (
    DEFAULT_PRIORITY,
    PluginHealth,
    Subscription,
    SubscriptionOptions,
    SubscriptionRegistry,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "Candidate",
    "HookOutcome",
    "PluginHost",
    "PluginRecord",
    "cull_arguments",
    "discover",
    "find_candidates",
    "hookimpl",
    "split_plugin_paths",
]

_log = logging.getLogger("reviewd.plugin")

PROJECT_NAME = "reviewd"
ENTRY_POINT_GROUP = "reviewd.plugins"

#: Marks a function as the implementation of a hook in :mod:`reviewd.hookspecs`.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

_HOST_MODULE_PREFIX = "reviewd_plugin__"
_DISCOVER_MODULE_PREFIX = "reviewd_discovered__"


# --------------------------------------------------------------------------- paths
def split_plugin_paths(value: str | None) -> list[str]:
    """Split a ``FTRACK_EVENT_PLUGIN_PATH``-style string on ``os.pathsep``."""
    return [part.strip() for part in (value or "").split(os.pathsep) if part.strip()]


@dataclass(frozen=True)
class Candidate:
    """A module found on a plugin path: a ``.py`` file or a package directory."""

    name: str
    path: str
    is_package: bool

    @property
    def real_path(self) -> str:
        return os.path.realpath(self.path)


def _world_writable(path: str) -> bool:
    try:
        return bool(os.stat(path).st_mode & stat.S_IWOTH)
    except OSError:
        return False


def _refusal(kind: str, path: str) -> str:
    return (
        f"refusing to load plugins from world-writable {kind} {path}: any user on this "
        f"host could put code there that reviewd would run; fix with 'chmod o-w {path}' "
        f"or set allow_world_writable to accept the risk"
    )


def find_candidates(
    paths: Iterable[str],
    *,
    allow_world_writable: bool = False,
    problems: list[str] | None = None,
) -> list[Candidate]:
    """Return the plugin modules on *paths*, in a stable order.

    A path may be a directory or a single ``.py`` file.  Hidden entries,
    ``__pycache__`` and an ``__init__.py`` directly in a searched directory are
    ignored; a directory with ``__init__.py`` is one package
    plugin; other directories are searched recursively.  World-writable
    directories and files are refused (logged, and appended to *problems*) unless
    *allow_world_writable*.  A real path reached twice (overlapping paths,
    symlinks) is returned once.
    """
    problems = problems if problems is not None else []
    found: list[Candidate] = []
    seen: set[str] = set()

    def refuse(kind: str, path: str) -> bool:
        if allow_world_writable or not _world_writable(path):
            return False
        message = _refusal(kind, path)
        _log.error(message, extra={"plugin_path": path})
        problems.append(message)
        return True

    def add(candidate: Candidate) -> None:
        real = candidate.real_path
        if real in seen:
            _log.debug("plugin %s reached twice (%s); loading it once", real, candidate.path)
            return
        seen.add(real)
        found.append(candidate)

    def package_is_safe(directory: str) -> bool:
        if refuse("directory", directory):
            return False
        for base, directories, filenames in os.walk(directory):
            directories[:] = [d for d in directories if not d.startswith(".")]
            for entry in [*directories, *filenames]:
                full = os.path.join(base, entry)
                if refuse("directory" if os.path.isdir(full) else "file", full):
                    return False
        return True

    def walk(directory: str, visited: set[str]) -> None:
        real = os.path.realpath(directory)
        if real in visited:
            return
        visited.add(real)
        if refuse("directory", directory):
            return
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as error:
            message = f"cannot read plugin directory {directory}: {error.strerror or error}"
            _log.error(message)
            problems.append(message)
            return
        for entry in entries:
            if entry.name.startswith(".") or entry.name in ("__pycache__", "__init__.py"):
                # __init__.py directly on a search path is package glue, not a plugin
                continue
            if entry.is_dir():
                if os.path.isfile(os.path.join(entry.path, "__init__.py")):
                    if package_is_safe(entry.path):
                        add(Candidate(entry.name, entry.path, True))
                else:
                    walk(entry.path, visited)
            elif entry.name.endswith(".py") and entry.is_file():
                if not refuse("file", entry.path):
                    add(Candidate(entry.name[:-3], entry.path, False))

    for raw in paths:
        path = str(raw).strip()
        if not path:  # an empty entry would mean the current directory: ignore it
            continue
        path = os.path.abspath(os.path.expanduser(path))
        if os.path.isdir(path):
            walk(path, set())
        elif os.path.isfile(path) and path.endswith(".py"):
            if not refuse("file", path):
                add(Candidate(os.path.basename(path)[:-3], path, False))
        else:
            message = f"plugin path {path} does not exist or is not a directory or .py file"
            _log.warning(message)
            problems.append(message)
    return found


# --------------------------------------------------------------------------- import
class _FreshSourceLoader(importlib.machinery.SourceFileLoader):
    """Compile the plugin from its source every time, bypassing ``__pycache__``.

    A reload must see an edit made within the same second as the previous load
    (the bytecode cache only compares whole-second mtimes and sizes), and plugin
    directories are often read-only to the daemon's user.
    """

    def get_code(self, fullname: str):
        path = self.get_filename(fullname)
        return compile(self.get_data(path), path, "exec", dont_inherit=True)


def _module_name(prefix: str, name: str) -> str:
    return prefix + re.sub(r"\W", "_", name)


def _forget_modules(module_name: str) -> dict[str, ModuleType]:
    """Remove *module_name* and its submodules from ``sys.modules``; return them."""
    removed = {}
    for key in list(sys.modules):
        if key == module_name or key.startswith(module_name + "."):
            removed[key] = sys.modules.pop(key)
    return removed


def _fresh_finders_for(package_directory: str) -> None:
    """Make the package's own submodules compile from source too (see above).

    The import system looks a directory's finder up in ``sys.path_importer_cache``
    first, so placing one there for each directory of the package is enough;
    nothing outside the plugin's directories is affected.
    """
    loaders = (
        (importlib.machinery.ExtensionFileLoader, importlib.machinery.EXTENSION_SUFFIXES),
        (_FreshSourceLoader, importlib.machinery.SOURCE_SUFFIXES),
        (importlib.machinery.SourcelessFileLoader, importlib.machinery.BYTECODE_SUFFIXES),
    )
    for base, directories, _files in os.walk(package_directory):
        directories[:] = [d for d in directories if not d.startswith(".") and d != "__pycache__"]
        sys.path_importer_cache[base] = importlib.machinery.FileFinder(base, *loaders)


def import_candidate(candidate: Candidate, module_name: str) -> ModuleType:
    """Execute *candidate* as a fresh module called *module_name*.

    The module is in ``sys.modules`` while it runs (dataclasses, pickling and a
    package's relative imports need that) and is removed again if it fails.
    """
    if candidate.is_package:
        filename = os.path.join(candidate.path, "__init__.py")
        locations: list[str] | None = [candidate.path]
        _fresh_finders_for(candidate.path)
    else:
        filename, locations = candidate.path, None
    loader = _FreshSourceLoader(module_name, filename)
    spec = importlib.util.spec_from_file_location(
        module_name, filename, loader=loader, submodule_search_locations=locations
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        loader.exec_module(module)
    except BaseException:
        _forget_modules(module_name)
        raise
    return module


# --------------------------------------------------------------------------- culling
def cull_arguments(
    function: Callable,
    positional_arguments: Sequence[Any] = (),
    keyword_arguments: Mapping[str, Any] | None = None,
) -> tuple[tuple, dict, list[str]]:
    """Fit the arguments to what *function*'s signature accepts.

    Returns ``(args, kwargs, dropped)`` where *dropped* names what was left out:
    keyword names the function does not accept (a ``**kwargs`` function accepts
    them all) and, for a function taking fewer positionals than given, the
    surplus positions as ``"<positional N>"``.  A keyword that would collide
    with a positional already passed is dropped too.
    """
    keyword_arguments = dict(keyword_arguments or {})
    positional_arguments = tuple(positional_arguments)
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):  # no introspectable signature: pass everything
        return positional_arguments, keyword_arguments, []
    kinds = {p.kind for p in parameters}
    positional_parameters = [
        p
        for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    dropped: list[str] = []
    if inspect.Parameter.VAR_POSITIONAL in kinds:
        args = positional_arguments
    else:
        args = positional_arguments[: len(positional_parameters)]
        dropped.extend(
            f"<positional {index}>" for index in range(len(args), len(positional_arguments))
        )
    consumed = {p.name for p in positional_parameters[: len(args)]}
    if inspect.Parameter.VAR_KEYWORD in kinds:
        accepted = None
    else:
        accepted = {
            p.name
            for p in parameters
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        }
    kwargs = {}
    for key, value in keyword_arguments.items():
        if key in consumed or (accepted is not None and key not in accepted):
            dropped.append(key)
        else:
            kwargs[key] = value
    return args, kwargs, dropped


# --------------------------------------------------------------------------- records
@dataclass
class PluginRecord:
    """What the host knows about one plugin, loaded or not.

    ``kind`` is ``"classic"``, ``"pluggy"``, ``"classic+pluggy"`` or ``"none"``
    (the module defines neither ``register()`` nor hook implementations: it is
    imported, warned about and otherwise ignored).  ``error`` is a one-line
    description of why the plugin is not running, ``traceback`` the detail.
    """

    name: str
    source: str
    origin: str  # "path" or "entry-point"
    path: str | None = None
    kind: str = "none"
    module: Any = None
    subscriptions: list[Subscription] = field(default_factory=list)
    error: str | None = None
    traceback: str | None = None
    warnings: list[str] = field(default_factory=list)
    module_name: str | None = None
    candidate: Candidate | None = None
    entry_point: Any = None

    @property
    def loaded(self) -> bool:
        return self.error is None and self.module is not None

    def describe(self) -> str:
        return f"plugin {self.name!r} ({self.source})"


@dataclass(frozen=True)
class HookOutcome:
    """The result of calling one hook on one plugin: a value or the error it raised."""

    plugin: str
    result: Any = None
    error: BaseException | None = None


def _one_line(error: BaseException) -> str:
    if isinstance(error, SyntaxError) and error.lineno:
        text = f"SyntaxError: {error.msg} (line {error.lineno})"
    else:
        detail = str(error).strip().splitlines()
        text = f"{type(error).__name__}: {detail[0]}" if detail else type(error).__name__
    return redact(text)


def _plugin_hub(positional_arguments: Sequence[Any]) -> Any:
    for value in positional_arguments:
        hub = getattr(value, "event_hub", None)
        if hub is not None:
            return hub
    return None


def _subscribers(hub: Any) -> dict[str, Any]:
    if hub is None:
        return {}
    return {str(s.id): s for s in list(getattr(hub, "subscribers", ()) or ())}


def _options_of(subscriber: Any) -> SubscriptionOptions:
    priority = getattr(subscriber, "priority", DEFAULT_PRIORITY)
    try:
        return SubscriptionOptions(priority=priority)
    except PluginError:
        return SubscriptionOptions()


def _unsubscribe(hub: Any, subscriber_id: str, plugin: str) -> None:
    try:
        hub.unsubscribe(subscriber_id)
    except Exception as error:  # already gone, hub closed: nothing left to undo
        _log.debug("plugin %r: unsubscribing %s failed: %s", plugin, subscriber_id, error)


def run_classic_register(
    register: Callable,
    plugin: str,
    source: str,
    positional_arguments: Sequence[Any],
    keyword_arguments: Mapping[str, Any],
) -> list[Subscription]:
    """Call a classic ``register()`` and attribute the subscriptions it made.

    The hub's subscribers are compared before and after the call; the new ones
    belong to *plugin*.  If ``register()`` raises, what it had subscribed is
    unsubscribed again so a failed plugin leaves nothing behind.
    """
    hub = _plugin_hub(positional_arguments)
    before = _subscribers(hub)
    args, kwargs, dropped = cull_arguments(register, positional_arguments, keyword_arguments)
    if dropped:
        _log.warning(
            "plugin %r (%s): register() does not accept %s; dropped %s",
            plugin,
            source,
            ", ".join(repr(d) for d in dropped),
            "it" if len(dropped) == 1 else "them",
            extra={"plugin": plugin, "dropped_arguments": dropped},
        )
    try:
        register(*args, **kwargs)
    except BaseException:
        for subscriber_id in set(_subscribers(hub)) - set(before):
            _unsubscribe(hub, subscriber_id, plugin)
        raise
    return [
        Subscription(plugin, subscriber_id, str(s.subscription), _options_of(s), "register")
        for subscriber_id, s in _subscribers(hub).items()
        if subscriber_id not in before
    ]


def _log_failure(record: PluginRecord) -> None:
    _log.error(
        "%s failed to load and was skipped: %s",
        record.describe(),
        record.error,
        extra={"plugin": record.name, "plugin_source": record.source},
    )
    if record.traceback:
        _log.debug("%s traceback:\n%s", record.describe(), record.traceback)


def _fail(record: PluginRecord, error: BaseException, phase: str) -> None:
    record.error = f"{phase}: {_one_line(error)}" if phase else _one_line(error)
    record.traceback = redact("".join(traceback.format_exception(error)))
    record.module = None
    record.subscriptions = []
    _log_failure(record)


# --------------------------------------------------------------------------- discover
def discover(
    paths: Iterable[str],
    positional_arguments: Sequence[Any] = (),
    keyword_arguments: Mapping[str, Any] | None = None,
    *,
    allow_world_writable: bool = False,
    ftrack_api_compat: bool = True,
) -> list[PluginRecord]:
    """Classic ftrack discovery: import every plugin module and call its ``register``.

    ``register(*positional_arguments, **keyword_arguments)`` is called with the
    keyword arguments culled to what its signature accepts (a warning names the
    dropped ones).  A module that fails to import or whose ``register`` raises is
    logged and skipped.  Each call imports the modules afresh, as ftrack does, so
    every Session gets its own registration.  Hook implementations in these
    modules are ignored here: hooks need the daemon's :class:`PluginHost`.

    With *ftrack_api_compat*, ``import ftrack_api`` inside a plugin resolves to
    reviewd's classes when the real package is not installed.
    """
    if ftrack_api_compat:
        from reviewd import compat

        compat.install()
    positional_arguments = tuple(positional_arguments or ())
    keyword_arguments = dict(keyword_arguments or {})
    records = []
    for candidate in find_candidates(paths, allow_world_writable=allow_world_writable):
        record = PluginRecord(
            candidate.name, candidate.path, "path", path=candidate.real_path, candidate=candidate
        )
        records.append(record)
        module_name = f"{_module_name(_DISCOVER_MODULE_PREFIX, candidate.name)}_{uuid.uuid4().hex}"
        try:
            module = import_candidate(candidate, module_name)
        except (Exception, SystemExit) as error:
            _fail(record, error, "import failed")
            continue
        register = getattr(module, "register", None)
        if not callable(register):
            record.module = module
            message = "defines no register() function at module level; nothing to call"
            record.warnings.append(message)
            _log.warning("%s %s", record.describe(), message)
            continue
        try:
            record.subscriptions = run_classic_register(
                register, candidate.name, candidate.path, positional_arguments, keyword_arguments
            )
        except (Exception, SystemExit) as error:
            _fail(record, error, "register() raised")
            continue
        record.module = module
        record.kind = "classic"
        _log.info(
            "loaded %s with %d subscription(s)",
            record.describe(),
            len(record.subscriptions),
            extra={"plugin": record.name},
        )
    return records


# --------------------------------------------------------------------------- host
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
        it loaded and raises :class:`reviewd.exception.PluginError` with a
        one-line reason (the daemon exits 78).
    :param allow_world_writable: load from world-writable places anyway.
    :param entry_points: also load the ``reviewd.plugins`` entry-point group.
    :param ftrack_api_compat: make ``import ftrack_api`` resolve to reviewd's
        classes when the real package is not installed.
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
    ) -> None:
        self.session = session
        self.paths = [str(p) for p in paths]
        self.arguments = dict(arguments or {})
        self.plugin_arguments = {k: dict(v) for k, v in (plugin_arguments or {}).items()}
        self.strict = strict
        self.allow_world_writable = allow_world_writable
        self.use_entry_points = entry_points
        self.ftrack_api_compat = ftrack_api_compat
        self.manager = pluggy.PluginManager(PROJECT_NAME)
        self.manager.add_hookspecs(hookspecs)
        #: pluggy's hook relay, for callers that want plain pluggy semantics.
        self.hook = self.manager.hook
        #: Problems with the plugin paths themselves (refused, missing, unreadable).
        self.problems: list[str] = []
        self._records: list[PluginRecord] = []
        self._by_subscriber: dict[str, Subscription] = {}
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

                compat.install()
            for candidate in find_candidates(
                self.paths, allow_world_writable=self.allow_world_writable, problems=self.problems
            ):
                self._load_candidate(candidate)
            if self.use_entry_points:
                for entry_point in _entry_points():
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
            _log_failure(record)
            return False
        return True

    def _load_candidate(self, candidate: Candidate) -> PluginRecord | None:
        record = PluginRecord(
            candidate.name,
            candidate.path,
            "path",
            path=candidate.real_path,
            module_name=_module_name(_HOST_MODULE_PREFIX, candidate.name),
            candidate=candidate,
        )
        if not self._new_record(record):
            return None
        try:
            module = import_candidate(candidate, record.module_name)
        except (Exception, SystemExit) as error:
            _fail(record, error, "import failed")
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
            path=_entry_point_path(entry_point),
            module_name=getattr(entry_point, "module", None),
            entry_point=entry_point,
        )
        if not self._new_record(record):
            return None
        try:
            plugin = entry_point.load()
        except (Exception, SystemExit) as error:
            _fail(record, error, "import failed")
            return record
        self._activate(record, plugin)
        return record

    def _activate(self, record: PluginRecord, plugin: Any) -> None:
        """Register *plugin*'s hooks and subscriptions; on any failure, undo them."""
        is_pluggy = any(
            self.manager.parse_hookimpl_opts(plugin, attribute) is not None
            for attribute in dir(plugin)
        )
        register = getattr(plugin, "register", None)
        is_classic = callable(register)
        record.kind = "+".join(
            kind for kind, present in (("classic", is_classic), ("pluggy", is_pluggy)) if present
        ) or "none"
        subscriptions: list[Subscription] = []
        phase = "import failed"
        try:
            if is_pluggy:
                phase = "invalid hook implementation"
                self._validate_hookimpls(record.name, plugin)
                self.manager.register(plugin, name=record.name)
            if is_classic:
                phase = "register() raised"
                subscriptions += run_classic_register(
                    register,
                    record.name,
                    record.source,
                    (self.session,),
                    self.arguments_for(record.name),
                )
            if is_pluggy:
                phase = "reviewd_register hook raised"
                self._run_registration_hook(record, subscriptions)
        except (Exception, SystemExit) as error:
            hub = getattr(self.session, "event_hub", None)
            for subscription in subscriptions:
                _unsubscribe(hub, subscription.subscriber_id, record.name)
            if self.manager.get_plugin(record.name) is not None:
                self.manager.unregister(name=record.name)
            if record.module_name and record.origin == "path":
                _forget_modules(record.module_name)
            _fail(record, error, phase)
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

            compat.warn_if_guard_refuses(record.name, _source_file(record))
        _log.info(
            "loaded %s as %s with %d subscription(s)",
            record.describe(),
            record.kind,
            len(subscriptions),
            extra={"plugin": record.name, "plugin_kind": record.kind},
        )

    def _validate_hookimpls(self, name: str, plugin: Any) -> None:
        """Check hook names and arguments before pluggy sees them.

        pluggy would reject a wrong argument with a multi-line message and accept
        an unknown hook name silently; a plugin author needs one line naming the
        hook, the offending name and what is allowed.
        """
        known = sorted(n for n in dir(hookspecs) if n.startswith("reviewd_"))
        for attribute in dir(plugin):
            options = self.manager.parse_hookimpl_opts(plugin, attribute)
            if options is None:
                continue
            hook_name = options.get("specname") or attribute
            if hook_name not in known:
                if options.get("optionalhook"):
                    continue
                raise PluginError(
                    f"plugin {name!r} implements unknown hook {hook_name!r}; "
                    f"known hooks: {', '.join(known)}"
                )
            spec_arguments = list(inspect.signature(getattr(hookspecs, hook_name)).parameters)
            try:
                parameters = inspect.signature(getattr(plugin, attribute)).parameters
            except (TypeError, ValueError):
                continue
            unknown = [
                p.name
                for p in parameters.values()
                if p.name not in spec_arguments
                and p.name != "self"
                and p.default is inspect.Parameter.empty
                and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
            ]
            if unknown:
                raise PluginError(
                    f"plugin {name!r}: hook {hook_name!r} asks for unknown argument(s) "
                    f"{', '.join(repr(u) for u in unknown)}; it may take "
                    f"{', '.join(spec_arguments)}"
                )

    def _run_registration_hook(self, record: PluginRecord, placed: list[Subscription]) -> None:
        """Run the plugin's ``reviewd_register`` and subscribe what it declared.

        Each placed subscription is appended to *placed* at once, so that a
        failure part-way lets the caller roll back everything placed so far.
        """
        registry = SubscriptionRegistry(record.name)
        self._call_plugin(
            record.name,
            "reviewd_register",
            session=self.session,
            registry=registry,
            arguments=self.arguments_for(record.name),
            name=record.name,
        )
        hub = getattr(self.session, "event_hub", None)
        if registry.declarations and hub is None:
            raise PluginError(f"plugin {record.name!r} declared subscriptions but the session has no event hub")
        for declaration in registry.declarations:
            metadata = dict(declaration.metadata) or None
            subscriber_id = hub.subscribe(
                declaration.expression,
                declaration.handler,
                subscriber=metadata,
                priority=declaration.options.priority,
            )
            placed.append(
                Subscription(
                    record.name,
                    str(subscriber_id),
                    declaration.expression,
                    declaration.options,
                    "hook",
                )
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
            _unsubscribe(hub, subscription.subscriber_id, record.name)
            with self._lock:
                self._by_subscriber.pop(subscription.subscriber_id, None)
        record.subscriptions = []
        if self.manager.get_plugin(record.name) is not None and record.loaded:
            self.manager.unregister(name=record.name)
        if record.module_name:
            _forget_modules(record.module_name)
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
            previous = _forget_modules(record.module_name) if record.module_name else {}
            try:
                if record.candidate is not None:
                    new_module = import_candidate(record.candidate, record.module_name)
                else:
                    new_module = record.entry_point.load()
            except (Exception, SystemExit) as error:
                sys.modules.update(previous)
                reason = f"{record.describe()} was not reloaded: {_one_line(error)}"
                if record.loaded:
                    reason += "; the previous version keeps running"
                _log.error(reason, extra={"plugin": name})
                _log.debug("%s", redact("".join(traceback.format_exception(error))))
                raise PluginError(reason) from error
            fresh = {k: v for k, v in sys.modules.items() if k == record.module_name
                     or (record.module_name and k.startswith(record.module_name + "."))}
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

    # ------------------------------------------------------------- hooks
    def _call_plugin(self, plugin_name: str, hook_name: str, /, **kwargs: Any) -> list[Any]:
        """Call *hook_name* on one plugin only, letting its exception propagate."""
        caller = getattr(self.manager.hook, hook_name)
        results = []
        for impl in caller.get_hookimpls():
            if impl.plugin_name != plugin_name or impl.hookwrapper or getattr(impl, "wrapper", False):
                continue
            results.append(impl.function(*[kwargs[arg] for arg in impl.argnames]))
        return results

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
                for result in self._call_plugin(record.name, hook_name, **kwargs):
                    outcomes.append(HookOutcome(record.name, result))
            except Exception as error:
                _log.error(
                    "%s: hook %s raised %s",
                    record.describe(),
                    hook_name,
                    _one_line(error),
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
                report[record.name] = PluginHealth()
        for outcome in self._call_each("reviewd_health", session=self.session):
            if outcome.error is not None:
                problem = f"health hook raised {_one_line(outcome.error)}"
                report[outcome.plugin] = PluginHealth(False, (problem,))
                continue
            try:
                health = PluginHealth.coerce(outcome.result)
            except TypeError as error:
                health = PluginHealth(False, (f"health hook returned something unreadable: {error}",))
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


# --------------------------------------------------------------------------- helpers
def _entry_points() -> list[Any]:
    from importlib.metadata import entry_points

    unique = {}
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        unique.setdefault((entry_point.name, entry_point.value), entry_point)
    return sorted(unique.values(), key=lambda ep: ep.name)


def _entry_point_path(entry_point: Any) -> str | None:
    """The real path of the code an entry point would import, without importing it."""
    module = getattr(entry_point, "module", None)
    if not module:
        return None
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not os.path.isfile(spec.origin):
        return None
    origin = os.path.realpath(spec.origin)
    if spec.submodule_search_locations is not None:
        return os.path.dirname(origin)
    return origin


def _source_file(record: PluginRecord) -> str | None:
    if record.candidate is not None:
        if record.candidate.is_package:
            return os.path.join(record.candidate.path, "__init__.py")
        return record.candidate.path
    return getattr(record.module, "__file__", None)
