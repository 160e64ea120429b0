"""What the cheaper durable path relies on (issue 13, cost): the event's text kept as
received, batched claims that cannot double-queue a duplicated id, the pacing spool,
the mapped attempt log surviving the process, and the schema 3 migration."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import pytest

from reviewd.api.event import packet
from reviewd.api.event.base import Event
from reviewd.daemon import spool as spool_module
from reviewd.daemon.journal import SqliteJournal
from reviewd.daemon.journal.attempts import RUNNING, AttemptLog
from reviewd.daemon.spool import Spool
from tests.daemon.test_daemon_durable_delivery import Daemonish, wait_for


def test_compact_event_packet_gives_the_event_and_its_exact_text():
    event = {"id": "a" * 32, "topic": "t", "data": {"s": "é ]}"}, "inReplyToEvent": None}
    text = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    data = '{"name":"ftrack.event","args":[' + text + "]}"
    decoded, span = packet.parse_ftrack_event(data)
    assert decoded == event and span == text
    # Anything else goes the general way (None): spaces, other names, more arguments,
    # keys after the arguments, broken JSON.
    for other in (
        '{"name": "ftrack.event", "args": [' + text + "]}",
        '{"name":"other","args":[' + text + "]}",
        '{"name":"ftrack.event","args":[' + text + ',{"x":1}]}',
        '{"name":"ftrack.event","args":[' + text + '],"x":[1]}',
        '{"name":"ftrack.event","args":[{"id":]}',
    ):
        assert packet.parse_ftrack_event(other) is None


def test_event_keeps_its_wire_text_only_when_the_text_names_its_id():
    kept = Event.from_wire({"id": "x1", "topic": "t"}, wire_text='{"id":"x1","topic":"t"}')
    assert kept.wire_text == '{"id":"x1","topic":"t"}'
    # An id made up here would not be in the text: a replay must see the same id.
    assert Event.from_wire({"topic": "t"}, wire_text='{"topic":"t"}').wire_text is None
    assert Event("t").wire_text is None


def test_the_journal_stores_the_text_the_server_sent(tmp_path):
    parts = Daemonish(tmp_path)
    try:
        seen = []
        sub = parts.add("p", seen.append)
        body = '"topic":"t","data":{"n":1,"x":"caf\u00e9"},"source":{}'
        text = '{"id":"' + uuid.uuid4().hex + '",' + body + "}"
        event = Event.from_wire(json.loads(text), wire_text=text)
        parts.intake.on_events(event, [sub])
        wait_for(lambda: len(seen) == 1)
        rows = parts.journal._query("SELECT payload FROM events")
        assert rows == [(text,)]
    finally:
        parts.close()


def test_a_duplicated_id_in_one_batch_is_queued_once_and_keeps_its_claim(tmp_path):
    parts = Daemonish(tmp_path)
    try:
        calls = []
        gate = threading.Event()
        sub = parts.add("p", lambda e: (gate.wait(10), calls.append(e["id"])))
        lane = parts.router.lanes["p"]
        event = {"id": uuid.uuid4().hex, "topic": "t", "data": {}, "source": {}}
        # Both copies wait in the spool and are journaled in one batch.
        intake = parts.intake
        intake._ensure_writer = lambda: None  # the test plays the writer
        intake.on_events(dict(event), [sub])
        intake.on_events(dict(event), [sub])
        assert intake._journal_batch(intake.spool.peek(10))
        wait_for(lambda: parts.journal.counts()["pending"] == 1 and len(lane.in_flight) == 1)
        # The claim survives the second copy: a refill does not hand it out again.
        assert event["id"] in lane.known
        assert parts.router.refill(["p"]) == 0
        gate.set()
        wait_for(lambda: calls == [event["id"]] and not lane.known)
    finally:
        gate.set()
        parts.close()


def test_spool_paces_a_producer_only_while_the_consumer_makes_progress(monkeypatch):
    monkeypatch.setattr(spool_module, "SOFT_ITEMS", 2)
    monkeypatch.setattr(spool_module, "PACE_STALL", 0.3)
    spool: Spool[int] = Spool(1 << 20)
    assert spool.put(1, 1, pace=True) and spool.put(2, 1, pace=True)
    # A consumer that takes the head: the paced put returns once there is room.
    threading.Timer(0.05, spool.drop, args=(1,)).start()
    assert spool.put(3, 1, pace=True)
    assert spool.paced == 1 and len(spool) == 2
    # Nobody takes anything: the pacing gives up after PACE_STALL, nothing is refused.
    started = time.monotonic()
    assert spool.put(4, 1, pace=True)
    assert time.monotonic() - started < 5 and len(spool) == 3 and spool.refused == 0
    # Unpaced (the journal failing): no wait at all.
    assert spool.put(5, 1) and len(spool) == 4


WRITER = """
import os, sys
from reviewd.daemon.journal.attempts import AttemptLog
log = AttemptLog(sys.argv[1])
for n in range(3000):  # past a rotation
    log.begin(f"done{n}", "p", 1)
    log.end(f"done{n}", "p")
log.begin("inside", "p", 2)
os._exit(3)
"""


def test_the_mapped_attempt_log_survives_the_process_dying(tmp_path):
    path = str(tmp_path / "journal.sqlite3-attempts")
    code = textwrap.dedent(WRITER)
    result = subprocess.run([sys.executable, "-c", code, path], timeout=60, check=False)
    assert result.returncode == 3
    assert AttemptLog.read(path)[("inside", "p")] == (2, RUNNING)


V2_SCHEMA = """
CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
    topic TEXT NOT NULL, payload TEXT NOT NULL, received_at REAL NOT NULL);
CREATE TABLE deliveries (event_seq INTEGER NOT NULL REFERENCES events(seq) ON DELETE CASCADE,
    plugin TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, updated_at REAL NOT NULL,
    running INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (event_seq, plugin));
CREATE INDEX deliveries_by_state ON deliveries (state, plugin, event_seq);
CREATE TABLE seen (id BLOB PRIMARY KEY, at INTEGER NOT NULL, deliveries INTEGER NOT NULL)
    WITHOUT ROWID;
"""


def test_a_schema_2_journal_is_migrated_with_its_deliveries(tmp_path):
    path = str(tmp_path / "journal.sqlite3")
    db = sqlite3.connect(path)
    db.execute("PRAGMA auto_vacuum=INCREMENTAL")
    db.executescript(V2_SCHEMA)
    payload = json.dumps({"id": "e1", "topic": "t", "data": {"n": 1}})
    db.execute(
        "INSERT INTO events (id, topic, payload, received_at) VALUES ('e1','t',?,1)", (payload,)
    )
    db.execute("INSERT INTO deliveries (event_seq, plugin, updated_at) VALUES (1,'a',1)")
    db.execute(
        "INSERT INTO deliveries (event_seq, plugin, state, attempts, last_error, updated_at)"
        " VALUES (1,'b','dead',5,'boom',1)"
    )
    db.execute("PRAGMA user_version=2")
    db.commit()
    db.close()
    journal = SqliteJournal(path)
    try:
        assert [(d.plugin, d.payload["data"]) for d in journal.pending()] == [("a", {"n": 1})]
        assert [(d.plugin, d.attempts, d.last_error) for d in journal.dead_letters()] == [
            ("b", 5, "boom")
        ]
        sql = journal._query("SELECT sql FROM sqlite_master WHERE name='deliveries'")[0][0]
        assert "WITHOUT ROWID" in sql.upper()
        assert journal._query("PRAGMA user_version") == [(3,)]
        journal.mark_done("e1", "a")
        assert journal.counts() == {"pending": 0, "done": 1, "dead": 1}
    finally:
        journal.close()


@pytest.mark.parametrize(
    "event_id",
    [
        "43f2f30382734b86b4813fedf74f128b",
        "43F2F303-8273-4B86-B481-3FEDF74F128B",
        "aa bb cc dd ee ff 00 11 22 33 44",
        "not-a-uuid",
    ],
)
def test_seen_keys_are_those_of_earlier_journals(event_id):
    from reviewd.daemon.journal.sqlite import seen_key

    try:
        expected = uuid.UUID(event_id).bytes
    except ValueError:
        expected = event_id.encode()
    assert seen_key(event_id) == expected


def test_events_journaled_while_a_refill_clears_the_overflow_are_not_overtaken(tmp_path):
    """A lane overflowing refuses the batch's claims, so the batch's events wait in the
    journal; a refill that reads the journal before that batch commits finds nothing,
    clears the overflow, and the next batch must still not be queued ahead of them
    (nor may they wait for the next start)."""
    parts = Daemonish(tmp_path)
    try:
        order = []
        gate = threading.Event()
        parts.add("p", lambda e: (gate.wait(10), order.append(e["data"]["n"])))
        lane = parts.router.lanes["p"]
        intake = parts.intake
        intake._ensure_writer = lambda: None  # the test plays the writer
        parts.publish(0)
        assert intake._journal_batch(intake.spool.peek(10))
        wait_for(lambda: len(lane.in_flight) == 1)  # 0 runs (held by the gate)
        with lane.lock:
            lane.overflowed = True  # older events wait in the journal, as after a burst
        record_batch = parts.journal.record_batch

        def refill_before_the_commit(entries):
            parts.router.refill(["p"])  # sees nothing pending: clears the overflow
            return record_batch(entries)

        parts.journal.record_batch = refill_before_the_commit
        parts.publish(1)
        assert intake._journal_batch(intake.spool.peek(10))
        parts.journal.record_batch = record_batch
        assert lane.overflowed  # 1 waits in the journal: the lane keeps catching up
        parts.publish(2)
        assert intake._journal_batch(intake.spool.peek(10))
        gate.set()
        wait_for(lambda: len(order) == 3)
        assert order == [0, 1, 2]
    finally:
        gate.set()
        parts.close()
