"""The durable path in-process: real threads, a real SQLite journal, the real intake
and router; the hub and plugin host are reduced to what the intake calls on them
(``deliver`` a subscriber's callback, ``owner_of`` a subscriber id)."""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import textwrap
import threading
import uuid

import pytest

from reviewd.daemon.intake import EventIntake
from reviewd.daemon.journal import SqliteJournal
from reviewd.daemon.journal.attempts import AttemptLog
from reviewd.daemon.journal.sqlite import DIED
from reviewd.daemon.metrics import Metrics
from reviewd.daemon.router import Job, LaneSettings, Router
from reviewd.daemon.spool import Spool
from tests.support import wait_until


def wait_for(condition, timeout: float = 30.0):
    return wait_until(condition, timeout, 0.01)


class Subscriber:
    def __init__(self, plugin: str, callback) -> None:
        self.id = uuid.uuid4().hex
        self.plugin = plugin
        self.callback = callback


class Host:
    """Answers ``owner_of`` like the plugin host: which plugin owns a subscriber."""

    def __init__(self) -> None:
        self.owners: dict[str, Subscriber] = {}

    def owner_of(self, subscriber_id: str):
        return self.owners.get(subscriber_id)


class Hub:
    """Runs a subscriber's callback, as the hub's ``deliver`` does."""

    def deliver(self, event, subscriber):
        return subscriber.callback(event)

    def publish_reply(self, event, data):
        self.replies.append((event["id"], data))

    def __init__(self) -> None:
        self.replies: list = []


class Daemonish:
    """The parts the intake reads, built from real journal, router and metrics."""

    def __init__(self, tmp_path, **settings) -> None:
        self.metrics = Metrics()
        self.journal = SqliteJournal(str(tmp_path / "journal.sqlite3"))
        self.session = None
        self.hub = Hub()
        self.host = Host()
        self.intake = EventIntake(self)
        self.subscribers: dict[str, list[Subscriber]] = {}
        self.router = Router(
            self.journal,
            self.intake.deliver,
            self.metrics,
            resolver=self.resolve,
            check_interval=0.02,
            report_failure=self.intake.report_failure,
        )
        self.settings = settings

    def add(self, plugin: str, callback, **settings) -> Subscriber:
        sub = Subscriber(plugin, callback)
        self.host.owners[sub.id] = sub
        self.subscribers.setdefault(plugin, []).append(sub)
        self.router.lane(plugin, LaneSettings(**{**self.settings, **settings}))
        return sub

    def resolve(self, plugin, delivery):
        return Job(
            delivery.payload,
            delivery.event_id,
            delivery.topic,
            plugin,
            self.subscribers[plugin],
            attempts=delivery.attempts,
            size=delivery.size,
            last_error=delivery.last_error,
        )

    def publish(self, n: int, topic: str = "t", **data) -> dict:
        event = {
            "id": uuid.uuid4().hex,
            "topic": topic,
            "data": {"n": n, **data},
            "source": {},
            "target": "",
            "inReplyToEvent": None,
        }
        subs = [s for plugin in self.subscribers.values() for s in plugin]
        self.intake.on_events(event, subs)
        return event

    def close(self) -> None:
        self.router.stop(grace=2)
        self.intake.close(5)
        self.journal.close()


@pytest.fixture
def daemon(tmp_path):
    parts = Daemonish(tmp_path, retry_backoff=0.01, retry_backoff_max=0.05)
    yield parts
    parts.close()


def test_refill_hammered_against_intake_never_calls_a_plugin_twice(daemon):
    """The refill/submit race of issue 13: a refill reading a delivery between the
    intake's journal write and its hand-over used to queue it a second time."""
    calls: collections.Counter = collections.Counter()
    lock = threading.Lock()

    def counter(plugin):
        def handler(event):
            with lock:
                calls[(event["id"], plugin)] += 1

        return handler

    # Small queues: overflow and refill are on the path all the time.
    daemon.add("a", counter("a"), queue_size=8)
    daemon.add("b", counter("b"), queue_size=8)
    stop = threading.Event()
    refills = [0]

    def hammer():
        while not stop.is_set():
            daemon.router.refill()
            refills[0] += 1

    hammers = [threading.Thread(target=hammer) for _ in range(2)]
    for thread in hammers:
        thread.start()
    events = 3000
    try:
        for n in range(events):
            daemon.publish(n)
        wait_for(lambda: daemon.journal.counts()["done"] == 2 * events)
    finally:
        stop.set()
        for thread in hammers:
            thread.join()
    assert refills[0] > 100  # the refills really ran alongside
    assert len(calls) == 2 * events
    twice = {key: count for key, count in calls.items() if count != 1}
    assert twice == {}
    assert daemon.journal.counts()["pending"] == 0


def test_attempt_is_logged_before_the_handler_runs_and_leaves_once_done(daemon):
    seen = []

    def handler(event):
        # Read from the file, as the next process would after a crash right here.
        seen.append(AttemptLog.read(daemon.journal.path + "-attempts"))

    daemon.add("p", handler)
    event = daemon.publish(1)
    wait_for(lambda: daemon.journal.counts()["done"] == 1)
    assert seen == [{(event["id"], "p"): (1, "running")}]
    assert daemon.journal._attempts._running == {}


@pytest.mark.parametrize("exception", [SystemExit, KeyboardInterrupt, GeneratorExit])
def test_base_exception_in_a_handler_is_a_failed_attempt_and_the_worker_lives(daemon, exception):
    calls = collections.Counter()

    def handler(event):
        calls[event["data"]["n"]] += 1
        if event["data"]["n"] == 0 and calls[0] == 1:
            raise exception("from the handler")

    daemon.add("p", handler, max_attempts=3)
    for n in range(5):
        daemon.publish(n)
    wait_for(lambda: daemon.journal.counts()["done"] == 5)
    assert calls == {0: 2, 1: 1, 2: 1, 3: 1, 4: 1}
    lane = daemon.router.lanes["p"]
    assert all(thread.is_alive() for thread in lane.threads)
    assert lane.stats["failed"] == 1 and lane.stats["retried"] == 1


def test_a_handler_always_raising_system_exit_is_dead_lettered_not_fatal(daemon):
    daemon.add("quits", lambda event: sys.exit(3), max_attempts=2)
    ok = []
    daemon.add("fine", lambda event: ok.append(event["id"]))
    events = [daemon.publish(n) for n in range(3)]
    wait_for(lambda: len(daemon.journal.dead_letters("quits")) == 3)
    wait_for(lambda: len(ok) == 3)
    dead = daemon.journal.dead_letters("quits")
    assert {d.event_id for d in dead} == {e["id"] for e in events}
    assert all(d.attempts == 2 and "SystemExit: 3" in d.last_error for d in dead)


KILLER = textwrap.dedent("""
    import os, sys
    from reviewd.daemon.journal import SqliteJournal
    journal = SqliteJournal(sys.argv[1])
    journal.record({"id": "doomed", "topic": "t", "data": {}}, ["p"])
    journal.begin_attempt("doomed", "p", int(sys.argv[2]))
    os._exit(9)  # dies "inside the handler"
""")


def test_process_death_inside_a_handler_counts_and_dead_letters_without_calling_it(tmp_path):
    path = str(tmp_path / "journal.sqlite3")
    for attempt in (1, 2):  # two deaths: two attempts spent
        subprocess.run([sys.executable, "-c", KILLER, path, str(attempt)], check=False, timeout=60)
        SqliteJournal(path).close()  # a start: the running attempt is counted
    journal = SqliteJournal(path)
    [delivery] = journal.pending("p")
    assert (delivery.attempts, delivery.last_error) == (2, DIED)
    metrics, called = Metrics(), []
    router = Router(
        journal,
        lambda event, sub: called.append(event),
        metrics,
        resolver=lambda plugin, d: Job(
            d.payload,
            d.event_id,
            d.topic,
            plugin,
            [object()],
            attempts=d.attempts,
            last_error=d.last_error,
        ),
    )
    router.lane("p", LaneSettings(max_attempts=2))
    assert router.refill() == 1
    wait_for(lambda: journal.dead_letters("p"))
    router.stop(grace=2)
    [dead] = journal.dead_letters("p")
    assert dead.last_error == DIED and dead.attempts == 2
    assert called == []


def test_lane_queues_are_bounded_in_bytes_and_the_rest_waits_in_the_journal(daemon):
    gate = threading.Event()
    handled = []

    def handler(event):
        gate.wait(30)
        handled.append(event["data"]["n"])

    daemon.add("big", handler, queue_bytes=50_000, queue_size=1000)
    blob = "x" * 20_000
    for n in range(20):
        daemon.publish(n, blob=blob)
    wait_for(lambda: daemon.router.lanes["big"].snapshot()["in_flight"] == 1)
    daemon.intake.drain(10)
    lane = daemon.router.lanes["big"]
    assert lane.queued_bytes <= 50_000
    assert lane.queue.qsize() <= 3
    assert daemon.journal.counts()["pending"] == 20  # nothing lost, most in the journal
    gate.set()
    wait_for(lambda: len(handled) == 20)
    assert sorted(handled) == list(range(20))


def test_failed_action_is_not_retried_and_the_web_ui_gets_a_failure_reply(daemon):
    calls = []

    def action(event):
        calls.append(event["id"])
        raise RuntimeError("cannot publish the review")

    daemon.add("act", action, max_attempts=5)
    event = daemon.publish(1, topic="ftrack.action.launch")
    wait_for(lambda: daemon.journal.dead_letters("act"))
    assert calls == [event["id"]]
    assert daemon.hub.replies == [
        (
            event["id"],
            {"success": False, "message": "act failed: RuntimeError: cannot publish the review"},
        )
    ]


def test_retry_actions_setting_retries_a_failed_action(daemon):
    calls = []

    def action(event):
        calls.append(event["id"])
        if len(calls) == 1:
            raise RuntimeError("flaky")

    daemon.add("act", action, retry_actions=True)
    daemon.publish(1, topic="ftrack.action.launch")
    wait_for(lambda: daemon.journal.counts()["done"] == 1)
    assert len(calls) == 2 and daemon.hub.replies == []


def test_spool_is_bounded_in_bytes_and_counts_what_it_refuses():
    spool: Spool[str] = Spool(max_bytes=100)
    assert spool.put("a", 60) and spool.put("b", 40)
    assert not spool.put("c", 1)
    assert spool.refused == 1 and spool.bytes == 100
    assert spool.peek(10) == ["a", "b"]
    spool.drop(1)
    assert spool.bytes == 40 and spool.peek(10) == ["b"]
    assert spool.put("huge", 500) is False  # a non-empty spool never exceeds its bound
    spool.drop(1)
    assert spool.put("huge", 500)  # an empty one takes any single event


def test_journal_file_is_private_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        journal = SqliteJournal(str(tmp_path / "j.sqlite3"))
        journal.record({"id": "e1", "topic": "t"}, ["p"])
    finally:
        os.umask(old)
    for suffix in ("", "-wal"):
        mode = os.stat(journal.path + suffix).st_mode & 0o777
        assert mode == 0o600, (suffix, oct(mode))
    journal.close()


def test_finished_events_compact_to_dedupe_rows_that_expire(tmp_path):
    journal = SqliteJournal(str(tmp_path / "j.sqlite3"))
    blob = "y" * 2000
    ids = [uuid.uuid4().hex for _ in range(500)]
    for event_id in ids:
        journal.record({"id": event_id, "topic": "t", "data": {"blob": blob}}, ["a", "b"])
        journal.mark_done(event_id, "a")
        journal.mark_done(event_id, "b")
    journal.record({"id": "still-pending", "topic": "t"}, ["a"])
    assert journal.compact(age=0) == 500
    stats = journal.stats()
    assert stats["live_events"] == 1 and stats["finished_events_kept_for_dedupe"] == 500
    assert journal.counts() == {"pending": 1, "done": 1000, "dead": 0}
    assert journal.record({"id": ids[0], "topic": "t"}, ["a"]) == []  # still deduplicated
    before = journal.size_bytes()
    journal.reclaim()
    assert journal.size_bytes() < before
    assert journal.size_bytes() < 200_000  # no payloads left: 500 x 2 kB would be 1 MB
    assert journal.prune(retention=0, now=journal_now() + 10) == 1000
    assert journal.record({"id": ids[0], "topic": "t"}, ["a"]) == ["a"]  # window over
    journal.close()


def journal_now() -> float:
    import time

    return time.time()


def test_journal_stats_command_prints_rows_by_state_and_bytes(tmp_path):
    path = str(tmp_path / "journal.sqlite3")
    journal = SqliteJournal(path)
    for n in range(3):
        journal.record({"id": f"s{n}", "topic": "t"}, ["p"])
    journal.mark_done("s0", "p")
    journal.mark_dead("s1", "p", "boom")
    journal.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FTRACK_", "REVIEWD_"))}
    result = subprocess.run(
        [sys.executable, "-m", "reviewd.daemon.cli", "journal", "stats", "--journal", path],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "deliveries: pending 1, done 1, dead 1" in result.stdout
    assert f"journal: {path}" in result.stdout
    reported = int(result.stdout.split("on disk: ")[1].split("(")[1].split(" bytes")[0])
    assert reported >= os.path.getsize(path) > 0  # the file, plus its open log


FINISHER = textwrap.dedent("""
    import os, sys
    from reviewd.daemon.journal import SqliteJournal
    journal = SqliteJournal(sys.argv[1])
    for name in ("finished", "running"):
        journal.record({"id": name, "topic": "t", "data": {}}, ["p"])
    journal.begin_attempt("finished", "p", 1)
    journal.mark_done("finished", "p", then=lambda result: None)  # deferred: not committed
    journal.begin_attempt("running", "p", 1)
    os._exit(9)
""")


def test_a_finished_attempt_whose_commit_was_lost_is_done_not_died(tmp_path):
    """The handler returned but the process died before the shared commit: the attempt
    log says it succeeded, so it is done at the next start (no second call), while the
    one that was still running counts as died."""
    path = str(tmp_path / "journal.sqlite3")
    subprocess.run([sys.executable, "-c", FINISHER, path], check=False, timeout=60)
    journal = SqliteJournal(path)
    assert journal.recovered == 1
    assert [(d.event_id, d.attempts, d.last_error) for d in journal.pending("p")] == [
        ("running", 1, DIED)
    ]
    assert [d.state for d in journal.deliveries("finished")] == ["done"]
    assert AttemptLog.read(path + "-attempts") == {}  # emptied once counted
    journal.close()


def test_overflow_keeps_arrival_order_new_events_do_not_jump_the_journal(daemon):
    order = []
    gate = threading.Event()

    def handler(event):
        gate.wait(30)
        order.append(event["data"]["n"])

    daemon.add("ordered", handler, queue_size=5)
    for n in range(200):
        daemon.publish(n)
        if n == 100:
            gate.set()  # the lane drains while newer events keep arriving
    wait_for(lambda: len(order) == 200)
    assert order == list(range(200))


def test_journal_file_replaced_or_emptied_under_it_is_reported_and_writes_stop(tmp_path):
    path = str(tmp_path / "journal.sqlite3")
    journal = SqliteJournal(path)
    journal.record({"id": "before", "topic": "t"}, ["p"])
    assert journal.check_file() is None
    os.rename(path, path + ".old")
    with open(path, "wb"):
        pass  # another (empty) file under the same name
    reason = journal.check_file()
    assert reason and path in reason and "replaced" in reason
    with pytest.raises(Exception, match="replaced"):
        journal.record({"id": "after", "topic": "t"}, ["p"])  # kept by the intake's spool
    journal.close()
