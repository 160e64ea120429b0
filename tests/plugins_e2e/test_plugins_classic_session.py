"""The classic plugin outside the daemon, the way studios run ftrack plugins today: a
plain ``Session(plugin_paths=...)`` discovers it while the session is being built,
and its hub delivers events to it."""

from __future__ import annotations

import datetime
import logging
import os

from reviewd import Session
from tests.plugins_e2e.harness import fresh_session
from tests.plugins_e2e.helpers import PLUGINS_DIR, wait_for

PLUGIN = os.path.join(PLUGINS_DIR, "version_to_review.py")


def plain_session(server, **arguments):
    return Session(
        server_url=server.url,
        api_key=server.api_key,
        api_user=server.api_user,
        plugin_paths=[PLUGIN],
        plugin_arguments=arguments,
        auto_connect_event_hub=True,
    )


def test_plugins_classic_plugin_runs_in_a_plain_session(devserver):
    listener = plain_session(devserver, name_pattern="Classic {project} {date}")
    try:
        wait_for(lambda: listener.event_hub.subscribed, what="the hub's subscriptions")
        session = fresh_session(devserver)
        version = session.query(
            'select id, version, asset.name from AssetVersion where asset.name is "SQ010_SH010_comp"'
            ' and status.name is_not "Pending Review"'
        ).first()
        version["status"] = session.query('Status where name is "Pending Review"').one()
        session.commit()

        today = datetime.date.today()
        names = {
            f"Classic demo_production {d.isoformat()}"
            for d in (today, today - datetime.timedelta(days=1))
        }

        def shown():
            listener.event_hub.wait(0.2)  # as in an ftrack_api script: handlers run here
            found = (
                fresh_session(devserver)
                .query("select name, review_session_objects.version_id from ReviewSession")
                .all()
            )
            return [
                rs["name"]
                for rs in found
                if rs["name"] in names
                and version["id"] in [o["version_id"] for o in rs["review_session_objects"]]
            ]

        assert len(wait_for(shown, what="the version in the classic-named session")) == 1
    finally:
        listener.close()


def test_plugins_classic_plugin_bad_status_disables_it_with_an_error(devserver, caplog):
    with caplog.at_level(logging.ERROR, logger="reviewd.plugins.version_to_review"):
        listener = plain_session(devserver, status="Waiting for review")
    try:
        errors = [r.getMessage() for r in caplog.records if r.name.endswith("version_to_review")]
        assert any(
            "argument status: unknown status 'Waiting for review'" in e and "disabled" in e
            for e in errors
        ), errors
    finally:
        listener.close()
