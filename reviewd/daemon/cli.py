"""The ``reviewd`` command line.

``reviewd [--foreground] [--config FILE] [--plugin-path DIR]... [--log-level L]
[--log-format console|json|journald] [--http ADDR:PORT] [--embedded-server]`` runs the
daemon; ``check-config``, ``status``, ``journal list|retry|purge`` and ``--version`` are
small tools around it, each with only its own options; ``devserver``, ``plugins`` and
``new-plugin`` are dispatched to their own parts (``DELEGATED_COMMANDS``).  A mistyped
flag or command is answered with the closest one.

Exit codes (see docs/operations.md): 0 success, 1 stopped by a second signal or an
unexpected error, 2 usage error, 3 ``status``: daemon up but not ready, 69 ``status``:
daemon not reachable, 73 journal cannot be opened, 78 configuration error.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import json
import re
import sys
import threading
import urllib.error
import urllib.request
from typing import Any, NoReturn

EX_OK, EX_NOT_READY, EX_UNAVAILABLE, EX_CONFIG = 0, 3, 69, 78


#: Commands with a parser of their own, run before this module parses anything:
#: (module, its ``main``, one line for ``reviewd --help``).  A command appears when its
#: module is importable, so a part that is not installed is not advertised.
DELEGATED_COMMANDS: dict[str, tuple[str, str]] = {
    "plugins": (
        "reviewd.plugin.cli",
        "what would load from the plugin path; load plugins against a throwaway "
        "server ('plugins list', 'plugins check DIR')",
    ),
    "devserver": (
        "reviewd.devserver.cli",
        "the embedded ftrack-compatible server; 'devserver emit' publishes an event on it",
    ),
    "new-plugin": ("reviewd.plugin.scaffold", "create a plugin package with its test"),
}

JOURNAL_ACTIONS = {
    "list": "list dead letters (or, with --pending, unfinished deliveries)",
    "retry": "make dead letters pending again (a running daemon picks them up)",
    "purge": "forget dead letters",
    "stats": "the journal's size, counts and write figures",
}


class SuggestingParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose "invalid choice" error names the closest choice.

    Why: ``reviewd jornal list`` should answer "did you mean 'journal'?" rather than
    print the whole list and leave the reader to spot the typo.
    """

    def error(self, message: str) -> NoReturn:
        match = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if match:
            choices = re.findall(r"'([^']*)'", match.group(2))
            close = difflib.get_close_matches(match.group(1), choices, n=1, cutoff=0.5)
            if close:
                message = f"unknown command '{match.group(1)}'; did you mean '{close[0]}'?"
        super().error(message)


def _config_option(parser: argparse.ArgumentParser, suppress: bool) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS if suppress else None,
        help="TOML configuration file (default /etc/reviewd/reviewd.toml "
        "when it exists, or $REVIEWD_CONFIG)",
    )


def _daemon_options(parser: argparse.ArgumentParser) -> None:
    """The daemon's own flags: only on the top-level parser (subcommands list theirs)."""
    _config_option(parser, suppress=False)
    parser.add_argument(
        "--foreground",
        action="store_true",
        default=False,
        help="run for development: console logs, plugin hot reload, and the "
        "embedded demo server when no server is configured",
    )
    parser.add_argument(
        "--plugin-path",
        metavar="DIR",
        action="append",
        dest="plugin_paths",
        default=None,
        help="plugin directory (repeatable)",
    )
    parser.add_argument(
        "--log-level", metavar="LEVEL", default=None, help="debug, info, warning, error or critical"
    )
    parser.add_argument(
        "--log-format",
        metavar="FORMAT",
        default=None,
        help="console, json or journald (default: chosen automatically)",
    )
    parser.add_argument(
        "--http",
        metavar="ADDR:PORT",
        default=None,
        help="health/metrics/status listener, e.g. 127.0.0.1:9120, or 'off'",
    )
    parser.add_argument(
        "--embedded-server",
        action="store_true",
        default=False,
        help="run the embedded demo server and connect to it",
    )
    parser.add_argument(
        "--journal", metavar="PATH", dest="journal_path", default=None, help="SQLite journal file"
    )


def build_parser() -> argparse.ArgumentParser:
    """``reviewd [daemon options]`` runs the daemon; ``reviewd COMMAND --help`` shows
    each command's own options (daemon options may still precede a command)."""
    parser = SuggestingParser(
        prog="reviewd",
        description="ftrack event-processing daemon. Without a command it "
        "runs the daemon; 'reviewd COMMAND --help' shows a command's options.",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    _daemon_options(parser)
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", title="commands", parser_class=SuggestingParser
    )
    check = commands.add_parser(
        "check-config",
        help="validate the configuration and exit (78 when invalid)",
        allow_abbrev=False,
        description="Validate the configuration the daemon would run "
        "with and print it (the API key never).",
    )
    _config_option(check, suppress=True)
    status = commands.add_parser(
        "status",
        help="ask the running daemon what it is doing",
        allow_abbrev=False,
        description="Ask a running daemon over HTTP: 0 ready, 3 not ready, 69 not reachable.",
    )
    _config_option(status, suppress=True)
    status.add_argument(
        "--http",
        metavar="ADDR:PORT",
        default=argparse.SUPPRESS,
        help="where the daemon listens (default: from the configuration)",
    )
    status.add_argument("--json", action="store_true", help="print the raw JSON")
    journal = commands.add_parser(
        "journal",
        help="inspect and handle dead letters",
        allow_abbrev=False,
        description="Inspect and handle the journal's dead letters.",
    )
    actions = journal.add_subparsers(
        dest="action",
        metavar="ACTION",
        title="actions",
        required=True,
        parser_class=SuggestingParser,
    )
    for name, text in JOURNAL_ACTIONS.items():
        action = actions.add_parser(
            name, help=text, description=text[0].upper() + text[1:] + ".", allow_abbrev=False
        )
        _config_option(action, suppress=True)
        action.add_argument(
            "--journal",
            metavar="PATH",
            dest="journal_path",
            default=argparse.SUPPRESS,
            help="SQLite journal file",
        )
        action.add_argument("--plugin", help="only this plugin's dead letters")
        action.add_argument("--event", dest="event_id", help="only this event id")
        if name == "list":
            action.add_argument(
                "--pending",
                action="store_true",
                help="show unfinished deliveries instead of dead letters",
            )
    for name, (module, text) in DELEGATED_COMMANDS.items():
        if importlib.util.find_spec(module) is not None:
            # Listed for --help and suggestions; main() hands these over before parsing.
            commands.add_parser(name, help=text, add_help=False)
    return parser


def _option_strings(parser: argparse.ArgumentParser) -> set[str]:
    return {flag for action in parser._actions for flag in action.option_strings}


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


#: Top-level flags that take a value (the token after them is that value, not a command).
_VALUE_FLAGS = ("--config", "--plugin-path", "--log-level", "--log-format", "--http", "--journal")


def _refuse_late_delegated_command(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """``reviewd --log-level debug devserver`` would otherwise run the daemon: the
    delegated commands have their own options and must come first."""
    for index, token in enumerate(argv[1:], start=1):
        if token == "--":
            return
        if token in DELEGATED_COMMANDS and argv[index - 1] not in _VALUE_FLAGS:
            parser.error(
                f"'{token}' must come first ('reviewd {token} --help' lists its "
                "options; the daemon's options do not apply to it)"
            )


def check_flags(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """Refuse an unknown ``--flag`` with the closest known one, before argparse parses.

    Why before: argparse sets an unknown flag aside and reads the value after it as the
    command, so ``--plugins-path x`` would be reported as "invalid choice: 'x'".  The
    flags known are the top level's plus those of the command (and journal action)
    named in *argv*.
    """
    known = _option_strings(parser)
    scope, level = parser, parser
    for token in argv:
        if token == "--":
            break
        if token.startswith("-"):
            continue
        sub = _subparsers(level).get(token)
        if sub is not None:
            known |= _option_strings(sub)
            scope = level = sub
    for token in argv:
        if token == "--":
            break
        if not token.startswith("--"):
            continue
        flag = token.split("=", 1)[0]
        if flag in known:
            continue
        close = difflib.get_close_matches(flag, sorted(known), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else f"; see '{scope.prog} --help'"
        scope.error(f"unknown option {flag}{hint}")


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "plugin_paths": getattr(args, "plugin_paths", None),
        "log_level": getattr(args, "log_level", None),
        "log_format": getattr(args, "log_format", None),
        "http": getattr(args, "http", None),
        "embedded_server": True if getattr(args, "embedded_server", False) else None,
        "journal_path": getattr(args, "journal_path", None),
    }


def _load(args: argparse.Namespace, require_server: bool = True) -> Any:
    from reviewd.daemon import config

    return config.load(
        flags=_flags(args),
        config_file=getattr(args, "config", None),
        foreground=bool(getattr(args, "foreground", False)),
        require_server=require_server,
    )


def _config_error(exc: Exception) -> int:
    sys.stderr.write(f"reviewd: configuration error: {exc}\n")
    return EX_CONFIG


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DELEGATED_COMMANDS:
        module = importlib.import_module(DELEGATED_COMMANDS[argv[0]][0])
        return module.main(argv[1:])
    parser = build_parser()
    _refuse_late_delegated_command(parser, argv)
    check_flags(parser, argv)
    args = parser.parse_args(argv)
    if args.version:
        from reviewd.daemon.version_report import version_text

        sys.stdout.write(version_text())
        return EX_OK
    from reviewd.daemon.config import ConfigError

    try:
        if args.command == "check-config":
            return check_config(args)
        if args.command == "status":
            return status(args)
        if args.command == "journal":
            return journal(args)
        return run(args)
    except ConfigError as exc:
        return _config_error(exc)


def run(args: argparse.Namespace) -> int:
    """Run the daemon until it is stopped."""
    from reviewd.daemon import logging as daemon_logging
    from reviewd.daemon import process_tuning
    from reviewd.daemon.supervisor import Daemon

    process_tuning.limit_malloc_arenas()  # before the daemon's threads allocate
    config = _load(args)
    fmt = daemon_logging.choose_format(config.log_format, config.foreground)
    daemon_logging.configure(config.log_level, fmt)
    daemon = Daemon(config, reload_config=lambda: _load(args))
    daemon.install_signal_handlers()
    process_tuning.tune_for_daemon()
    code = daemon.run()
    _exit_now_if_threads_linger(code)
    return code


def _exit_now_if_threads_linger(code: int) -> None:
    """A plugin's non-daemon thread must not keep a stopped daemon alive."""
    lingering = [
        t
        for t in threading.enumerate()
        if t is not threading.main_thread() and not t.daemon and t.is_alive()
    ]
    if lingering:
        import os

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def check_config(args: argparse.Namespace) -> int:
    from reviewd.daemon import config as config_module

    config = _load(args)
    embedded = config_module.uses_embedded_server(config)
    lines = [
        f"configuration OK (file: {config.config_file or 'none'})",
        f"server: {'embedded demo server' if embedded else config.server_url}",
        f"user: {config.api_user}",
        f"api key: {'set' if config.api_key else 'not set'}"
        f" (from {config.sources.get('api_key', 'default')})",
        f"plugin paths: {', '.join(config.plugin_paths or []) or 'none'}",
        f"journal: {config_module.journal_path(config)}",
        "http: " + ("off" if config.http is None else "{}:{}".format(*config.http)),
        f"routing: queue {config.queue_size}, concurrency {config.concurrency}, "
        f"soft timeout {config.soft_timeout:g}s, hard timeout {config.hard_timeout:g}s, "
        f"{config.max_attempts} attempts",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    for warning in config.warnings:
        sys.stderr.write(f"reviewd: warning: {warning}\n")
    return EX_OK


def status(args: argparse.Namespace) -> int:
    """Ask a running daemon over HTTP and print a readable summary."""
    config = _load(args, require_server=False)
    if config.http is None:
        sys.stderr.write("reviewd: the HTTP listener is off (daemon.http); no status to ask\n")
        return EX_UNAVAILABLE
    url = "http://{}:{}/status".format(*config.http)
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        sys.stderr.write(f"reviewd: no daemon answering at {url}: {reason}\n")
        return EX_UNAVAILABLE
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps(body, indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write(format_status(body))
    return EX_OK if body.get("ready") else EX_NOT_READY


def format_status(body: dict[str, Any]) -> str:
    server = body.get("server", {})
    hub = body.get("hub", {})
    journal_info = body.get("journal", {})
    lines = [
        f"reviewd {body.get('version')} (pid {body.get('pid')}), up "
        f"{_duration(body.get('uptime_seconds', 0))}: "
        f"{'READY' if body.get('ready') else 'NOT READY'} ({body.get('state')})",
    ]
    for reason in body.get("reasons", []):
        lines.append(f"  ! {reason}")
    lines.append(
        f"server: {server.get('url')} as {server.get('user')}"
        f"{' (embedded)' if server.get('embedded') else ''}"
    )
    lines.append(
        f"event hub: {'connected' if hub.get('connected') else 'DISCONNECTED'}, "
        f"{hub.get('reconnects', 0)} reconnect(s), {hub.get('gaps', 0)} gap(s)"
    )
    plugins = body.get("plugins", {})
    lines.append(f"plugins: {len(plugins)}")
    for name, info in sorted(plugins.items()):
        if not info.get("loaded"):
            lines.append(f"  {name:<24} FAILED: {info.get('error')}")
            continue
        flag = "  STUCK" if info.get("stuck") else ""
        lines.append(
            f"  {name:<24} {info.get('kind', '?'):<8} handled {info.get('handled', 0)}, "
            f"ok {info.get('succeeded', 0)}, failed {info.get('failed', 0)}, "
            f"retried {info.get('retried', 0)}, dead {info.get('dead_lettered', 0)}, "
            f"queued {info.get('queue_depth', 0)}, running {info.get('in_flight', 0)}{flag}"
        )
        if info.get("last_error"):
            lines.append(f"  {'':<24} last error: {info['last_error']}")
    lines.append(
        f"journal: {journal_info.get('path')}: pending {journal_info.get('pending', 0)},"
        f" done {journal_info.get('done', 0)}, dead {journal_info.get('dead', 0)}"
    )
    lines.extend(format_cluster(body.get("cluster")))
    if body.get("last_error"):
        lines.append(f"last error: {body['last_error']}")
    return "\n".join(lines) + "\n"


def format_cluster(cluster: dict[str, Any] | None) -> list[str]:
    """The Redis cluster section (see :mod:`reviewd.daemon.cluster`), empty for SQLite."""
    if not cluster:
        return []
    spool = cluster.get("spool") or {}
    lines = [
        f"cluster: replica {cluster.get('replica')} on {cluster.get('redis')}"
        f"{'' if cluster.get('redis_reachable') else ' (REDIS UNREACHABLE)'}, "
        f"spool {spool.get('events', 0)} event(s), refused {spool.get('refused', 0)}"
    ]
    for replica in cluster.get("replicas", []):
        lines.append(
            f"  replica {replica.get('name'):<20} last heartbeat "
            f"{replica.get('age_seconds')}s ago (pid {replica.get('pid')} on "
            f"{replica.get('host')})"
        )
    for name, fig in sorted((cluster.get("plugins") or {}).items()):
        holder = f", lease held by {fig['lease_holder']}" if "lease_holder" in fig else ""
        lines.append(
            f"  {name:<24} lag {fig.get('lag', 0)}, pending {fig.get('pending', 0)}, "
            f"claims {fig.get('claims', 0)}, dead {fig.get('dead_letters', 0)}"
            f"{holder}"
        )
    return lines


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def journal(args: argparse.Namespace) -> int:
    """Dead letters: list them, make them pending again (retry), or forget them (purge)."""
    import os

    from reviewd.daemon import config as config_module
    from reviewd.daemon.journal import JournalError, open_journal

    config = _load(args, require_server=False)
    path = config_module.journal_path(config)
    redis = config.journal_backend == "redis"
    if not redis and not os.path.exists(path):
        sys.stderr.write(f"reviewd: no journal at {path} (set --journal or journal.path)\n")
        return EX_CONFIG
    try:
        store = open_journal(path, config, background=False)
    except JournalError as exc:
        sys.stderr.write(f"reviewd: {exc}\n")
        return 73
    try:
        if args.action == "list":
            rows = store.pending(args.plugin) if args.pending else store.dead_letters(args.plugin)
            if args.event_id:
                rows = [d for d in rows if d.event_id == args.event_id]
            for d in rows:
                error = (d.last_error or "").strip().splitlines()
                sys.stdout.write(
                    f"{d.event_id}  {d.plugin}  {d.topic}  {d.state}  "
                    f"attempts={d.attempts}  {error[-1] if error else ''}\n"
                )
            kind = "pending deliveries" if args.pending else "dead letters"
            sys.stdout.write(f"{len(rows)} {kind}\n")
        elif args.action == "stats":
            from reviewd.daemon.journal.stats import render_stats

            sys.stdout.write(render_stats(store))
        elif args.action == "retry":
            count = store.retry_dead(args.event_id, args.plugin)
            sys.stdout.write(
                f"{count} dead letter(s) made pending again; a running daemon "
                "picks them up within seconds, a stopped one on start\n"
            )
        else:
            count = store.purge_dead(args.event_id, args.plugin)
            sys.stdout.write(f"{count} dead letter(s) purged\n")
    finally:
        store.close()
    return EX_OK


if __name__ == "__main__":
    sys.exit(main())
