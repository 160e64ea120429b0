"""The SQLite journal: dedupe, states, replay order, pruning, durability under kill -9."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

from reviewd.daemon.journal import SqliteJournal


def event(n: int, topic: str = "ftrack.update") -> dict:
    return {
        "id": f"e{n:05d}",
        "topic": topic,
        "data": {"n": n},
        "source": {},
        "target": "",
        "inReplyToEvent": None,
    }


def test_wal_mode_and_record_dedupes_by_event_id(tmp_path):
    journal = SqliteJournal(str(tmp_path / "j.sqlite3"))
    mode = sqlite3.connect(journal.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    assert journal.record(event(1), ["a", "b"]) == ["a", "b"]
    assert journal.record(event(1), ["a", "b"]) == []
    assert journal.record(event(1), ["a", "c"]) == ["c"]
    assert journal.counts()["pending"] == 3
    assert [d.plugin for d in journal.deliveries("e00001")] == ["a", "b", "c"]
    assert journal.deliveries("e00001")[0].payload["data"] == {"n": 1}


def test_states_and_pending_order(tmp_path):
    journal = SqliteJournal(str(tmp_path / "j.sqlite3"))
    for n in range(5):
        journal.record(event(n), ["p"])
    journal.mark_done("e00001", "p")
    journal.mark_failed("e00002", "p", "boom")
    journal.mark_dead("e00003", "p", "Traceback...\nValueError: bad")
    assert [d.event_id for d in journal.pending("p")] == ["e00000", "e00002", "e00004"]
    assert journal.pending("p", limit=1)[0].event_id == "e00000"
    failed = journal.deliveries("e00002")[0]
    assert (failed.attempts, failed.last_error, failed.state) == (1, "boom", "pending")
    dead = journal.dead_letters()
    assert [(d.event_id, d.state) for d in dead] == [("e00003", "dead")]
    assert journal.counts() == {"pending": 3, "done": 1, "dead": 1}
    assert journal.retry_dead(plugin="p") == 1
    assert journal.deliveries("e00003")[0].attempts == 0
    assert journal.dead_letters() == []
    journal.mark_dead("e00003", "p", "again")
    assert journal.purge_dead(event_id="e00003") == 1
    assert journal.deliveries("e00003") == []


def test_prune_removes_only_old_done_deliveries(tmp_path):
    journal = SqliteJournal(str(tmp_path / "j.sqlite3"))
    for n in range(3):
        journal.record(event(n), ["p"])
    journal.mark_done("e00000", "p")
    journal.mark_dead("e00001", "p", "x")
    assert journal.prune(retention=3600) == 0
    assert journal.prune(retention=3600, now=time.time() + 7200) == 1
    assert journal.deliveries("e00000") == []  # event row gone with its last delivery
    assert journal.counts() == {"pending": 1, "done": 0, "dead": 1}
    # A pruned event id is unknown again (retention bounds the dedupe window).
    assert journal.record(event(0), ["p"]) == ["p"]


def test_reopen_sees_everything_and_size_is_reported(tmp_path):
    path = str(tmp_path / "j.sqlite3")
    journal = SqliteJournal(path)
    journal.record(event(1), ["p"])
    assert journal.size_bytes() > 0
    journal.close()
    journal.close()  # idempotent
    again = SqliteJournal(path)
    assert [d.event_id for d in again.pending()] == ["e00001"]


WRITER = textwrap.dedent("""
    import sys
    from reviewd.daemon.journal import SqliteJournal
    journal = SqliteJournal(sys.argv[1])
    n = 0
    while True:
        event = {"id": "w%06d" % n, "topic": "t", "data": {}}
        journal.record(event, ["p"])
        if n % 3 == 0:
            journal.mark_done(event["id"], "p")
        sys.stdout.write("%s %s\\n" % (event["id"], "done" if n % 3 == 0 else "pending"))
        sys.stdout.flush()
        n += 1
""")


def test_committed_records_survive_kill_9_of_the_writer(tmp_path):
    path = str(tmp_path / "j.sqlite3")
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    proc = subprocess.Popen([sys.executable, str(script), path], stdout=subprocess.PIPE, text=True)
    reported = []
    deadline = time.monotonic() + 30
    while len(reported) < 400 and time.monotonic() < deadline:
        reported.append(proc.stdout.readline().split())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(reported) >= 400
    journal = SqliteJournal(path)
    for event_id, state in reported:
        deliveries = journal.deliveries(event_id)
        assert deliveries, f"{event_id} was reported committed but is missing"
        assert deliveries[0].state == state
