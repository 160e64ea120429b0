"""Acceptance 4: a classic plugin that shifts a task's ``start_date`` with arrow's
``.shift(days=3)`` and commits moves the date by three days on the server.

The plugin is written for ftrack_api (dates are ``arrow.Arrow`` there); it runs
unedited under reviewd's plugin host against the embedded server, and the result
is read back through a fresh session and through the server's own store.
"""

from __future__ import annotations

import datetime as dt

import arrow

from reviewd.plugin import PluginHost
from tests.plugin.plugin_support import wait_until, write_plugin
from tests.support import fresh_session

SHIFTING_PLUGIN = """
    import ftrack_api

    def postpone(session, event):
        for entity in event['data'].get('entities', []):
            if entity.get('entityType') != 'task' or 'name' not in (entity.get('changes') or {}):
                continue
            if entity['changes']['name'].get('new') != 'postpone me':
                continue
            task = session.get('Task', entity['entityId'])
            task['start_date'] = task['start_date'].shift(days=3)
            session.commit()

    def register(session, **kw):
        if not isinstance(session, ftrack_api.session.Session):
            return
        session.event_hub.subscribe(
            'topic=ftrack.update', lambda event: postpone(session, event)
        )
"""

START = dt.datetime(2026, 3, 9, 9, 30, tzinfo=dt.timezone.utc)


def _task_with_start_date(server) -> str:
    (result,) = server.execute_batch(
        [{"action": "query", "expression": "select id from Task limit 1"}], server.api_user
    )
    task_id = result["data"][0]["id"]
    server.execute_batch(
        [
            {
                "action": "update",
                "entity_type": "Task",
                "entity_key": [task_id],
                "entity_data": {
                    "__entity_type__": "Task",
                    "start_date": {"__type__": "datetime", "value": START.isoformat()},
                },
            }
        ],
        server.api_user,
    )
    return task_id


def _server_start_date(server, task_id: str):
    with fresh_session(server, schema_cache_path=False) as reader:
        return reader.query(f'select start_date from Task where id is "{task_id}"').one()[
            "start_date"
        ]


def test_plugin_shifting_start_date_by_three_days_moves_it_on_the_server(devserver, tmp_path):
    task_id = _task_with_start_date(devserver)
    before = _server_start_date(devserver, task_id)
    assert isinstance(before, arrow.Arrow) and before == START

    write_plugin(tmp_path, "postpone.py", SHIFTING_PLUGIN)
    session = fresh_session(devserver, schema_cache_path=False)
    try:
        host = PluginHost(session, [str(tmp_path)], entry_points=False)
        host.load_all()
        assert len(host.loaded["postpone"].subscriptions) == 1
        session.event_hub.connect(wait=True, timeout=30)
        devserver.execute_batch(
            [
                {
                    "action": "update",
                    "entity_type": "Task",
                    "entity_key": [task_id],
                    "entity_data": {"__entity_type__": "Task", "name": "postpone me"},
                }
            ],
            devserver.api_user,
        )
        # A plain ftrack_api script: the handler runs inside event_hub.wait().
        after = wait_until(
            lambda: (
                session.event_hub.wait(0.2) is None
                and (value := _server_start_date(devserver, task_id)) != before
                and value
            ),
            timeout=30,
        )
    finally:
        session.close()
    assert isinstance(after, arrow.Arrow)
    assert after == START + dt.timedelta(days=3)
    assert after - before == dt.timedelta(days=3)
