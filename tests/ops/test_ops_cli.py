"""The command line: every command in the top-level help, each command with only its own
options, closest-match suggestions, and a refused API key named in reviewd's terms."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.daemon.daemon_harness import DaemonProcess, clean_env

DAEMON_FLAGS = ("--foreground", "--plugin-path", "--log-level", "--log-format", "--embedded-server")


def reviewd(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "reviewd.daemon.cli", *args],
        env=clean_env(**(env or {})),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_top_level_help_lists_every_command():
    result = reviewd("--help")
    assert result.returncode == 0
    commands = result.stdout.split("commands:", 1)[1]
    for command in ("check-config", "status", "journal", "plugins", "devserver"):
        assert f"\n    {command} " in commands, command


@pytest.mark.parametrize(
    "command",
    [("check-config",), ("status",), ("journal",), ("journal", "list"), ("journal", "retry")],
)
def test_commands_show_only_their_own_options(command):
    result = reviewd(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: reviewd {' '.join(command)} ")
    for flag in DAEMON_FLAGS:
        assert flag not in result.stdout, (command, flag)


def test_journal_list_help_is_its_own():
    result = reviewd("journal", "list", "--help")
    assert "--pending" in result.stdout and "List dead letters" in result.stdout
    assert "--pending" not in reviewd("journal", "purge", "--help").stdout


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--plugins-path", "x"], "unknown option --plugins-path; did you mean --plugin-path?"),
        (["--log-levl", "debug"], "did you mean --log-level?"),
        (["status", "--jsn"], "did you mean --json?"),
        (["journal", "list", "--pendng"], "did you mean --pending?"),
        (["jornal", "list"], "unknown command 'jornal'; did you mean 'journal'?"),
        (["journal", "lst"], "did you mean 'list'?"),
    ],
)
def test_mistyped_flags_and_commands_suggest_the_closest(argv, expected):
    result = reviewd(*argv)
    assert result.returncode == 2
    assert expected in result.stderr
    assert "invalid choice: 'x'" not in result.stderr


def test_delegated_commands_must_come_first_and_a_path_named_plugins_is_a_path(tmp_path):
    result = reviewd("--log-level", "debug", "devserver", "--seed", "demo")
    assert result.returncode == 2
    assert "'devserver' must come first" in result.stderr
    # "plugins" as the value of --plugin-path is a folder, not the command.
    result = reviewd(
        "--plugin-path", "plugins", "--journal", str(tmp_path / "absent.sqlite3"), "journal", "list"
    )
    assert result.returncode == 78 and "no journal at" in result.stderr


def test_daemon_flags_still_work_before_a_command(tmp_path):
    result = reviewd("--journal", str(tmp_path / "absent.sqlite3"), "journal", "list")
    assert result.returncode == 78 and "no journal at" in result.stderr


def test_a_refused_api_key_names_reviewds_settings_once(tmp_path, devserver):
    daemon = DaemonProcess(
        tmp_path,
        ["--log-format", "console"],
        env={
            "FTRACK_SERVER": devserver.url,
            "FTRACK_API_USER": devserver.api_user,
            "FTRACK_API_KEY": "refused-key-" + os.urandom(4).hex(),
        },
    )
    assert daemon.proc.wait(timeout=60) == 78
    last = daemon.output().strip().splitlines()[-1]
    assert last.startswith("reviewd: configuration error: server.api_key: the ftrack server")
    for name in (
        "FTRACK_API_USER",
        "FTRACK_API_KEY",
        "REVIEWD_API_KEY_FILE",
        "server.user",
        "server.api_key_file",
    ):
        assert name in last, name
    # Said once, in reviewd's terms: not the request headers' names, no "check ... check".
    assert "ftrack-api-key" not in daemon.output() and "ftrack-user" not in daemon.output()
    assert last.count("refused") == 1 and "check" not in last.lower()
    assert "the API key from environment FTRACK_API_KEY" in last
