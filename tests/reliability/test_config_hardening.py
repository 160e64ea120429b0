"""Configuration the daemon would die on (issue 14, finding 5).

Before the fix: a non-UTF-8 config file was a traceback and exit 1 at start and killed
a running daemon on SIGHUP; ``check-config`` accepted ``REVIEWD_CONCURRENCY=100000``
and port 99999; a mistyped ``REVIEWD_*`` variable did nothing, silently.
"""

from __future__ import annotations

import signal

import pytest

from reviewd.daemon import config as config_module
from tests.daemon.daemon_harness import DaemonProcess, service_env, wait_for
from tests.daemon.test_daemon_config import run_cli

SERVICE = {"FTRACK_SERVER": "http://127.0.0.1:9", "FTRACK_API_KEY": "secret-cfg-77"}
NOT_UTF8 = b'[daemon]\nlog_level = "info" # caf\xe9\n'


def test_non_utf8_config_at_start_is_one_line_and_exit_78(tmp_path):
    path = tmp_path / "reviewd.toml"
    path.write_bytes(NOT_UTF8)
    for args in (["check-config", "--config", str(path)], ["--config", str(path)]):
        result = run_cli(*args, env={**SERVICE, "REVIEWD_STATE_DIR": str(tmp_path)})
        assert result.returncode == 78, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "not UTF-8" in lines[0], result.stderr
        assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"REVIEWD_CONCURRENCY": "100000"}, "routing.concurrency"),
        ({"REVIEWD_QUEUE_SIZE": "999999999999"}, "routing.queue_size"),
        ({"REVIEWD_MAX_ATTEMPTS": "10000000"}, "routing.max_attempts"),
        ({"REVIEWD_HTTP": "127.0.0.1:99999"}, "daemon.http"),
        ({"FTRACK_SERVER": "http://127.0.0.1:99999"}, "server.url"),
        ({"FTRACK_SERVER": "http://127.0.0.1:0"}, "server.url"),
        ({"REVIEWD_HARD_TIMEOUT": "1e300"}, "routing.hard_timeout"),
        ({"REVIEWD_GRACE_PERIOD": "nan"}, "daemon.grace_period"),
        ({"REVIEWD_SIMULATE": "inf"}, "daemon.simulate"),
    ],
)
def test_check_config_refuses_values_the_daemon_would_die_on(env, key):
    result = run_cli("check-config", env={**SERVICE, **env})
    assert result.returncode == 78, result.stdout + result.stderr
    assert key in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_largest_accepted_concurrency_still_runs(tmp_path):
    # The bound is what a lane can really start: 64 worker threads per plugin.
    loaded = config_module.load(environ={**SERVICE, "REVIEWD_CONCURRENCY": "64"})
    assert loaded.concurrency == 64


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("REVIEWD_LOGLEVEL", "REVIEWD_LOG_LEVEL"),
        ("REVIEWD_HTTP_PORT", "REVIEWD_HTTP"),
        ("REVIEWD_CONCURENCY", "REVIEWD_CONCURRENCY"),
    ],
)
def test_misspelt_variable_is_a_warning_naming_the_closest_name(typo, meant):
    result = run_cli("check-config", env={**SERVICE, typo: "1"})
    assert result.returncode == 0, result.stderr
    assert f"{typo} is not a reviewd setting; did you mean {meant}?" in result.stderr


def test_known_variables_raise_no_warning():
    environ = {**SERVICE, **{name: "x" for name in config_module.known_variables()}}
    assert config_module.unknown_environment(environ) == []


def test_sighup_with_a_non_utf8_config_keeps_the_running_configuration(tmp_path, devserver):
    path = tmp_path / "reviewd.toml"
    # No plugins here: plugins.required = false keeps an empty daemon ready (ops's rule).
    path.write_text('[daemon]\nlog_level = "info"\n[plugins]\nrequired = false\n')
    daemon = DaemonProcess(tmp_path, ["--config", str(path)], env=service_env(devserver))
    try:
        daemon.wait_ready()
        path.write_bytes(NOT_UTF8)
        daemon.signal(signal.SIGHUP)
        wait_for(
            lambda: any(
                r.get("event", "").startswith("reload refused") for r in daemon.log_records()
            ),
            message="the reload refusal",
        )
        refusal = next(
            r for r in daemon.log_records() if r.get("event", "").startswith("reload refused")
        )
        assert "not UTF-8" in refusal["error"]
        assert daemon.proc.poll() is None
        assert daemon.get("/readyz")[0] == 200
    finally:
        assert daemon.stop() == 0, daemon.output()
