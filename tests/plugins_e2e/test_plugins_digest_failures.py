"""review_digest when delivery fails: the plugin against a real server, its webhook
pointing at a port where nothing listens."""

from __future__ import annotations

from tests.plugins_e2e.harness import free_port, fresh_session
from tests.plugins_e2e.helpers import load_plugin_module

digest = load_plugin_module("review_digest")


def test_plugins_digest_webhook_down_reports_failure_and_adds_no_note(devserver, tmp_path):
    session = fresh_session(devserver)
    review = session.query('select id from ReviewSession where name is "Dailies 2026-11-06"').one()
    url = f"http://127.0.0.1:{free_port()}/hook"
    plugin = digest.ReviewDigest(
        session,
        digest.parse_settings({"folder": str(tmp_path), "webhook_url": url, "webhook_timeout": 2}),
    )
    launch = {"data": {"selection": [{"entityId": review["id"], "entityType": "reviewsession"}]}}

    reply = plugin.launch(launch)

    assert reply["success"] is False
    assert url in reply["message"] and "Launch again to retry" in reply["message"]
    notes = (
        fresh_session(devserver)
        .query(f'select content from Note where parent_id is "{review["id"]}"')
        .all()
    )
    assert notes == []


def test_plugins_digest_unknown_review_session_is_a_polite_failure(devserver):
    plugin = digest.ReviewDigest(fresh_session(devserver), digest.parse_settings({}))
    selection = [{"entityId": "no-such-session", "entityType": "reviewsession"}]
    reply = plugin.launch({"data": {"selection": selection}})
    assert reply == {"success": False, "message": "Review session no-such-session not found."}
    assert (
        plugin.discover({"data": {"selection": [{"entityId": "x", "entityType": "task"}]}}) is None
    )
