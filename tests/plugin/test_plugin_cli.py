"""``reviewd plugins list`` and ``reviewd plugins check PATH``, run as real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.plugin.plugin_support import write_plugin

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

GOOD_CLASSIC = """
    import ftrack_api

    def register(session, **kw):
        if not isinstance(session, ftrack_api.Session):
            return
        session.event_hub.subscribe("topic=ftrack.update", lambda event: None, priority=20)
"""

GOOD_PLUGGY = """
    import reviewd

    @reviewd.hookimpl
    def reviewd_register(registry, arguments):
        registry.subscribe("topic=" + arguments["topic"], lambda event: None, concurrency=2)

    @reviewd.hookimpl
    def reviewd_health():
        return True
"""

BROKEN = "def register(session):\n    raise RuntimeError('needs a database')\n"


def _reviewd(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("REVIEWD_CONFIG", "REVIEWD_PLUGIN_PATH", "FTRACK_EVENT_PLUGIN_PATH")
    }
    env["PYTHONPATH"] = ROOT
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "reviewd.daemon.cli", "plugins", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )


def test_check_passes_for_good_plugins(tmp_path):
    write_plugin(tmp_path, "watcher.py", GOOD_CLASSIC)
    write_plugin(tmp_path, "verdicts.py", GOOD_PLUGGY)
    result = _reviewd("check", str(tmp_path), "--plugin-arg", "verdicts.topic=review.verdict")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "watcher  [classic, loaded]" in result.stdout
    assert "subscribes 'topic=ftrack.update' (priority 20" in result.stdout
    assert (
        "subscribes 'topic=review.verdict' (priority 100, concurrency 2, via hook)" in result.stdout
    )
    assert "problem" not in result.stdout


def test_check_fails_with_exit_78_and_a_one_line_reason(tmp_path):
    write_plugin(tmp_path, "watcher.py", GOOD_CLASSIC)
    write_plugin(tmp_path, "needs_db.py", BROKEN)
    write_plugin(tmp_path, "typo.py", "def register(session:\n")
    result = _reviewd("check", str(tmp_path))
    assert result.returncode == 78
    assert "watcher  [classic, loaded]" in result.stdout
    assert "needs_db  [classic, FAILED]" in result.stdout
    assert "error: register() raised: RuntimeError: needs a database" in result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("reviewd plugins: plugin 'needs_db'")
    assert "needs a database" in last and "and 1 more" in last
    assert "Traceback" not in result.stderr


def test_list_as_json_with_paths_and_arguments_from_a_config_file(tmp_path):
    plugins = tmp_path / "plugins"
    write_plugin(plugins, "verdicts.py", GOOD_PLUGGY)
    write_plugin(plugins, "needs_db.py", BROKEN)
    config = tmp_path / "reviewd.toml"
    config.write_text(
        f'[plugins]\npaths = ["{plugins}"]\n\n[plugin.verdicts]\ntopic = "review.from-config"\n'
    )
    result = _reviewd("list", "--config", str(config), "--no-entry-points", "--json")
    assert result.returncode == 0, result.stderr  # not strict: failures are listed, not fatal
    report = json.loads(result.stdout)
    by_name = {p["name"]: p for p in report["plugins"]}
    assert by_name["verdicts"]["kind"] == "pluggy" and by_name["verdicts"]["loaded"]
    assert [s["expression"] for s in by_name["verdicts"]["subscriptions"]] == [
        "topic=review.from-config"
    ]
    assert by_name["needs_db"]["error"] == "register() raised: RuntimeError: needs a database"
    assert any("needs_db" in problem for problem in report["problems"])


def test_list_reads_the_ftrack_environment_variable_and_strict_exits_78(tmp_path):
    write_plugin(tmp_path, "needs_db.py", BROKEN)
    env = {"FTRACK_EVENT_PLUGIN_PATH": str(tmp_path)}
    relaxed = _reviewd("list", "--no-entry-points", env_extra=env)
    assert relaxed.returncode == 0 and "needs_db  [classic, FAILED]" in relaxed.stdout
    strict = _reviewd("list", "--no-entry-points", "--strict", env_extra=env)
    assert strict.returncode == 78
    assert strict.stderr.strip().splitlines()[-1].startswith("reviewd plugins: plugin 'needs_db'")


def test_bad_usage_is_reported_not_raised(tmp_path):
    result = _reviewd("check", str(tmp_path), "--arg", "no-equals-sign")
    assert result.returncode == 78
    assert result.stderr.strip() == "reviewd plugins: --arg needs KEY=VALUE, got 'no-equals-sign'"
    assert _reviewd("frobnicate").returncode == 64


NOTHING_REGISTERED = """
    import ftrack_api.session

    def register(session, **kw):
        if not isinstance(session, ftrack_api.session.Session):
            return
        if kw.get("enabled"):
            session.event_hub.subscribe("topic=ftrack.update", print)
"""


def test_check_exits_non_zero_naming_a_classic_plugin_that_subscribed_nothing(tmp_path):
    write_plugin(tmp_path, "watcher.py", GOOD_CLASSIC)
    write_plugin(tmp_path, "idle.py", NOTHING_REGISTERED)
    result = _reviewd("check", str(tmp_path))
    assert result.returncode == 78, result.stdout + result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("reviewd plugins: plugin 'idle'")
    assert "register() subscribed nothing" in last and "likely cause" in last
    assert "watcher" not in last
    assert "Traceback" not in result.stderr


def test_check_passes_once_the_plugin_subscribes(tmp_path):
    write_plugin(tmp_path, "idle.py", NOTHING_REGISTERED)
    result = _reviewd("check", str(tmp_path), "--arg", "enabled=1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "subscribes 'topic=ftrack.update'" in result.stdout
