"""Misconfiguration is a clear load-time error for that plugin only: the plugin is
reported with a message naming the argument and the fix, and the others run."""

from __future__ import annotations

import json

import pytest

from tests.plugins_e2e.harness import fresh_session
from tests.plugins_e2e.helpers import PLUGINS_DIR
from tests.support import http_get

ALL = {"verdicts_to_status", "version_to_review", "review_digest", "status_rollup"}

CASES = [
    (
        "verdicts_to_status",
        {"approved_status": "Aproved"},
        "argument approved_status: unknown status 'Aproved'; known statuses: Approved,",
    ),
    (
        "verdicts_to_status",
        {"quorum": "most"},
        "argument quorum must be \"all\" or a positive integer, not 'most'",
    ),
    (
        "version_to_review",
        {"status": "Ready for review"},
        "argument status: unknown status 'Ready for review'",
    ),
    (
        "version_to_review",
        {"name_pattern": "Dailies {day}"},
        "uses {day}; allowed placeholders: {date}, {project}",
    ),
    (
        "version_to_review",
        {"replace_previous": "yes"},
        "argument replace_previous must be true or false",
    ),
    (
        "review_digest",
        {"folder": "/nonexistent/digests"},
        "argument folder: /nonexistent/digests does not exist",
    ),
    (
        "review_digest",
        {"webhook_url": "slack"},
        "argument webhook_url must be an http:// or https:// URL",
    ),
    ("status_rollup", {"revert_status": "Wip"}, "argument revert_status: unknown status 'Wip'"),
    ("status_rollup", {"parent_status": "In progress"}, "the parent could never go back"),
]


@pytest.mark.parametrize(
    "plugin, arguments, message", CASES, ids=[f"{c[0]}-{next(iter(c[1]))}" for c in CASES]
)
def test_plugins_bad_argument_fails_only_that_plugin(devserver_session, plugin, arguments, message):
    from reviewd.plugin import PluginHost

    host = PluginHost(
        fresh_session(devserver_session),
        paths=[PLUGINS_DIR],
        plugin_arguments={plugin: arguments},
        entry_points=False,
    )
    host.load_all()
    assert [record.name for record in host.failures] == [plugin]
    error = host.failures[0].error
    assert message in error
    assert "\n" not in error, "one line"
    assert set(host.loaded) == ALL - {plugin}


@pytest.mark.slow
def test_plugins_daemon_reports_misconfigured_plugins_and_runs_the_rest(server, make_daemon):
    daemon = make_daemon(
        server,
        {
            "status_rollup": {"task_status": "Finished"},
            "review_digest": {"folder": "/nonexistent/digests"},
        },
        ready=False,
    )
    # Not ready while a configured plugin failed to load, and /readyz says which.
    code, body = http_get(f"http://127.0.0.1:{daemon.port}/readyz")
    assert code == 503
    reasons = json.loads(body)["reasons"]
    assert any(r.startswith("plugin status_rollup failed to load") for r in reasons), reasons
    assert any(r.startswith("plugin review_digest failed to load") for r in reasons), reasons
    plugins = daemon.plugins()
    assert not plugins["status_rollup"]["loaded"]
    assert "unknown status 'Finished'" in plugins["status_rollup"]["error"]
    assert not plugins["review_digest"]["loaded"]
    assert "/nonexistent/digests does not exist" in plugins["review_digest"]["error"]
    assert plugins["verdicts_to_status"]["loaded"] and plugins["version_to_review"]["loaded"]
    log = daemon.log()
    assert "unknown status 'Finished'" in log and "/nonexistent/digests does not exist" in log
