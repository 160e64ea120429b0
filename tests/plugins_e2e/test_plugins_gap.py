"""Verdicts recorded while the daemon's hub is disconnected are never delivered as
events; verdicts_to_status catches up through the ``reviewd_hub_gap`` hook.

On the plugin kit's fixtures: the daemon runs in-process (``reviewd_plugin``), the
outage is the embedded server refusing the hub (``ftrack_server.faults``)."""

from __future__ import annotations

import os

import pytest

from tests.plugins_e2e.helpers import PLUGINS_DIR

pytestmark = pytest.mark.slow


def test_plugins_verdicts_recorded_during_a_hub_gap_are_applied(
    ftrack_server, ftrack_session, ftrack_changes, reviewd_plugin, wait_for
):
    verdicts = reviewd_plugin(os.path.join(PLUGINS_DIR, "verdicts_to_status.py"))
    review = ftrack_session.query('ReviewSession where name is "Dailies 2026-11-06"').one()
    review_object = ftrack_session.query(
        "select version_id from ReviewSessionObject where "
        f'review_session_id is "{review["id"]}" and name is "SQ020_SH010_comp"'
    ).one()
    invitees = [
        i["name"]
        for i in ftrack_session.query(
            f'select name from ReviewSessionInvitee where review_session_id is "{review["id"]}"'
        ).all()
    ]
    assert len(invitees) == 2

    ftrack_server.faults.refuse_handshakes(3.0)
    wait_for(lambda: not verdicts.daemon.hub.connected, message="the hub to drop")
    for name in invitees:
        ftrack_changes.record_verdict(
            review_object["version_id"], "approved", invitee=name, review_session=review
        )
    assert not verdicts.daemon.hub.connected, "the verdicts must be recorded during the gap"

    def version_status():
        return ftrack_session.query(
            f'select status.name from AssetVersion where id is "{review_object["version_id"]}"'
        ).one()["status"]["name"]

    wait_for(
        lambda: version_status() == "Approved",
        timeout=30,
        message="the version approved after the gap",
    )
    verdicts.wait_idle()
    assert verdicts.failed == 0
    assert (
        verdicts.metric("reviewd_plugin_verdicts_to_status_actions_total", action="gap_reconciled")
        >= 1
    )
