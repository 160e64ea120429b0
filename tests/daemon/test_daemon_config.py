"""Configuration: precedence file < environment < flags, key sources, one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from reviewd.api.exception import redact
from reviewd.daemon import config as cfg

BASE_ENV = {
    "FTRACK_SERVER": "http://127.0.0.1:1",
    "FTRACK_API_KEY": "cfgtest-k-env-0001",
    "FTRACK_API_USER": "jane",
}


def write(tmp_path, text: str, name: str = "reviewd.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_precedence_file_then_environment_then_flags(tmp_path):
    path = write(
        tmp_path,
        """
[server]
url = "http://file.example:8080/"
user = "file-user"
api_key = "cfgtest-file-key-123"
[routing]
concurrency = 2
soft_timeout = "10s"
hard_timeout = "2m"
""",
    )
    config = cfg.load(environ={}, config_file=path)
    assert config.server_url == "http://file.example:8080"  # trailing slash stripped
    assert config.api_user == "file-user"
    assert config.api_key == "cfgtest-file-key-123"
    assert (config.concurrency, config.soft_timeout, config.hard_timeout) == (2, 10.0, 120.0)

    env = {
        "FTRACK_SERVER": "http://env.example",
        "REVIEWD_CONCURRENCY": "3",
        "FTRACK_API_KEY": "cfgtest-env-key-456",
    }
    config = cfg.load(environ=env, config_file=path)
    assert config.server_url == "http://env.example"
    assert config.concurrency == 3
    assert config.api_key == "cfgtest-env-key-456"
    assert config.sources["concurrency"] == "environment REVIEWD_CONCURRENCY"

    config = cfg.load(flags={"concurrency": 4, "log_level": "debug"}, environ=env, config_file=path)
    assert config.concurrency == 4 and config.log_level == "debug"
    assert config.sources["concurrency"] == "command line"


def test_defaults_and_per_plugin_routing(tmp_path):
    path = write(
        tmp_path,
        """
[routing.plugins.slowpoke]
concurrency = 4
max_attempts = 2
[plugins.arguments]
studio = "acme"
[plugin.slowpoke]
colour = "blue"
""",
    )
    config = cfg.load(environ=BASE_ENV, config_file=path)
    assert config.http == ("127.0.0.1", 9120)
    assert config.routing_for("slowpoke")["concurrency"] == 4
    assert config.routing_for("slowpoke")["max_attempts"] == 2
    assert config.routing_for("other")["concurrency"] == 1
    assert config.plugin_arguments == {"studio": "acme"}
    assert config.per_plugin_arguments == {"slowpoke": {"colour": "blue"}}


def test_plugin_paths_from_ftrack_variable(tmp_path):
    env = dict(BASE_ENV, FTRACK_EVENT_PLUGIN_PATH=f"/a{os.pathsep}/b{os.pathsep}")
    assert cfg.load(environ=env).plugin_paths == ["/a", "/b"]


def test_api_key_file_and_systemd_credential(tmp_path):
    key_file = write(tmp_path, "cfgtest-from-file-key\n", "key")
    env = {"FTRACK_SERVER": "http://x", "REVIEWD_API_KEY_FILE": key_file}
    assert cfg.load(environ=env).api_key == "cfgtest-from-file-key"

    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "ftrack_api_key").write_text("cfgtest-credential-key\n")
    env["CREDENTIALS_DIRECTORY"] = str(creds)
    assert cfg.load(environ=env).api_key == "cfgtest-credential-key"
    env["FTRACK_API_KEY"] = "cfgtest-env-wins-key"
    assert cfg.load(environ=env).api_key == "cfgtest-env-wins-key"


def test_loaded_key_is_registered_as_secret():
    cfg.load(environ=dict(BASE_ENV, FTRACK_API_KEY="very-secret-key-42"))
    assert redact("key=very-secret-key-42!") == "key=***!"


@pytest.mark.parametrize(
    ("toml", "env", "key", "words"),
    [
        ("[routing]\nconcurrency = 0\n", {}, "routing.concurrency", ">= 1"),
        ("[routing]\nconcurency = 2\n", {}, "routing.concurency", "unknown setting"),
        ('[daemon]\nhttp = "nowhere"\n', {}, "daemon.http", "HOST:PORT"),
        ('[daemon]\nlog_format = "xml"\n', {}, "daemon.log_format", "console"),
        ('[routing]\nsoft_timeout = "fast"\n', {}, "routing.soft_timeout", "duration"),
        ("", {"REVIEWD_MAX_ATTEMPTS": "many"}, "routing.max_attempts", "REVIEWD_MAX_ATTEMPTS"),
        ('[server]\nurl = "ftp://x"\n', {"FTRACK_SERVER": ""}, "server.url", "http"),
        (
            "[routing]\nsoft_timeout = 20\nhard_timeout = 10\n",
            {},
            "routing.soft_timeout",
            "hard_timeout",
        ),
        ("[routing.plugins.p]\nspeed = 3\n", {}, "routing.plugins.p.speed", "unknown"),
        ("[server\n", {}, "config", "not valid TOML"),
        ('[journal]\nbackend = "redis"\n', {}, "journal.redis_url", "must be set"),
    ],
)
def test_invalid_values_name_the_key_in_one_line(tmp_path, toml, env, key, words):
    path = write(tmp_path, toml)
    with pytest.raises(cfg.ConfigError) as info:
        cfg.load(environ=dict(BASE_ENV, **env), config_file=path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(key + ":")
    assert words in message


def test_missing_server_is_an_error_as_a_service_but_not_in_the_foreground():
    env = {"FTRACK_API_KEY": "cfgtest-abcd1234"}
    with pytest.raises(cfg.ConfigError, match=r"^server\.url: not set"):
        cfg.load(environ=env)
    config = cfg.load(environ={}, foreground=True)
    assert cfg.uses_embedded_server(config)
    assert config.watch_plugins is True


def test_missing_key_and_unreadable_key_file(tmp_path):
    with pytest.raises(cfg.ConfigError, match=r"^server\.api_key: not set"):
        cfg.load(environ={"FTRACK_SERVER": "http://x"})
    env = {"FTRACK_SERVER": "http://x", "REVIEWD_API_KEY_FILE": str(tmp_path / "absent")}
    with pytest.raises(cfg.ConfigError, match=r"^server\.api_key_file: cannot read"):
        cfg.load(environ=env)


def test_missing_explicit_config_file(tmp_path):
    with pytest.raises(cfg.ConfigError, match="does not exist"):
        cfg.load(environ=BASE_ENV, config_file=str(tmp_path / "nope.toml"))


def test_public_view_never_contains_the_key():
    config = cfg.load(environ=dict(BASE_ENV, FTRACK_API_KEY="hidden-key-777"))
    assert "hidden-key-777" not in repr(config)
    assert "hidden-key-777" not in repr(config.public())
    assert config.public()["api_key_set"] is True


def test_durations():
    assert cfg.parse_duration("500ms") == 0.5
    assert cfg.parse_duration("7d") == 7 * 86400
    assert cfg.parse_duration(3) == 3.0
    with pytest.raises(ValueError):
        cfg.parse_duration("-1s")


def run_cli(*args, env=None, cwd=None, timeout=60):
    full_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FTRACK_", "REVIEWD_", "NOTIFY_SOCKET"))
    }
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "reviewd.daemon.cli", *args],
        env=full_env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_cli_bad_config_exits_78_with_one_line(tmp_path):
    path = write(tmp_path, "[routing]\nconcurrency = -2\n")
    result = run_cli(
        "check-config",
        "--config",
        path,
        env={"FTRACK_SERVER": "http://x", "FTRACK_API_KEY": "secret-xyz-1"},
    )
    assert result.returncode == 78
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "routing.concurrency" in lines[0] and ">= 1" in lines[0]

    result = run_cli(
        "--config", path, env={"FTRACK_SERVER": "http://x", "FTRACK_API_KEY": "secret-xyz-1"}
    )
    assert result.returncode == 78
    assert "routing.concurrency" in result.stderr


def test_cli_service_without_server_exits_78(tmp_path):
    result = run_cli("--http", "off", env={"REVIEWD_STATE_DIR": str(tmp_path)}, cwd=tmp_path)
    assert result.returncode == 78
    assert result.stderr.strip().count("\n") == 0
    assert "server.url" in result.stderr


def test_cli_check_config_ok_hides_key(tmp_path):
    result = run_cli(
        "check-config", env={"FTRACK_SERVER": "http://x", "FTRACK_API_KEY": "secret-check-9"}
    )
    assert result.returncode == 0, result.stderr
    assert "http://x" in result.stdout
    assert "secret-check-9" not in result.stdout + result.stderr


def test_cli_version():
    import platform

    from reviewd import __version__

    result = run_cli("--version")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0] == f"reviewd {__version__}"
    assert lines[1].startswith(f"Python {platform.python_version()} ")
    assert "ftrack-python-api 3.1.0" in lines[2]


def test_cli_status_without_a_daemon_exits_69(tmp_path):
    from tests.daemon.daemon_harness import free_port

    result = run_cli("status", env={"REVIEWD_HTTP": f"127.0.0.1:{free_port()}"})
    assert result.returncode == 69
    assert "no daemon answering" in result.stderr


def test_cli_journal_without_a_journal_file(tmp_path):
    result = run_cli("journal", "list", "--journal", str(tmp_path / "absent.sqlite3"))
    assert result.returncode == 78
    assert "no journal at" in result.stderr


def test_cli_unusable_journal_path_exits_73(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = run_cli(
        "--http",
        "off",
        "--journal",
        str(blocker / "journal.sqlite3"),
        env={
            "FTRACK_SERVER": "http://127.0.0.1:1",
            "FTRACK_API_KEY": "cfgtest-abcd-1234",
            "REVIEWD_LOG_FORMAT": "json",
        },
    )
    assert result.returncode == 73
    assert result.stderr.strip().splitlines()[-1].startswith("reviewd: journal.path: cannot open")


def test_cli_dispatches_devserver_and_plugins():
    for command, words in (("devserver", "reviewd devserver"), ("plugins", "reviewd plugins")):
        result = run_cli(command, "--help")
        assert result.returncode == 0, result.stderr
        assert words in result.stdout
