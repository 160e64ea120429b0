"""``reviewd plugins list`` and ``reviewd plugins check PATH``.

Both load the plugins for real — import, ``register()``, ``reviewd_register`` —
against a throwaway embedded server with demo data, never against the
production server: registering a plugin may query or even write, and a listing
must not have side effects.  ``check`` is meant for the CI of a plugin
repository: every problem is printed and the exit status is 78 (EX_CONFIG) when
there is any, with a one-line reason last on stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from reviewd.api.exception import Error, PluginError, redact
from reviewd.plugin import PluginHost, PluginRecord, split_plugin_paths
from reviewd.plugin.host import REGISTERED_NOTHING

EX_OK = 0
EX_USAGE = 64
EX_CONFIG = 78

_DEFAULT_CONFIG_FILE = "/etc/reviewd/reviewd.toml"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reviewd plugins", description="List or check reviewd and ftrack plugins."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--config",
            metavar="FILE",
            help="read [plugins] and [plugin.NAME] from this reviewd.toml",
        )
        sub.add_argument(
            "--arg",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="a plugin argument for every plugin (VALUE is JSON or text)",
        )
        sub.add_argument(
            "--plugin-arg",
            action="append",
            default=[],
            metavar="NAME.KEY=VALUE",
            help="a plugin argument for plugin NAME only",
        )
        sub.add_argument(
            "--allow-world-writable",
            action="store_true",
            help="load plugins from world-writable places anyway",
        )
        sub.add_argument("--json", action="store_true", help="print JSON instead of text")

    listing = commands.add_parser("list", help="show discovered plugins")
    listing.add_argument(
        "--path",
        action="append",
        default=None,
        metavar="DIR",
        help="a plugin path (default: config, then REVIEWD_PLUGIN_PATH or "
        "FTRACK_EVENT_PLUGIN_PATH)",
    )
    listing.add_argument(
        "--no-entry-points",
        action="store_true",
        help="skip plugins installed through the reviewd.plugins entry point",
    )
    listing.add_argument(
        "--strict",
        action="store_true",
        help="exit 78 if any plugin fails, as the daemon's strict mode would",
    )
    common(listing)

    check = commands.add_parser("check", help="load plugins and report every problem")
    check.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="a plugin directory (searched like FTRACK_EVENT_PLUGIN_PATH: "
        "every .py file and package in it) or one .py file",
    )
    check.add_argument(
        "--entry-points",
        action="store_true",
        help="also check plugins installed through the reviewd.plugins entry point",
    )
    common(check)
    return parser


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _pairs(items: Sequence[str], option: str) -> list[tuple[str, Any]]:
    pairs = []
    for item in items:
        key, separator, value = item.partition("=")
        if not separator or not key:
            raise PluginError(f"{option} needs KEY=VALUE, got {item!r}")
        pairs.append((key, _value(value)))
    return pairs


def _config_file_settings(path: str | None) -> dict[str, Any]:
    """The plugin settings of a reviewd.toml: paths, strict, arguments, per-plugin tables."""
    if path is None:
        path = os.environ.get("REVIEWD_CONFIG") or (
            _DEFAULT_CONFIG_FILE if os.path.exists(_DEFAULT_CONFIG_FILE) else None
        )
    if path is None:
        return {}
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as error:
        raise PluginError(f"cannot read config file {path}: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise PluginError(f"config file {path} is not valid TOML: {error}") from None
    plugins = data.get("plugins", {})
    per_plugin = data.get("plugin", {})
    if not isinstance(plugins, Mapping) or not isinstance(per_plugin, Mapping):
        raise PluginError(f"config file {path}: [plugins] and [plugin.NAME] must be tables")
    paths = plugins.get("paths")
    if isinstance(paths, str):
        paths = split_plugin_paths(paths)
    return {
        "paths": list(paths) if paths is not None else None,
        "strict": bool(plugins.get("strict", False)),
        "arguments": dict(plugins.get("arguments", {}) or {}),
        "plugin_arguments": {str(k): dict(v) for k, v in per_plugin.items()},
        "ftrack_api": str(plugins.get("ftrack_api", "reviewd")),
    }


def _describe(record: PluginRecord) -> dict[str, Any]:
    return {
        "name": record.name,
        "kind": record.kind,
        "source": record.source,
        "loaded": record.loaded,
        "subscriptions": [
            {
                "expression": s.expression,
                "origin": s.origin,
                "priority": s.options.priority,
                "concurrency": s.options.concurrency,
                "timeout": s.options.timeout,
            }
            for s in record.subscriptions
        ],
        "error": record.error,
        "warnings": list(record.warnings),
    }


def _render(records: list[dict[str, Any]], problems: list[str]) -> str:
    lines = []
    for plugin in records:
        state = "loaded" if plugin["loaded"] else "FAILED"
        lines.append(f"{plugin['name']}  [{plugin['kind']}, {state}]  {plugin['source']}")
        for subscription in plugin["subscriptions"]:
            lines.append(
                f"    subscribes {subscription['expression']!r} "
                f"(priority {subscription['priority']}, concurrency "
                f"{subscription['concurrency']}, via {subscription['origin']})"
            )
        if plugin["error"]:
            lines.append(f"    error: {plugin['error']}")
        for warning in plugin["warnings"]:
            lines.append(f"    warning: {warning}")
    if not records:
        lines.append("no plugins found")
    for problem in problems:
        lines.append(f"problem: {problem}")
    return "\n".join(lines) + "\n"


def _load(
    options: argparse.Namespace, settings: Mapping[str, Any], paths: list[str], entry_points: bool
) -> tuple[list[dict[str, Any]], list[str]]:
    """Load the plugins against an embedded server; return (descriptions, problems)."""
    from reviewd.api.session import Session
    from reviewd.devserver import DevServer

    arguments = dict(settings.get("arguments", {}))
    arguments.update(_pairs(options.arg, "--arg"))
    plugin_arguments = {k: dict(v) for k, v in settings.get("plugin_arguments", {}).items()}
    for dotted, value in _pairs(options.plugin_arg, "--plugin-arg"):
        name, separator, key = dotted.partition(".")
        if not separator or not name or not key:
            raise PluginError(f"--plugin-arg needs NAME.KEY=VALUE, got {dotted!r}")
        plugin_arguments.setdefault(name, {})[key] = value

    problems: list[str] = []
    with DevServer(seed="demo") as server:
        session = Session(
            server_url=server.url,
            api_user=server.api_user,
            api_key=server.api_key,
            plugin_paths=[],
            schema_cache_path=False,
        )
        try:
            session.event_hub.connect(wait=True, timeout=30)
            host = PluginHost(
                session,
                paths,
                arguments,
                plugin_arguments,
                allow_world_writable=options.allow_world_writable,
                entry_points=entry_points,
                ftrack_api=settings.get("ftrack_api", "reviewd"),
            )
            host.load_all()
            problems.extend(host.problems)
            problems.extend(f"{r.describe()}: {r.error}" for r in host.failures)
            problems.extend(
                f"{r.describe()}: {warning}"
                for r in host.plugins
                for warning in r.warnings
                if warning.startswith(REGISTERED_NOTHING)
            )
            if options.command == "check":
                problems.extend(_exercise_hooks(host))
            described = [_describe(r) for r in host.plugins]
            for name in list(host.loaded):
                host.unload(name)
        finally:
            session.close()
    return described, problems


def _exercise_hooks(host: PluginHost) -> list[str]:
    """Run the lifecycle and health hooks once, as the daemon would."""
    problems = []
    for outcome in host.started():
        if outcome.error is not None:
            problems.append(f"plugin {outcome.plugin!r}: reviewd_started raised {outcome.error!r}")
    for name, health in host.health().items():
        record = host.get(name)
        if record is not None and record.loaded and not health.ready:
            problems.append(f"plugin {name!r} reports not ready: {'; '.join(health.problems)}")
    host.collectors()
    for outcome in host.stopping():
        if outcome.error is not None:
            problems.append(f"plugin {outcome.plugin!r}: reviewd_stopping raised {outcome.error!r}")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``reviewd plugins``; *argv* excludes the word ``plugins``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        options = _parser().parse_args(argv)
    except SystemExit as exit_:
        return EX_USAGE if exit_.code else EX_OK
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
        )
    try:
        settings = _config_file_settings(options.config)
        if options.command == "list":
            paths = options.path
            if paths is None:
                paths = settings.get("paths")
            if paths is None:
                paths = split_plugin_paths(
                    os.environ.get("REVIEWD_PLUGIN_PATH")
                    or os.environ.get("FTRACK_EVENT_PLUGIN_PATH")
                )
            strict = options.strict or settings.get("strict", False)
            described, problems = _load(options, settings, paths, not options.no_entry_points)
        else:
            strict = True
            described, problems = _load(options, settings, options.paths, options.entry_points)
    except Error as error:
        sys.stderr.write(f"reviewd plugins: {redact(str(error))}\n")
        return EX_CONFIG
    if options.json:
        sys.stdout.write(json.dumps({"plugins": described, "problems": problems}, indent=2) + "\n")
    else:
        sys.stdout.write(_render(described, problems))
    sys.stdout.flush()
    if strict and problems:
        more = f" (and {len(problems) - 1} more, listed above)" if len(problems) > 1 else ""
        sys.stderr.write(f"reviewd plugins: {problems[0]}{more}\n")
        return EX_CONFIG
    return EX_OK


if __name__ == "__main__":
    sys.exit(main())
