"""Acceptance: a handler that fails half-way leaves no half-made changes behind.

The daemon shares one Session among plugin workers and the Session's unit of work is per
thread; a failed handler's recorded operations must not ride along with the next
successful commit made on the same worker thread.
"""

from __future__ import annotations

from reviewd.api.session import Session

from .daemon_harness import DaemonProcess, service_env, wait_for, write_plugin

HALF_WAY = """
    def register(session, **kwargs):
        def on_note(event):
            project = session.query("select id from Project").first()
            user = session.query(
                f'select id from User where username is "{session.api_user}"').one()
            note_text = event["data"]["text"]
            session.create("Note", {"content": note_text, "parent_id": project["id"],
                                    "parent_type": "Project", "user_id": user["id"]})
            if event["data"]["fail"]:
                raise RuntimeError("failed after recording " + note_text)
            session.commit()
        session.event_hub.subscribe("topic=test.note", on_note)
"""


def project_notes(server) -> set[str]:
    with Session(server.url, server.api_key, server.api_user, schema_cache_path=False) as fresh:
        return {n["content"] for n in fresh.query("select content from Note").all()}


def test_failed_handlers_changes_are_rolled_back_not_committed_later(tmp_path, devserver):
    plugins = tmp_path / "plugins"
    write_plugin(plugins, "half_way", HALF_WAY)
    before = project_notes(devserver)
    env = service_env(devserver, FTRACK_EVENT_PLUGIN_PATH=str(plugins), REVIEWD_MAX_ATTEMPTS="1")
    daemon = DaemonProcess(tmp_path, [], env=env)
    try:
        daemon.wait_ready()
        devserver.emit("test.note", {"text": "half-made", "fail": True})
        wait_for(
            lambda: daemon.status().get("dead_letters"),
            timeout=20,
            message="the failing delivery to be dead-lettered",
        )
        devserver.emit("test.note", {"text": "whole", "fail": False})
        wait_for(
            lambda: "whole" in project_notes(devserver) - before,
            timeout=20,
            message="the successful handler's note",
        )
        assert project_notes(devserver) - before == {"whole"}, daemon.output()
    finally:
        assert daemon.stop() == 0, daemon.output()
