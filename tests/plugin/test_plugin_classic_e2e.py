"""Acceptance 1: an unedited classic ftrack plugin runs under reviewd.

The plugin below is written the way ftrack's own examples are: it imports
``ftrack_api``, guards ``register`` with ``isinstance(session, ftrack_api.Session)``,
subscribes to ``topic=ftrack.update``, reads ``event['data']['entities']`` and
publishes an ``ftrack_api.event.base.Event``.  Nothing in it mentions reviewd.
"""

from __future__ import annotations

import pytest

from reviewd.plugin import PluginHost
from tests.plugin.plugin_support import wait_until, write_plugin
from tests.support import fresh_session

FTRACK_STYLE_PLUGIN = """
    import functools
    import logging

    import ftrack_api

    logger = logging.getLogger("example.version_watcher")


    def on_update(session, event):
        '''Announce every changed Task with the names of the attributes that changed.'''
        for entity in event['data'].get('entities', []):
            if entity.get('entityType') != 'task':
                continue
            session.event_hub.publish(
                ftrack_api.event.base.Event(
                    topic='example.task-changed',
                    data={
                        'task_id': entity['entityId'],
                        'action': entity.get('action'),
                        'changed': sorted(entity.get('changes', {}) or {}),
                    },
                ),
                on_error='ignore',
            )


    def register(session, **kw):
        '''Register plugin. Called when used as an plugin.'''
        if not isinstance(session, ftrack_api.Session):
            logger.debug(
                'Not subscribing plugin as passed argument {0!r} is not an '
                'ftrack_api.Session instance.'.format(session)
            )
            return

        session.event_hub.subscribe(
            'topic=ftrack.update', functools.partial(on_update, session)
        )
"""


def _a_task_id(server) -> str:
    (result,) = server.execute_batch(
        [{"action": "query", "expression": "select id, name from Task limit 1"}], server.api_user
    )
    return result["data"][0]["id"]


def _rename(server, task_id: str, name: str) -> None:
    server.execute_batch(
        [
            {
                "action": "update",
                "entity_type": "Task",
                "entity_key": [task_id],
                "entity_data": {"__entity_type__": "Task", "name": name},
            }
        ],
        server.api_user,
    )


@pytest.fixture
def observer(devserver):
    """A second, independent hub that records what the plugin publishes."""
    from reviewd.api.event.hub import EventHub

    hub = EventHub(devserver.url, devserver.api_user, devserver.api_key, dispatch_thread=True)
    seen = []
    hub.subscribe("topic=example.task-changed", lambda event: seen.append(event["data"]))
    hub.connect(wait=True, timeout=30)
    yield seen
    hub.disconnect()


def _daemon_like_session(server):
    # Events reach the plugins as they arrive (no wait() loop), as in the daemon.
    return fresh_session(server, schema_cache_path=False, event_dispatch_thread=True)


def test_unedited_ftrack_plugin_receives_an_update_from_the_embedded_server(
    devserver, observer, tmp_path
):
    write_plugin(tmp_path, "version_watcher.py", FTRACK_STYLE_PLUGIN)
    session = _daemon_like_session(devserver)
    try:
        host = PluginHost(session, [str(tmp_path)], entry_points=False)
        host.load_all()
        record = host.loaded["version_watcher"]
        assert record.kind == "classic"
        (subscription,) = record.subscriptions  # the isinstance guard accepted our session
        assert subscription.expression == "topic=ftrack.update"
        session.event_hub.connect(wait=True, timeout=30)

        task_id = _a_task_id(devserver)
        _rename(devserver, task_id, "renamed by the test")

        (announcement,) = wait_until(lambda: list(observer), timeout=20)
        assert announcement == {"task_id": task_id, "action": "update", "changed": ["name"]}
    finally:
        session.close()


def test_the_same_plugin_runs_through_a_sessions_own_discovery(devserver, observer, tmp_path):
    from reviewd.api.session import Session

    write_plugin(tmp_path, "version_watcher.py", FTRACK_STYLE_PLUGIN)
    session = Session(
        server_url=devserver.url,
        api_user=devserver.api_user,
        api_key=devserver.api_key,
        plugin_paths=[str(tmp_path)],
        schema_cache_path=False,
    )
    try:
        assert [s.subscription for s in session.event_hub.subscribers] == ["topic=ftrack.update"]
        session.event_hub.connect(wait=True, timeout=30)
        task_id = _a_task_id(devserver)
        _rename(devserver, task_id, "renamed again")
        # As in an ftrack_api script, the handler runs inside event_hub.wait().
        (announcement,) = wait_until(
            lambda: session.event_hub.wait(0.2) or list(observer), timeout=20
        )
        assert announcement["task_id"] == task_id
    finally:
        session.close()


RELOADABLE = """
    CALLS = []

    def answer(event):
        CALLS.append(event["data"]["n"])
        return "{version}"

    def register(session, **kw):
        session.event_hub.subscribe("topic=example.ping", answer)
"""


def _server_subscriber_ids(server) -> set[str]:
    return {s["id"] for c in server.events.connections() for s in c["subscribers"]}


def test_reload_swaps_the_handler_the_server_delivers_to(devserver, tmp_path):
    write_plugin(tmp_path, "pinger.py", RELOADABLE.format(version="old"))
    session = _daemon_like_session(devserver)
    try:
        host = PluginHost(session, [str(tmp_path)], entry_points=False)
        host.load_all()
        session.event_hub.connect(wait=True, timeout=30)
        old_module = host.loaded["pinger"].module
        assert devserver.emit("example.ping", {"n": 0}, wait_reply=20)["data"] == "old"

        write_plugin(tmp_path, "pinger.py", RELOADABLE.format(version="new"))
        (old,) = host.loaded["pinger"].subscriptions
        host.reload("pinger")
        (new,) = host.loaded["pinger"].subscriptions

        # the hub tells the server asynchronously: wait until the server has swapped them
        wait_until(
            lambda: (
                _server_subscriber_ids(devserver) >= {new.subscriber_id}
                and old.subscriber_id not in _server_subscriber_ids(devserver)
            ),
            timeout=20,
        )
        reply = devserver.emit("example.ping", {"n": 1}, wait_reply=20)
        assert reply["data"] == "new"
        assert old_module.CALLS == [0]  # the old handler never ran again
        assert host.loaded["pinger"].module.CALLS == [1]
    finally:
        session.close()
