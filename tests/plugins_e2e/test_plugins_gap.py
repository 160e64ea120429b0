"""Verdicts recorded while the daemon's hub is disconnected are never delivered as
events; verdicts_to_status catches up through the ``reviewd_hub_gap`` hook."""

from __future__ import annotations

import datetime

import pytest

from tests.plugins_e2e.harness import fresh_session
from tests.plugins_e2e.helpers import wait_for

pytestmark = pytest.mark.slow


def test_plugins_verdicts_recorded_during_a_hub_gap_are_applied(server, make_daemon):
    daemon = make_daemon(server)
    session = fresh_session(server)
    review_object = session.query(
        "select id, version_id, review_session_id from ReviewSessionObject"
        ' where review_session.name is "Dailies 2026-11-06" and name is "SQ020_SH010_comp"'
    ).one()
    invitees = session.query(
        "select id from ReviewSessionInvitee"
        f' where review_session_id is "{review_object["review_session_id"]}"'
    ).all()
    assert len(invitees) == 2
    reconciled = daemon.counter("verdicts_to_status", "gap_reconciled")

    server.faults.refuse_handshakes(3.0)
    wait_for(lambda: not daemon.get("/status")["hub"]["connected"], what="the hub to drop")
    for invitee in invitees:
        session.create(
            "ReviewSessionObjectStatus",
            {
                "status": "approved",
                "review_session_object_id": review_object["id"],
                "review_session_invitee_id": invitee["id"],
                "created_at": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0),
            },
        )
    session.commit()

    wait_for(
        lambda: daemon.counter("verdicts_to_status", "gap_reconciled") > reconciled,
        timeout=30,
        what="the gap to be reconciled",
    )
    version = wait_for(
        lambda: (
            (
                v := fresh_session(server)
                .query(
                    f'select status.name from AssetVersion where id is "{review_object["version_id"]}"'
                )
                .one()
            )["status"]["name"]
            == "Approved"
            and v
        ),
        what="the version approved after the gap",
    )
    assert version["status"]["name"] == "Approved"
