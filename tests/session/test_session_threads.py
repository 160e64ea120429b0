"""The unit of work is per thread: one thread's commit/rollback never touches another's.

The daemon shares one Session among plugin worker threads; these tests play two such
workers with real threads against the embedded server and check what reaches the
server (``devserver.batches``) and what stays local in each thread.
"""

from __future__ import annotations

import concurrent.futures
import threading
import warnings

import pytest

from reviewd.api.entity import state
from reviewd.api.exception import ServerError
from reviewd.api.symbol import CREATED, DELETED, MODIFIED


class Worker:
    """One real thread that runs the steps given to it, in order (a plugin worker)."""

    def __init__(self, name: str) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=name)

    def run(self, fn, *args):
        """Run ``fn(*args)`` in the worker's thread; return its result or raise its error."""
        return self._pool.submit(fn, *args).result(timeout=60)

    def stop(self) -> None:
        self._pool.shutdown(wait=True)


@pytest.fixture
def workers():
    made = [Worker("plugin-a"), Worker("plugin-b")]
    yield made
    for worker in made:
        worker.stop()


def _tasks(session):
    tasks = session.query("select name, description from Task").all()
    assert len(tasks) >= 2
    return tasks[0], tasks[1]


def _user(session, server):
    return session.query(f'User where username is "{server.api_user}"').one()


def _keys(batch) -> list[tuple[str, str, tuple]]:
    return [(p["action"], p["entity_type"], tuple(p["entity_key"])) for p in batch]


def test_each_thread_records_and_commits_only_its_own_operations(devserver, connect, workers):
    a, b = workers
    session = connect(devserver, per_thread_operations=True)
    first, second = _tasks(session)
    user = _user(session, devserver)

    def work_a():
        first["name"] = "renamed by A"
        return session.create(
            "Note",
            {
                "content": "from A",
                "user_id": user["id"],
                "parent_id": first["id"],
                "parent_type": "Task",
            },
        )

    def work_b():
        second["description"] = "described by B"

    note = a.run(work_a)
    b.run(work_b)
    assert a.run(lambda: len(session.recorded_operations)) == 2
    assert b.run(lambda: len(session.recorded_operations)) == 1
    assert not session.recorded_operations, "the main thread recorded nothing"
    assert a.run(lambda: (session.created, session.modified)) == ([note], [first])
    assert b.run(lambda: (session.created, session.modified)) == ([], [second])
    assert session.created == [] and session.modified == []

    before = len(devserver.batches)
    a.run(session.commit)
    assert len(devserver.batches) == before + 1
    assert _keys(devserver.batches[-1]) == [
        ("update", "Task", (first["id"],)),
        ("create", "Note", (note["id"],)),
    ]
    assert state(first) is None and state(note) is None
    # B's half-made change was neither sent nor cleared.
    assert b.run(lambda: len(session.recorded_operations)) == 1
    assert second["description"] == "described by B" and state(second) is MODIFIED

    b.run(session.commit)
    assert len(devserver.batches) == before + 2
    assert _keys(devserver.batches[-1]) == [("update", "Task", (second["id"],))]
    assert devserver.batches[-1][0]["entity_data"] == {
        "__entity_type__": "Task",
        "description": "described by B",
    }
    assert state(second) is None

    fresh = connect(devserver, schema_cache_path=False)
    assert fresh.get("Task", first["id"])["name"] == "renamed by A"
    assert fresh.get("Task", second["id"])["description"] == "described by B"
    assert fresh.get("Note", note["id"])["content"] == "from A"


def test_rollback_in_one_thread_keeps_the_other_threads_work(devserver, connect, workers):
    a, b = workers
    session = connect(devserver, per_thread_operations=True)
    first, _ = _tasks(session)
    user = _user(session, devserver)
    old_name = first["name"]

    def work_b():
        first["description"] = "kept by B"
        return session.create(
            "Note",
            {
                "content": "B's note",
                "user_id": user["id"],
                "parent_id": first["id"],
                "parent_type": "Task",
            },
        )

    def work_a():
        first["name"] = "thrown away by A"
        return session.create(
            "Note",
            {
                "content": "A's note",
                "user_id": user["id"],
                "parent_id": first["id"],
                "parent_type": "Task",
            },
        )

    b_note = b.run(work_b)
    a_note = a.run(work_a)
    # Entities are shared: each thread's pending local values are visible to all.
    assert first["name"] == "thrown away by A" and first["description"] == "kept by B"

    a.run(session.rollback)
    assert first["name"] == old_name, "A's local value is reverted"
    assert first["description"] == "kept by B", "B's local value is untouched"
    assert state(first) is MODIFIED
    assert state(a_note) is DELETED and session.get("Note", a_note["id"]) is None
    assert state(b_note) is CREATED and session.get("Note", b_note["id"]) is b_note
    assert a.run(lambda: (len(session.recorded_operations), session.modified)) == (0, [])
    assert b.run(lambda: len(session.recorded_operations)) == 2
    assert b.run(lambda: (session.created, session.modified)) == ([b_note], [first])

    before = len(devserver.batches)
    b.run(session.commit)
    assert len(devserver.batches) == before + 1
    batch = devserver.batches[-1]
    assert _keys(batch) == [("update", "Task", (first["id"],)), ("create", "Note", (b_note["id"],))]
    assert batch[0]["entity_data"] == {"__entity_type__": "Task", "description": "kept by B"}, (
        "nothing of A's is sent"
    )
    assert state(first) is None and first["name"] == old_name


def test_same_attribute_set_by_two_threads(devserver, connect, workers):
    a, b = workers
    session = connect(devserver, per_thread_operations=True)
    first, _ = _tasks(session)
    old_name = first["name"]

    def set_name(value):
        first["name"] = value

    # B overwrites A's pending value, then rolls back: A's pending value comes back.
    a.run(set_name, "A1")
    b.run(set_name, "B1")
    assert first["name"] == "B1"
    b.run(session.rollback)
    assert first["name"] == "A1" and state(first) is MODIFIED
    a.run(session.rollback)
    assert first["name"] == old_name and state(first) is None

    # A commits while B's later value is pending: A's value is sent, B's stays local.
    a.run(set_name, "A2")
    b.run(set_name, "B2")
    before = len(devserver.batches)
    a.run(session.commit)
    assert devserver.batches[-1][0]["entity_data"] == {"__entity_type__": "Task", "name": "A2"}
    assert first["name"] == "B2" and state(first) is MODIFIED
    assert first._remote["name"] == "A2", "what A committed is now the remote value"
    b.run(session.commit)
    assert len(devserver.batches) == before + 2
    assert devserver.batches[-1][0]["entity_data"] == {"__entity_type__": "Task", "name": "B2"}
    assert first["name"] == "B2" and state(first) is None
    assert connect(devserver, schema_cache_path=False).get("Task", first["id"])["name"] == "B2"


def test_failed_commit_in_one_thread_does_not_disturb_another(devserver, connect, workers):
    a, b = workers
    session = connect(devserver, per_thread_operations=True)
    first, second = _tasks(session)
    old_name = first["name"]

    def work_a():
        first["name"] = "doomed"
        return session.create("ReviewSessionObject", {"name": "no version"})  # ids missing

    def work_b():
        second["description"] = "survives A's failure"

    bad = a.run(work_a)
    b.run(work_b)
    before = len(devserver.batches)
    with pytest.raises(ServerError):
        a.run(session.commit)
    assert a.run(lambda: len(session.recorded_operations)) == 2, "A can still fix or roll back"
    assert b.run(lambda: len(session.recorded_operations)) == 1
    assert second["description"] == "survives A's failure"

    a.run(session.rollback)
    assert first["name"] == old_name and state(bad) is DELETED
    assert b.run(lambda: (len(session.recorded_operations), session.modified)) == (1, [second])

    b.run(session.commit)
    assert _keys(devserver.batches[-1]) == [("update", "Task", (second["id"],))]
    assert len(devserver.batches) == before + 2, "A's failed batch and B's"
    fresh = connect(devserver, schema_cache_path=False)
    assert fresh.get("Task", first["id"])["name"] == old_name
    assert fresh.get("Task", second["id"])["description"] == "survives A's failure"


def test_deletion_is_per_thread(devserver, connect, workers):
    a, b = workers
    session = connect(devserver, per_thread_operations=True)
    user = _user(session, devserver)
    first, _ = _tasks(session)
    note = session.create(
        "Note",
        {
            "content": "to delete",
            "user_id": user["id"],
            "parent_id": first["id"],
            "parent_type": "Task",
        },
    )
    session.commit()

    a.run(session.delete, note)
    assert state(note) is DELETED
    assert a.run(lambda: session.deleted) == [note] and b.run(lambda: session.deleted) == []
    b.run(session.rollback)
    assert state(note) is DELETED, "B's rollback does not undo A's deletion"
    a.run(session.rollback)
    assert state(note) is None and session.get("Note", note["id"]) is note

    a.run(session.delete, note)
    a.run(session.commit)
    assert _keys(devserver.batches[-1]) == [("delete", "Note", (note["id"],))]
    assert connect(devserver, schema_cache_path=False).get("Note", note["id"]) is None


def test_close_warns_about_every_threads_unsaved_operations(devserver, connect, workers):
    a, b = workers
    session = connect(devserver, per_thread_operations=True)
    first, second = _tasks(session)

    def rename(task, value):
        task["name"] = value

    a.run(rename, first, "unsaved in A")
    b.run(rename, second, "unsaved in B")
    b.stop()  # a thread that ended keeps its unsaved operations until close()
    ended = threading.Thread(target=rename, args=(first, "unsaved in a short thread"))
    ended.start()
    ended.join(30)
    assert not ended.is_alive()
    with pytest.warns(UserWarning, match="3 unsaved operation.* from 3 threads"):
        session.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        session.close()  # idempotent, no second warning


def test_concurrent_commits_send_each_threads_changes_alone(devserver, connect):
    session = connect(devserver, per_thread_operations=True)
    tasks = session.query("select name from Task").all()[:4]
    start = threading.Barrier(len(tasks))
    errors: list[BaseException] = []

    def work(task):
        try:
            start.wait(30)
            for round_ in range(3):
                task["name"] = f"{task['id'][:8]} round {round_}"
                session.commit()
        except BaseException as exc:  # reported below
            errors.append(exc)

    before = len(devserver.batches)
    threads = [threading.Thread(target=work, args=(task,)) for task in tasks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors and not any(thread.is_alive() for thread in threads)
    batches = list(devserver.batches)[before:]
    assert len(batches) == 3 * len(tasks), "one batch per commit"
    for batch in batches:
        (payload,) = batch
        assert payload["entity_data"]["name"].startswith(payload["entity_key"][0][:8]), (
            "a batch holds only the committing thread's change"
        )
    fresh = connect(devserver, schema_cache_path=False)
    for task in tasks:
        assert state(task) is None and task["name"].endswith("round 2")
        assert fresh.get("Task", task["id"])["name"] == task["name"]
