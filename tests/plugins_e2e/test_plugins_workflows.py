"""Each plugin's scenario end to end: the embedded server, the real ``reviewd`` process
loading ``plugins/``, changes made through the API as a user would make them, and the
results read back from a fresh session.  Each scenario then delivers the same events
again and checks that nothing more changes.

The tests share one server and one daemon (starting them is the slow part) and work on
disjoint shots, so their order does not matter.
"""

from __future__ import annotations

import datetime
import os

import pytest

from tests.plugins_e2e.harness import emit, fresh_session, redeliver
from tests.plugins_e2e.helpers import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def digest_folder(tmp_path_factory):
    return tmp_path_factory.mktemp("digests")


@pytest.fixture(scope="module")
def daemon(server, make_daemon, webhook, digest_folder, recorder):
    return make_daemon(
        server, {"review_digest": {"folder": str(digest_folder), "webhook_url": webhook.url}}
    )


def status_named(session, name):
    return session.query(f'select id, name from Status where name is "{name}"').one()


def now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def version_state(server, version_id):
    """(version status, task status, summary notes) as the server has them now."""
    session = fresh_session(server)
    version = session.query(
        f'select status.name, task.status.name from AssetVersion where id is "{version_id}"'
    ).one()
    notes = session.query(f'select content from Note where parent_id is "{version_id}"').all()
    summaries = [n["content"] for n in notes if n["content"].startswith("Review verdicts for ")]
    return version["status"]["name"], version["task"]["status"]["name"], summaries


# ------------------------------------------------------------------ verdicts to status
@pytest.fixture(scope="module")
def review(server, daemon):
    """A review session of our own: two invitees, two versions of SQ020/SH020's comp."""
    session = fresh_session(server)
    project = session.query('select id from Project where name is "demo_production"').one()
    admin = session.query(f'select id from User where username is "{server.api_user}"').one()
    versions = session.query(
        'select id, version from AssetVersion where asset.name is "SQ020_SH020_comp"'
    ).all()
    to_approve, to_reject = sorted(versions, key=lambda v: v["version"])[-2:]
    pending = status_named(session, "Pending Review")
    for version in (to_approve, to_reject):
        version["status"] = pending
    review_session = session.create(
        "ReviewSession",
        {
            "name": "E2E verdicts",
            "description": "",
            "project_id": project["id"],
            "created_by_id": admin["id"],
            "start_date": now(),
            "end_date": now(),
            "created_at": now(),
        },
    )
    invitees = [
        session.create(
            "ReviewSessionInvitee",
            {
                "name": name,
                "email": f"{name.split()[0].lower()}@studio.example",
                "review_session_id": review_session["id"],
                "created_by_id": admin["id"],
            },
        )
        for name in ("Ann Lead", "Bob Sup")
    ]
    objects = {}
    for order, (key, version) in enumerate((("approve", to_approve), ("reject", to_reject))):
        objects[key] = session.create(
            "ReviewSessionObject",
            {
                "name": "SQ020_SH020_comp",
                "description": "",
                "version": f"v{version['version']:03d}",
                "version_id": version["id"],
                "review_session_id": review_session["id"],
                "sort_order": order,
            },
        )
    session.commit()
    return {
        "versions": {"approve": to_approve["id"], "reject": to_reject["id"]},
        "objects": {key: value["id"] for key, value in objects.items()},
        "invitees": [invitee["id"] for invitee in invitees],
    }


def record_verdict(server, object_id, invitee_id, verdict) -> str:
    session = fresh_session(server)
    created = session.create(
        "ReviewSessionObjectStatus",
        {
            "status": verdict,
            "review_session_object_id": object_id,
            "review_session_invitee_id": invitee_id,
            "created_at": now(),
        },
    )
    session.commit()
    return created["id"]


def test_plugins_verdicts_approval_needs_every_invitee(server, daemon, review, recorder):
    version_id = review["versions"]["approve"]
    ann, bob = review["invitees"]
    before = version_state(server, version_id)
    assert before[0] == "Pending Review" and before[2] == []
    undecided = daemon.counter("verdicts_to_status", "undecided")

    record_verdict(server, review["objects"]["approve"], ann, "approved")
    wait_for(
        lambda: daemon.counter("verdicts_to_status", "undecided") > undecided,
        what="the first verdict to be weighed",
    )
    assert version_state(server, version_id) == before

    record_verdict(server, review["objects"]["approve"], bob, "approved")
    status, task_status, notes = wait_for(
        lambda: (state := version_state(server, version_id))[0] == "Approved" and state,
        what="the version to be approved",
    )
    assert task_status == "Approved"
    assert len(notes) == 1
    assert "- Ann Lead: approved" in notes[0] and "- Bob Sup: approved" in notes[0]
    assert daemon.counter("verdicts_to_status", "outcome_approved") >= 1


def test_plugins_verdicts_one_require_changes_is_enough(server, daemon, review):
    version_id = review["versions"]["reject"]
    ann, _bob = review["invitees"]
    record_verdict(server, review["objects"]["reject"], ann, "require_changes")
    status, task_status, notes = wait_for(
        lambda: (state := version_state(server, version_id))[0] == "Requires changes" and state,
        what="the version to require changes",
    )
    assert task_status == "In progress"
    assert len(notes) == 1 and "- Ann Lead: require changes" in notes[0]
    assert "Bob Sup" not in notes[0]


def test_plugins_verdicts_replay_changes_nothing(server, daemon, review, recorder):
    version_id = review["versions"]["approve"]
    wait_for(lambda: version_state(server, version_id)[0] == "Approved", what="approval")
    verdict_events = recorder.matching(
        lambda e: e.get("entity_type") == "ReviewSessionObjectStatus" and e.get("action") == "add"
    )
    ours = [
        event
        for event in verdict_events
        if any(
            fresh_session(server)
            .query(
                "select review_session_object_id from ReviewSessionObjectStatus"
                f' where id is "{entity["entityId"]}"'
            )
            .one()["review_session_object_id"]
            == review["objects"]["approve"]
            for entity in event["data"]["entities"]
        )
    ]
    assert len(ours) == 2, "both approvals were published as ftrack.update"

    # A supervisor overrides the outcome by hand; a replay must not undo that.
    session = fresh_session(server)
    version = session.get("AssetVersion", version_id)
    version["status"] = status_named(session, "On hold")
    session.commit()
    before = version_state(server, version_id)
    assert before[0] == "On hold" and len(before[2]) == 1
    ignored = daemon.counter("verdicts_to_status", "replay_ignored")
    for event in ours:
        redeliver(server, event)
    wait_for(
        lambda: daemon.counter("verdicts_to_status", "replay_ignored") >= ignored + 2,
        what="both replays to be recognised",
    )
    assert version_state(server, version_id) == before


# ------------------------------------------------------------------ version to review
def dailies_objects(server):
    """{review session name: [(asset name, version number)]} for today's dailies."""
    session = fresh_session(server)
    today = datetime.date.today()
    names = {f"Dailies {day.isoformat()}" for day in (today, today - datetime.timedelta(days=1))}
    found = {}
    for review_session in session.query(
        "select name, review_session_objects.asset_version.version,"
        " review_session_objects.asset_version.asset.name from ReviewSession"
    ).all():
        if review_session["name"] in names:
            found[review_session["name"]] = sorted(
                (o["asset_version"]["asset"]["name"], o["asset_version"]["version"])
                for o in review_session["review_session_objects"]
            )
    return found


def publish_version(server, asset_name, number):
    session = fresh_session(server)
    template = session.query(
        f'select asset_id, task_id from AssetVersion where asset.name is "{asset_name}"'
    ).first()
    version = session.create(
        "AssetVersion",
        {
            "asset_id": template["asset_id"],
            "task_id": template["task_id"],
            "version": number,
            "status": status_named(session, "Pending Review"),
            "is_published": True,
            "comment": f"e2e take {number}",
        },
    )
    session.commit()
    return version["id"]


def of_asset(objects, asset):
    return [number for name, number in objects if name == asset]


def test_plugins_version_to_review_adds_and_replaces(server, daemon, recorder):
    asset = "SQ020_SH030_comp"
    first = publish_version(server, asset, 3)
    sessions = wait_for(
        lambda: (
            (found := dailies_objects(server))
            and 3 in of_asset(next(iter(found.values())), asset)
            and found
        ),
        what="version 3 in today's dailies",
    )
    assert len(sessions) == 1, "one dailies session per day"

    publish_version(server, asset, 4)
    wait_for(
        lambda: of_asset(next(iter(dailies_objects(server).values())), asset) == [4],
        what="version 4 to replace version 3",
    )

    # Replay v3's publication: it must not come back, nor push v4 out.
    added = recorder.matching(lambda e: e.get("entityId") == first and e.get("action") == "add")
    assert len(added) == 1
    redeliver(server, added[0])
    wait_for(
        lambda: "SQ020_SH030_comp v003 not added" in daemon.log(),
        what="the replayed publication to be recognised",
    )
    sessions = dailies_objects(server)
    assert len(sessions) == 1
    assert of_asset(next(iter(sessions.values())), asset) == [4]


# ------------------------------------------------------------------ review digest
def digest_notes(server, review_id):
    notes = (
        fresh_session(server)
        .query(f'select content from Note where parent_id is "{review_id}"')
        .all()
    )
    return [n["content"] for n in notes if n["content"].startswith("# Review digest: ")]


def test_plugins_review_digest_action(server, daemon, webhook, digest_folder):
    review = (
        fresh_session(server)
        .query('select id, name from ReviewSession where name is "Dailies 2026-11-06"')
        .one()
    )
    selection = [{"entityId": review["id"], "entityType": "reviewsession"}]

    discovered = emit(server, "ftrack.action.discover", {"selection": selection})
    assert discovered["items"][0]["actionIdentifier"] == "reviewd.review-digest"
    assert discovered["items"][0]["label"] == "Review digest"

    launch = {"actionIdentifier": "reviewd.review-digest", "selection": selection, "values": {}}
    reply = emit(server, "ftrack.action.launch", launch)
    assert reply["success"] is True, reply
    path = os.path.join(str(digest_folder), f"dailies-2026-11-06-{review['id'][:8]}.md")
    assert path in reply["message"] and webhook.url in reply["message"]
    assert "note on the review session" in reply["message"]

    with open(path) as handle:
        markdown = handle.read()
    assert markdown.startswith("# Review digest: Dailies 2026-11-06\n")
    assert "## SQ010_SH010_comp v003" in markdown and "- Jane Doe: approved" in markdown
    assert digest_notes(server, review["id"]) == [markdown]
    assert len(webhook.requests) == 1
    posted = webhook.requests[0]
    assert posted["content_type"] == "application/json"
    assert posted["body"]["text"] == markdown
    assert posted["body"]["digest"]["review_session"]["name"] == "Dailies 2026-11-06"
    assert len(posted["body"]["digest"]["versions"]) == 4

    # The same launch again: no second note, no second post, the file unchanged.
    again = emit(server, "ftrack.action.launch", launch)
    assert again["success"] is True and "unchanged" in again["message"]
    assert digest_notes(server, review["id"]) == [markdown]
    assert len(webhook.requests) == 1
    with open(path) as handle:
        assert handle.read() == markdown


# ------------------------------------------------------------------ status roll-up
def shot_state(server, shot_id):
    return fresh_session(server).get("Shot", shot_id)["status"]["name"]


def test_plugins_status_rollup_follows_the_tasks(server, daemon, recorder):
    session = fresh_session(server)
    shot = session.query(
        'select id, status.name from Shot where name is "SH020" and parent.name is "SQ010"'
    ).one()
    assert shot["status"]["name"] == "In progress"
    tasks = session.query(f'select id, name from Task where parent_id is "{shot["id"]}"').all()
    assert len(tasks) == 3
    approved = status_named(session, "Approved")
    for task in tasks:
        task["status"] = approved
    session.commit()
    wait_for(lambda: shot_state(server, shot["id"]) == "Approved", what="the shot to be approved")

    task_ids = {task["id"] for task in tasks}
    all_approved = [
        event
        for event in recorder.matching(lambda e: e.get("entityId") in task_ids)
        if len(event["data"]["entities"]) == 3
    ]
    assert len(all_approved) == 1, "one ftrack.update for the batch"

    lighting = next(task for task in tasks if task["name"] == "lighting")
    lighting["status"] = status_named(session, "In progress")
    session.commit()
    wait_for(lambda: shot_state(server, shot["id"]) == "In progress", what="the shot to go back")

    # Replaying "all tasks approved" must not approve the shot: the data says otherwise.
    unchanged = daemon.counter("status_rollup", "unchanged")
    redeliver(server, all_approved[0])
    wait_for(
        lambda: daemon.counter("status_rollup", "unchanged") > unchanged,
        what="the replay to be weighed",
    )
    assert shot_state(server, shot["id"]) == "In progress"
