"""Where ftrack_api and reviewd's daemon differ, a plain Session behaves as ftrack_api.

The daemon's model (a unit of work per thread) is one argument away and has its own
tests in ``test_session_threads.py``.
"""

from __future__ import annotations

import threading

from reviewd.api.inspection import identity


def _in_thread(work) -> None:
    thread = threading.Thread(target=work)
    thread.start()
    thread.join(10)
    assert not thread.is_alive()


def test_threads_share_one_unit_of_work_by_default(devserver, connect):
    session = connect(devserver)
    task = session.query("select name from Task").first()
    old = task["name"]

    def rename() -> None:
        task["name"] = "renamed in a thread"

    _in_thread(rename)
    assert len(session.recorded_operations) == 1  # the other thread's, seen here
    session.commit()  # and sent from here
    assert len(session.recorded_operations) == 0
    fresh = connect(devserver, schema_cache_path=False)
    assert fresh.get("Task", task["id"])["name"] == "renamed in a thread" != old


def test_per_thread_operations_keeps_each_threads_work_apart(devserver, connect):
    session = connect(devserver, per_thread_operations=True)
    task = session.query("select name from Task").first()

    renamed, checked = threading.Event(), threading.Event()

    def rename_then_roll_back() -> None:
        task["name"] = "kept by the thread"
        renamed.set()
        checked.wait(10)
        session.rollback()  # this thread's own work

    thread = threading.Thread(target=rename_then_roll_back)
    thread.start()
    assert renamed.wait(10)
    assert len(session.recorded_operations) == 0  # pending, but not this thread's
    checked.set()
    thread.join(10)


def test_commit_goes_through_call_and_merges_the_server_answer(devserver, connect):
    session = connect(devserver)
    seen = []
    real_call = session.call

    def spying_call(data):
        seen.append([payload["action"] for payload in data])
        return real_call(data)

    task = session.query("select name from Task").first()
    session.call = spying_call
    task["name"] = "through call"
    session.commit()
    assert seen == [["update"]]
    assert task["name"] == "through call" and not session.recorded_operations


def test_decode_returns_detached_copies_and_merge_brings_them_back(devserver, connect):
    session = connect(devserver)
    task = session.query("select name from Task").first()
    copy = session.decode(session.encode(task))
    assert copy == task and copy is not task
    assert session.merge(copy) is task


def test_memory_layer_answers_cache_key_maker_keys(devserver, connect):
    session = connect(devserver)
    task = session.query("select name from Task").first()
    key = session.cache_key_maker.key(identity(task))
    assert session.cache.get(key) is task
    session.cache.remove(key)
    again = session.get("Task", task["id"])  # from the server: a new object
    assert again == task and again is not task
