"""The daemon's configuration: one table of settings, three layers of sources.

Why a table: every setting has exactly one TOML key, one environment variable and at
most one flag, one parser and one line of documentation; the loader, the error messages
and ``docs/operations.md`` all follow from the same rows, so they cannot disagree.

Precedence, lowest first: built-in default < TOML file < environment < command-line
flags.  The API key never comes from a flag (it would show in ``ps``); it comes from
``FTRACK_API_KEY`` / ``FTRACK_APIKEY``, a systemd credential
(``$CREDENTIALS_DIRECTORY/ftrack_api_key``), ``api_key_file`` or, last, the TOML file.

Any invalid value raises :class:`ConfigError` whose message is a single line naming the
key, the source and the problem; the CLI prints it and exits with 78 (EX_CONFIG).
"""

from __future__ import annotations

import dataclasses
import getpass
import os
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from reviewd.api.exception import ConfigurationError, register_secret
from reviewd.daemon.router import LaneSettings

#: Routing defaults live once, on the lanes that use them.
_LANE_DEFAULTS = LaneSettings()

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

EX_CONFIG = 78
DEFAULT_CONFIG_FILE = "/etc/reviewd/reviewd.toml"
CREDENTIAL_NAME = "ftrack_api_key"


class ConfigError(ConfigurationError):
    """A configuration problem: the message is one line naming key, source and fix."""

    def __init__(self, key: str, problem: str, source: str | None = None) -> None:
        where = f" (from {source})" if source else ""
        super().__init__(f"{key}: {problem}{where}")
        self.key = key
        self.problem = problem
        self.source = source


# ------------------------------------------------------------------ value parsers
def _parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"must be true or false, got {value!r}")


def _parse_positive_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"must be a whole number >= 1, got {value!r}")
    try:
        number = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        raise ValueError(f"must be a whole number >= 1, got {value!r}") from None
    if number < 1:
        raise ValueError(f"must be a whole number >= 1, got {value!r}")
    return number


def _bounded_int(high: int) -> Callable[[Any], int]:
    """A whole number from 1 to *high*: values past what the daemon can really run
    (``REVIEWD_CONCURRENCY=100000`` threads per plugin) are refused by ``check-config``
    rather than killing the daemon later with "can't start new thread"."""

    def parse(value: Any) -> int:
        number = _parse_positive_int(value)
        if number > high:
            raise ValueError(f"must be a whole number from 1 to {high}, got {value!r}")
        return number

    return parse


#: Upper bounds of the numeric settings (see :func:`_bounded_int`).
MAX_CONCURRENCY = 64
MAX_QUEUE_SIZE = 1_000_000
MAX_ATTEMPTS = 1000
#: Longest duration accepted (a year): beyond it ``threading`` timeouts overflow.
MAX_DURATION = 365 * 86400.0


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """Seconds from ``30``, ``2.5``, ``"500ms"``, ``"10s"``, ``"5m"``, ``"12h"``, ``"7d"``."""
    if isinstance(value, bool):
        raise ValueError(f"must be a duration such as 30, '10s', '5m' or '7d', got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"must be a duration such as 30, '10s', '5m' or '7d', got {value!r}")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds < 0:
        raise ValueError(f"must not be negative, got {value!r}")
    if not seconds <= MAX_DURATION:  # also catches nan and inf
        raise ValueError(f"must be at most {MAX_DURATION:g}s (a year), got {value!r}")
    return seconds


def _parse_choice(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = str(value).strip().lower()
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {value!r}")
        return text

    return parse


def parse_address(value: Any) -> tuple[str, int] | None:
    """``"127.0.0.1:9120"`` -> ``("127.0.0.1", 9120)``; ``"off"`` disables the listener."""
    text = str(value).strip()
    if text.lower() in ("off", "none", "false", ""):
        return None
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not (0 <= int(port) <= 65535):
        raise ValueError(f"must be HOST:PORT (port 0-65535) or 'off', got {value!r}")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


def _parse_server_url(value: Any) -> str:
    text = str(value).strip().rstrip("/")
    if not re.match(r"^https?://[^/\s]+", text):
        raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
    try:
        port = urlsplit(text).port  # raises ValueError for 99999 or "x"
    except ValueError:
        raise ValueError(f"has an invalid port (1-65535), got {value!r}") from None
    if port == 0:
        raise ValueError(f"has an invalid port (1-65535), got {value!r}")
    return text


def _parse_paths(value: Any) -> list[str]:
    if isinstance(value, str):
        parts = value.split(os.pathsep)
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        raise ValueError(f"must be a list of directories, got {value!r}")
    out = []
    for part in parts:
        if not isinstance(part, str):
            raise ValueError(f"must be a list of directories, got {value!r}")
        if part.strip():
            out.append(os.path.expanduser(part.strip()))
    return out


def _parse_names(value: Any) -> list[str]:
    """Names (of plugins, of secret arguments): a TOML list, or comma-separated text in
    the environment."""
    if isinstance(value, str):
        parts = value.split(",")
    elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        parts = list(value)
    else:
        raise ValueError(f"must be a list of names, got {value!r}")
    return [part.strip() for part in parts if part.strip()]


def _parse_str(value: Any) -> str:
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise ValueError(f"must be text, got {value!r}")
    return str(value)


def _parse_level(value: Any) -> str:
    return _parse_choice("debug", "info", "warning", "error", "critical")(value)


def _parse_non_negative_float(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"must be a number >= 0, got {value!r}") from None
    if not 0 <= number <= 1e6 or isinstance(value, bool):
        raise ValueError(f"must be a number from 0 to 1000000, got {value!r}")
    return number


@dataclasses.dataclass(frozen=True)
class Setting:
    """One row of the settings table."""

    key: str  # dotted TOML key, e.g. "routing.concurrency"
    attr: str  # attribute on Config
    parse: Callable[[Any], Any]
    default: Any
    env: tuple[str, ...] = ()
    doc: str = ""


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "server.url",
        "server_url",
        _parse_server_url,
        None,
        ("FTRACK_SERVER",),
        "ftrack server URL with scheme (and port). Required unless the embedded server runs.",
    ),
    Setting(
        "server.user",
        "api_user",
        _parse_str,
        None,
        ("FTRACK_API_USER",),
        "API user name; defaults to the OS user.",
    ),
    Setting(
        "server.api_key_file",
        "api_key_file",
        _parse_str,
        None,
        ("REVIEWD_API_KEY_FILE",),
        "File holding the API key (first line).",
    ),
    Setting(
        "server.ca_bundle",
        "ca_bundle",
        _parse_str,
        None,
        ("REVIEWD_CA_BUNDLE",),
        "PEM file (or folder) of the CAs to trust for an https server with a private or "
        "self-signed certificate. Verification is always on.",
    ),
    Setting(
        "server.connect_backoff_max",
        "connect_backoff_max",
        parse_duration,
        60.0,
        ("REVIEWD_CONNECT_BACKOFF_MAX",),
        "Cap of the delay between attempts to reach the server at start.",
    ),
    Setting(
        "daemon.state_dir",
        "state_dir",
        _parse_str,
        None,
        ("REVIEWD_STATE_DIR", "STATE_DIRECTORY"),
        "Folder for the journal; systemd's $STATE_DIRECTORY, else the user state dir.",
    ),
    Setting(
        "daemon.http",
        "http",
        parse_address,
        ("127.0.0.1", 9120),
        ("REVIEWD_HTTP",),
        "Address of /healthz /readyz /metrics /status, HOST:PORT or 'off'.",
    ),
    Setting(
        "daemon.log_level",
        "log_level",
        _parse_level,
        "info",
        ("REVIEWD_LOG_LEVEL",),
        "debug, info, warning, error or critical.",
    ),
    Setting(
        "daemon.log_format",
        "log_format",
        _parse_choice("auto", "console", "json", "journald"),
        "auto",
        ("REVIEWD_LOG_FORMAT",),
        "console, json, journald, or auto (console in the foreground, journald under "
        "systemd's journal, JSON otherwise).",
    ),
    Setting(
        "daemon.grace_period",
        "grace_period",
        parse_duration,
        30.0,
        ("REVIEWD_GRACE_PERIOD",),
        "How long in-flight handlers may run after SIGTERM before the daemon exits.",
    ),
    Setting(
        "daemon.embedded_server",
        "embedded_server",
        _parse_bool,
        False,
        ("REVIEWD_EMBEDDED_SERVER",),
        "Run the embedded demo server and connect to it.",
    ),
    Setting(
        "daemon.simulate",
        "simulate",
        _parse_non_negative_float,
        1.0,
        ("REVIEWD_SIMULATE",),
        "Simulated changes per second on the embedded server (0 disables).",
    ),
    Setting(
        "daemon.watch_plugins",
        "watch_plugins",
        _parse_bool,
        None,
        ("REVIEWD_WATCH_PLUGINS",),
        "Reload a plugin when its file changes (default: on in the foreground).",
    ),
    Setting(
        "journal.backend",
        "journal_backend",
        _parse_choice("sqlite", "redis"),
        "sqlite",
        ("REVIEWD_JOURNAL_BACKEND",),
        "sqlite (one host) or redis (Redis Streams: several hosts share the work).",
    ),
    Setting(
        "journal.redis_url",
        "redis_url",
        _parse_str,
        None,
        ("REVIEWD_REDIS_URL",),
        "Redis URL for the redis backend, e.g. redis://redis:6379/0.",
    ),
    Setting(
        "journal.redis_prefix",
        "redis_prefix",
        _parse_str,
        "reviewd",
        ("REVIEWD_REDIS_PREFIX",),
        "Key prefix in Redis; hosts sharing work use the same.",
    ),
    Setting(
        "journal.consumer",
        "consumer",
        _parse_str,
        None,
        ("REVIEWD_CONSUMER",),
        "This host's consumer name in Redis (default: the host name); keep it stable.",
    ),
    Setting(
        "journal.claim_idle",
        "claim_idle",
        parse_duration,
        60.0,
        ("REVIEWD_CLAIM_IDLE",),
        "Redis: deliveries a host stopped touching for this long are taken over.",
    ),
    Setting(
        "journal.pinned",
        "pinned_plugins",
        _parse_names,
        [],
        ("REVIEWD_PINNED_PLUGINS",),
        "Redis: plugins that run on one replica at a time (the holder of a lease).",
    ),
    Setting(
        "journal.lease_ttl",
        "lease_ttl",
        parse_duration,
        10.0,
        ("REVIEWD_LEASE_TTL",),
        "Redis: a pinned plugin's lease runs out this long after its holder died.",
    ),
    Setting(
        "journal.path",
        "journal_path",
        _parse_str,
        None,
        ("REVIEWD_JOURNAL",),
        "SQLite journal file; default STATE_DIR/journal.sqlite3.",
    ),
    Setting(
        "journal.retention",
        "journal_retention",
        parse_duration,
        7 * 86400.0,
        ("REVIEWD_JOURNAL_RETENTION",),
        "How long finished deliveries are kept.",
    ),
    Setting(
        "plugins.paths",
        "plugin_paths",
        _parse_paths,
        None,
        ("REVIEWD_PLUGIN_PATH", "FTRACK_EVENT_PLUGIN_PATH"),
        "Plugin directories (os.pathsep-separated in the environment).",
    ),
    Setting(
        "plugins.strict",
        "plugin_strict",
        _parse_bool,
        False,
        ("REVIEWD_PLUGIN_STRICT",),
        "Make any plugin load failure fatal (exit 78).",
    ),
    Setting(
        "plugins.required",
        "plugins_required",
        _parse_bool,
        True,
        ("REVIEWD_PLUGINS_REQUIRED",),
        "Not ready while a plugin failed to load or no plugin loaded at all; false "
        "reports both in /status but stays ready (a daemon that runs no plugin yet).",
    ),
    Setting(
        "plugins.allow_world_writable",
        "plugin_allow_world_writable",
        _parse_bool,
        False,
        ("REVIEWD_PLUGIN_ALLOW_WORLD_WRITABLE",),
        "Load plugins from world-writable paths (refused by default: anyone could add code).",
    ),
    Setting(
        "plugins.secret_arguments",
        "plugin_secret_arguments",
        _parse_names,
        [],
        ("REVIEWD_PLUGIN_SECRET_ARGUMENTS",),
        "Plugin argument names whose values are secrets (redacted everywhere), besides "
        "*_key, *token*, *password* and *secret*.",
    ),
    Setting(
        "plugins.ftrack_api_compat",
        "plugin_ftrack_api_compat",
        _parse_bool,
        True,
        ("REVIEWD_FTRACK_API_COMPAT",),
        "Let unchanged ftrack plugins `import ftrack_api` at all.",
    ),
    Setting(
        "plugins.ftrack_api",
        "plugin_ftrack_api",
        _parse_choice("reviewd", "installed"),
        "reviewd",
        ("REVIEWD_FTRACK_API",),
        "What `import ftrack_api` gives classic plugins: reviewd (default, even when "
        "ftrack-python-api is installed) or installed (the real package).",
    ),
    Setting(
        "routing.queue_size",
        "queue_size",
        _bounded_int(MAX_QUEUE_SIZE),
        _LANE_DEFAULTS.queue_size,
        ("REVIEWD_QUEUE_SIZE",),
        "Per-plugin queue bound; overflow stays in the journal and is fed in later.",
    ),
    Setting(
        "routing.concurrency",
        "concurrency",
        _bounded_int(MAX_CONCURRENCY),
        _LANE_DEFAULTS.concurrency,
        ("REVIEWD_CONCURRENCY",),
        "Worker threads per plugin (1 keeps events in order).",
    ),
    Setting(
        "routing.soft_timeout",
        "soft_timeout",
        parse_duration,
        _LANE_DEFAULTS.soft_timeout,
        ("REVIEWD_SOFT_TIMEOUT",),
        "A handler running longer is logged and counted.",
    ),
    Setting(
        "routing.hard_timeout",
        "hard_timeout",
        parse_duration,
        _LANE_DEFAULTS.hard_timeout,
        ("REVIEWD_HARD_TIMEOUT",),
        "A handler running longer marks its plugin stuck (not ready).",
    ),
    Setting(
        "routing.max_attempts",
        "max_attempts",
        _bounded_int(MAX_ATTEMPTS),
        _LANE_DEFAULTS.max_attempts,
        ("REVIEWD_MAX_ATTEMPTS",),
        "Attempts per delivery before it is dead-lettered.",
    ),
    Setting(
        "routing.retry_backoff",
        "retry_backoff",
        parse_duration,
        _LANE_DEFAULTS.retry_backoff,
        ("REVIEWD_RETRY_BACKOFF",),
        "First retry delay; doubles per attempt.",
    ),
    Setting(
        "routing.retry_backoff_max",
        "retry_backoff_max",
        parse_duration,
        _LANE_DEFAULTS.retry_backoff_max,
        ("REVIEWD_RETRY_BACKOFF_MAX",),
        "Cap of the retry delay.",
    ),
    Setting(
        "routing.queue_bytes",
        "queue_bytes",
        _parse_positive_int,
        _LANE_DEFAULTS.queue_bytes,
        ("REVIEWD_QUEUE_BYTES",),
        "Per-plugin bound on queued event bytes; beyond it events wait in the journal.",
    ),
    Setting(
        "routing.retry_actions",
        "retry_actions",
        _parse_bool,
        _LANE_DEFAULTS.retry_actions,
        ("REVIEWD_RETRY_ACTIONS",),
        "Retry a failed ftrack.action.launch like other events (default: reply failure).",
    ),
)
SETTINGS_BY_KEY = {s.key: s for s in SETTINGS}
_ROUTING_KEYS = {s.key.split(".", 1)[1] for s in SETTINGS if s.key.startswith("routing.")}
# Free-form tables: their contents belong to plugins, not to the daemon.
_FREE_FORM = ("plugins.arguments", "plugin")
_PER_PLUGIN_ROUTING = "routing.plugins"
_SECRET_KEYS = ("server.api_key",)


@dataclasses.dataclass
class Config:
    """The resolved configuration of one daemon run (immutable by convention)."""

    server_url: str | None = None
    api_user: str | None = None
    api_key: str | None = dataclasses.field(default=None, repr=False)
    api_key_file: str | None = None
    ca_bundle: str | None = None
    connect_backoff_max: float = 60.0
    state_dir: str | None = None
    http: tuple[str, int] | None = ("127.0.0.1", 9120)
    log_level: str = "info"
    log_format: str = "auto"
    grace_period: float = 30.0
    embedded_server: bool = False
    simulate: float = 1.0
    watch_plugins: bool | None = None
    journal_backend: str = "sqlite"
    redis_url: str | None = None
    redis_prefix: str = "reviewd"
    consumer: str | None = None
    claim_idle: float = 60.0
    pinned_plugins: list[str] = dataclasses.field(default_factory=list)
    lease_ttl: float = 10.0
    journal_path: str | None = None
    journal_retention: float = 7 * 86400.0
    plugin_paths: list[str] | None = None
    plugin_strict: bool = False
    plugins_required: bool = True
    plugin_allow_world_writable: bool = False
    plugin_ftrack_api_compat: bool = True
    plugin_ftrack_api: str = "reviewd"
    plugin_secret_arguments: list[str] = dataclasses.field(default_factory=list)
    plugin_arguments: dict = dataclasses.field(default_factory=dict)  # for every plugin
    per_plugin_arguments: dict[str, dict] = dataclasses.field(default_factory=dict)
    queue_size: int = _LANE_DEFAULTS.queue_size
    concurrency: int = _LANE_DEFAULTS.concurrency
    soft_timeout: float = _LANE_DEFAULTS.soft_timeout
    hard_timeout: float = _LANE_DEFAULTS.hard_timeout
    max_attempts: int = _LANE_DEFAULTS.max_attempts
    retry_backoff: float = _LANE_DEFAULTS.retry_backoff
    retry_backoff_max: float = _LANE_DEFAULTS.retry_backoff_max
    queue_bytes: int = _LANE_DEFAULTS.queue_bytes
    retry_actions: bool = _LANE_DEFAULTS.retry_actions
    routing_overrides: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    foreground: bool = False
    config_file: str | None = None
    sources: dict[str, str] = dataclasses.field(default_factory=dict, repr=False)
    #: Problems worth a warning but not a refusal (an unknown REVIEWD_* variable).
    warnings: list[str] = dataclasses.field(default_factory=list, repr=False)

    def routing_for(self, plugin: str) -> dict[str, Any]:
        """Routing settings of one plugin: global values with its overrides on top."""
        values = {key: getattr(self, key) for key in _ROUTING_KEYS}
        values.update(self.routing_overrides.get(plugin, {}))
        return values

    def public(self) -> dict[str, Any]:
        """A dict safe to show (status page, check-config): the API key is never included."""
        out = dataclasses.asdict(self)
        out.pop("api_key", None)
        out.pop("sources", None)
        out.pop("warnings", None)
        out["api_key_set"] = bool(self.api_key)
        return out


def _flatten(table: Mapping, prefix: str = "") -> dict[str, Any]:
    """TOML tables to dotted keys, stopping at free-form tables."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if dotted in _FREE_FORM or dotted == _PER_PLUGIN_ROUTING:
            flat[dotted] = value
        elif isinstance(value, Mapping):
            flat.update(_flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def read_toml(path: str) -> dict[str, Any]:
    """Read a TOML config file into dotted keys; every failure is a ConfigError."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError("config", f"file {path} does not exist") from None
    except PermissionError:
        raise ConfigError("config", f"file {path} is not readable (permission denied)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config", f"{path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        # tomllib decodes before parsing and raises this, not TOMLDecodeError: without
        # this clause a stray Latin-1 byte was a traceback at start and killed a reload.
        raise ConfigError(
            "config",
            f"{path} is not UTF-8 text (invalid byte at offset {exc.start}); save it as UTF-8",
        ) from None
    except OSError as exc:
        raise ConfigError("config", f"cannot read {path}: {exc.strerror}") from None
    return _flatten(data)


def _read_key_file(path: str, key: str, source: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            first = handle.readline().strip()
    except OSError as exc:
        raise ConfigError(key, f"cannot read {path}: {exc.strerror}", source) from None
    except UnicodeDecodeError:
        raise ConfigError(key, f"{path} is not UTF-8 text", source) from None
    if not first:
        raise ConfigError(key, f"{path} is empty", source)
    return first


def load(
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: str | None = None,
    foreground: bool = False,
    require_server: bool = True,
) -> Config:
    """Resolve the configuration from file, environment and *flags* (attr -> value).

    *config_file*: an explicit path must exist; without one, ``REVIEWD_CONFIG`` or
    ``/etc/reviewd/reviewd.toml`` is read when it exists.  *require_server* False skips
    the server and key checks (tools such as ``reviewd status`` need neither).
    """
    flags = dict(flags or {})
    environ = os.environ if environ is None else environ
    config = Config(foreground=foreground)
    sources: dict[str, str] = {}

    path = config_file or environ.get("REVIEWD_CONFIG")
    if path is None and os.path.exists(DEFAULT_CONFIG_FILE):
        path = DEFAULT_CONFIG_FILE
    file_values: dict[str, Any] = read_toml(path) if path else {}
    config.config_file = path

    for key, value in file_values.items():
        if key in SETTINGS_BY_KEY or key in _SECRET_KEYS:
            continue
        if key == "plugins.arguments":
            if not isinstance(value, Mapping):
                raise ConfigError(key, "must be a table", path)
            config.plugin_arguments = dict(value)
            continue
        if key == "plugin":
            if not isinstance(value, Mapping) or not all(
                isinstance(v, Mapping) for v in value.values()
            ):
                raise ConfigError(key, "must hold one table per plugin, e.g. [plugin.NAME]", path)
            config.per_plugin_arguments = {str(k): dict(v) for k, v in value.items()}
            continue
        if key == _PER_PLUGIN_ROUTING:
            config.routing_overrides = _parse_overrides(value, path)
            continue
        raise ConfigError(key, "unknown setting (check the spelling in docs/operations.md)", path)

    for setting in SETTINGS:
        value, source = setting.default, "default"
        if setting.key in file_values:
            value, source = file_values[setting.key], path or "configuration file"
        for var in setting.env:
            if environ.get(var, "") != "":
                value, source = environ[var], f"environment {var}"
                break
        if flags.get(setting.attr) is not None:
            value, source = flags[setting.attr], "command line"
        if value is not None and source != "default":
            try:
                value = setting.parse(value)
            except ValueError as exc:
                raise ConfigError(setting.key, str(exc), source) from None
        setattr(config, setting.attr, value)
        sources[setting.attr] = source

    config.sources = sources
    config.api_key, sources["api_key"] = _resolve_api_key(config, file_values, environ, path)
    if config.api_user is None:
        try:
            config.api_user = getpass.getuser()
            sources["api_user"] = "OS user"
        except Exception:  # noqa: BLE001 - no passwd entry in some containers
            config.api_user = None
    if config.watch_plugins is None:
        config.watch_plugins = foreground
    register_secret(config.api_key)
    register_plugin_secrets(config)
    config.warnings = unknown_environment(environ)
    validate(config, require_server)
    return config


#: Plugin argument names that hold secrets, whatever the configuration says.
_SECRET_ARGUMENT = re.compile(r"(_key$|^key$|token|password|passwd|secret)", re.IGNORECASE)


def is_secret_argument(name: str, marked: tuple[str, ...] = ()) -> bool:
    """Whether a plugin argument's value is a secret: ``*_key``, ``*token*``,
    ``*password*``, ``*secret*``, or a name the configuration marks."""
    return bool(_SECRET_ARGUMENT.search(name)) or name in marked


def _secret_values(arguments: Mapping[str, Any], marked: tuple[str, ...]) -> list[str]:
    values: list[str] = []

    def leaves(value: Any) -> None:
        if isinstance(value, Mapping):
            for inner in value.values():
                leaves(inner)
        elif isinstance(value, (list, tuple)):
            for inner in value:
                leaves(inner)
        elif value is not None and not isinstance(value, bool):
            values.append(str(value))

    for name, value in arguments.items():
        if is_secret_argument(str(name), marked):
            leaves(value)
        elif isinstance(value, Mapping):
            values.extend(_secret_values(value, marked))
    return values


def register_plugin_secrets(config: Config) -> None:
    """Register the values of secret plugin arguments with :func:`register_secret`, so
    that logs, ``/status`` (``last_error``) and dead letters show ``***`` instead: a
    plugin that puts its token in an exception message must not publish it."""
    marked = tuple(config.plugin_secret_arguments or ())
    for value in _secret_values(config.plugin_arguments, marked):
        register_secret(value)
    for arguments in config.per_plugin_arguments.values():
        for value in _secret_values(arguments, marked):
            register_secret(value)


#: ``REVIEWD_*`` variables read outside the settings table (tools, the test suite).
_OTHER_VARIABLES = frozenset(
    {
        "REVIEWD_CONFIG",
        "REVIEWD_DEVSERVER_API_USER",
        "REVIEWD_DEVSERVER_API_KEY",
        "REVIEWD_REQUIRE_ALL",
        "REVIEWD_SOAK",
        "REVIEWD_TEST_REDIS_URL",
        "REVIEWD_TEST_PLUGINS_DIR",
    }
)


def known_variables() -> frozenset[str]:
    return (
        frozenset(var for s in SETTINGS for var in s.env if var.startswith("REVIEWD_"))
        | _OTHER_VARIABLES
    )


def unknown_environment(environ: Mapping[str, str]) -> list[str]:
    """A warning for each ``REVIEWD_*`` variable no setting reads, naming the closest
    valid name: ``REVIEWD_LOGLEVEL`` silently doing nothing costs an operator an
    afternoon.  A warning, not a refusal: a variable meant for a newer version (or a
    plugin) must not stop the daemon."""
    import difflib

    known = known_variables()
    warnings = []
    for name in sorted(environ):
        if not name.startswith("REVIEWD_") or name in known:
            continue
        if name.startswith(("REVIEWD_TEST_", "REVIEWD_PLUGIN_ARG_")):
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else " (see docs/operations.md)"
        warnings.append(f"environment variable {name} is not a reviewd setting{hint}")
    return warnings


def _parse_overrides(value: Any, path: str | None) -> dict[str, dict[str, Any]]:
    if not isinstance(value, Mapping):
        raise ConfigError(_PER_PLUGIN_ROUTING, "must be a table of plugin tables", path)
    overrides: dict[str, dict[str, Any]] = {}
    for plugin, table in value.items():
        key_prefix = f"{_PER_PLUGIN_ROUTING}.{plugin}"
        if not isinstance(table, Mapping):
            raise ConfigError(key_prefix, "must be a table", path)
        parsed = {}
        for name, raw in table.items():
            if name not in _ROUTING_KEYS:
                raise ConfigError(f"{key_prefix}.{name}", "unknown routing setting", path)
            setting = SETTINGS_BY_KEY[f"routing.{name}"]
            try:
                parsed[setting.attr] = setting.parse(raw)
            except ValueError as exc:
                raise ConfigError(f"{key_prefix}.{name}", str(exc), path) from None
        overrides[str(plugin)] = parsed
    return overrides


def _resolve_api_key(
    config: Config, file_values: Mapping[str, Any], environ: Mapping[str, str], path: str | None
) -> tuple[str | None, str]:
    for var in ("FTRACK_API_KEY", "FTRACK_APIKEY"):
        if environ.get(var):
            return environ[var].strip(), f"environment {var}"
    credentials = environ.get("CREDENTIALS_DIRECTORY")
    if credentials:
        candidate = os.path.join(credentials, CREDENTIAL_NAME)
        if os.path.exists(candidate):
            return _read_key_file(candidate, "server.api_key", "systemd credential"), "credential"
    if config.api_key_file:
        source = config.sources.get("api_key_file") or "api_key_file"
        return _read_key_file(config.api_key_file, "server.api_key_file", source), "api_key_file"
    value = file_values.get("server.api_key")
    if value is not None:
        if not isinstance(value, str) or not value.strip():
            raise ConfigError("server.api_key", "must be non-empty text", path)
        return value.strip(), path or "config"
    return None, "default"


def validate(config: Config, require_server: bool = True) -> None:
    """Cross-setting rules; a daemon that cannot work must not start."""
    if config.hard_timeout and config.soft_timeout > config.hard_timeout:
        raise ConfigError(
            "routing.soft_timeout",
            f"({config.soft_timeout:g}s) must not exceed routing.hard_timeout "
            f"({config.hard_timeout:g}s)",
            config.sources.get("soft_timeout"),
        )
    if config.journal_backend == "redis" and not config.redis_url:
        raise ConfigError(
            "journal.redis_url",
            "must be set when journal.backend is redis (e.g. redis://127.0.0.1:6379/0)",
            config.sources.get("journal_backend"),
        )
    if config.ca_bundle and not os.path.exists(config.ca_bundle):
        raise ConfigError(
            "server.ca_bundle",
            f"{config.ca_bundle} does not exist",
            config.sources.get("ca_bundle"),
        )
    if uses_embedded_server(config) or not require_server:
        return
    if not config.server_url:
        raise ConfigError(
            "server.url",
            "not set; set FTRACK_SERVER or [server] url in the config file "
            "(or run `reviewd --foreground` for the embedded demo server)",
        )
    if not config.api_key:
        raise ConfigError(
            "server.api_key",
            "not set; set FTRACK_API_KEY, server.api_key_file, or a systemd credential "
            f"named {CREDENTIAL_NAME}",
        )
    if not config.api_user:
        raise ConfigError("server.user", "not set and the OS user is unknown; set FTRACK_API_USER")


def uses_embedded_server(config: Config) -> bool:
    """The embedded server runs when asked, or in the foreground when no server is set."""
    return bool(config.embedded_server or (config.foreground and not config.server_url))


def default_state_dir() -> str:
    import platformdirs

    return platformdirs.user_state_dir("reviewd")


def journal_path(config: Config) -> str:
    """Where the SQLite journal lives for this configuration."""
    if config.journal_path:
        return config.journal_path
    return os.path.join(config.state_dir or default_state_dir(), "journal.sqlite3")
