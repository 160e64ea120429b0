"""The example plugins under ``reviewd.testing``'s fixtures: each scenario is a change
made as a user makes it (``ftrack_changes``) and the plugin's effect read back, with
the daemon's lanes, journal and retries in between (``reviewd_plugin``).  Short enough
to serve as the model for a plugin author's own tests."""

from __future__ import annotations

import datetime
import os

import pytest

from tests.plugins_e2e.helpers import PLUGINS_DIR

pytestmark = pytest.mark.slow


def plugin(name):
    return os.path.join(PLUGINS_DIR, f"{name}.py")


def status_of(session, version):
    return session.query(
        f'select status.name from AssetVersion where id is "{version["id"]}"'
    ).one()["status"]["name"]


def test_plugins_verdicts_to_status_one_request_for_changes(
    ftrack_session, ftrack_changes, reviewd_plugin, wait_for
):
    verdicts = reviewd_plugin(plugin("verdicts_to_status"))
    version = ftrack_changes.add_version("SQ020_SH030_comp", status="Pending Review")

    ftrack_changes.record_verdict(version, "require_changes", invitee="Ann Lead")

    wait_for(
        lambda: status_of(ftrack_session, version) == "Requires changes",
        message="the version to require changes",
    )
    verdicts.wait_idle()
    assert verdicts.failed == 0


def test_plugins_version_to_review_adds_a_published_version(
    ftrack_session, ftrack_changes, reviewd_plugin, wait_for
):
    reviewd_plugin(plugin("version_to_review"), {"name_pattern": "Kit {project} {date}"})

    version = ftrack_changes.add_version("SQ010_SH020_comp", status="Pending Review")

    today = datetime.date.today()
    names = {
        f"Kit demo_production {d.isoformat()}" for d in (today, today - datetime.timedelta(days=1))
    }

    def in_review():
        objects = ftrack_session.query(
            "select review_session.name from ReviewSessionObject "
            f'where version_id is "{version["id"]}"'
        ).all()
        return [
            o["review_session"]["name"] for o in objects if o["review_session"]["name"] in names
        ]

    assert len(wait_for(in_review, message="the version in today's review session")) == 1
