"""Acceptance: the real ``reviewd`` process exports the duration and errors of its
session's ``/api`` requests — plugins' requests included — on ``/metrics``."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from .daemon_harness import DaemonProcess, lines_of, service_env, wait_for, write_plugin

API_CALLER = """
    import os

    OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "calls.txt")

    def register(session, **kwargs):
        def mixed_batch(event):
            session.call([
                {"action": "query", "expression": "select id from Project"},
                {"action": "query", "expression": "select id from Project"},
                {"action": "query_server_information"},
            ])
            with open(OUT, "a") as handle:
                handle.write("ok\\n")

        def failing(event):
            try:
                session.call([{"action": "query", "expression": "select id from NoSuchType"}])
            except Exception as exc:
                with open(OUT, "a") as handle:
                    handle.write(type(exc).__name__ + "\\n")

        session.event_hub.subscribe("topic=test.api.ok", mixed_batch)
        session.event_hub.subscribe("topic=test.api.bad", failing)
"""


def sample(text: str, name: str, **labels: str) -> float:
    """The value of sample *name* with exactly *labels* in a scrape, 0 when absent."""
    for family in text_string_to_metric_families(text):
        for item in family.samples:
            if item.name == name and item.labels == labels:
                return item.value
    return 0.0


def test_api_request_duration_and_errors_by_action_on_metrics(tmp_path, devserver):
    write_plugin(tmp_path / "plugins", "api_caller", API_CALLER)
    env = service_env(devserver, FTRACK_EVENT_PLUGIN_PATH=str(tmp_path / "plugins"))
    daemon = DaemonProcess(tmp_path, [], env=env)
    count = "reviewd_api_request_duration_seconds_count"
    total = "reviewd_api_request_duration_seconds_sum"
    errors = "reviewd_api_request_errors_total"
    try:
        daemon.wait_ready()
        wait_for(
            lambda: any(
                "test.api.bad" in sub["subscription"]
                for conn in devserver.events.connections()
                for sub in conn["subscribers"]
            ),
            message="the plugin's subscriptions on the server",
        )
        before = daemon.get("/metrics")[1]

        devserver.emit("test.api.ok", {})
        wait_for(
            lambda: lines_of(tmp_path / "calls.txt") == ["ok"], message="the plugin's mixed batch"
        )
        after_ok = daemon.get("/metrics")[1]
        # One request holding two queries and a query_server_information: each distinct
        # action observed once, with the request's duration.
        assert sample(after_ok, count, action="query") - sample(before, count, action="query") == 1
        assert (
            sample(after_ok, count, action="query_server_information")
            - sample(before, count, action="query_server_information")
        ) == 1
        assert sample(after_ok, total, action="query") > sample(before, total, action="query")
        assert sample(after_ok, errors, action="query", error="ServerError") == 0

        devserver.emit("test.api.bad", {})
        wait_for(
            lambda: lines_of(tmp_path / "calls.txt") == ["ok", "ServerError"],
            message="the plugin's failing request",
        )
        after_bad = daemon.get("/metrics")[1]
        assert sample(after_bad, errors, action="query", error="ServerError") == 1
        assert (
            sample(after_bad, count, action="query") - sample(after_ok, count, action="query") == 1
        )
        assert "# TYPE reviewd_api_request_duration_seconds histogram" in after_bad
        assert devserver.api_key not in after_bad
    finally:
        assert daemon.stop() == 0, daemon.output()
