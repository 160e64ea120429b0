"""The router with real threads, a real SQLite journal and plain-Python handlers."""

from __future__ import annotations

import threading
import time

import pytest

from reviewd.daemon.journal import SqliteJournal
from reviewd.daemon.metrics import Metrics
from reviewd.daemon.router import Job, LaneSettings, Router
from tests.support import wait_until


def wait_for(condition, timeout: float = 10.0, interval: float = 0.01):
    """:func:`tests.support.wait_until` with this file's defaults: 10 s, every 10 ms
    (in-process lanes answer within milliseconds)."""
    return wait_until(condition, timeout, interval)


class Env:
    """A router whose subscribers are plain callables taking the event."""

    def __init__(self, tmp_path):
        self.journal = SqliteJournal(str(tmp_path / "journal.sqlite3"))
        self.metrics = Metrics()
        self.subscribers: dict[str, list] = {}
        self.router = Router(
            self.journal,
            lambda event, sub: sub(event),
            self.metrics,
            resolver=self.resolve,
            check_interval=0.02,
        )

    def resolve(self, plugin, delivery):
        return Job(
            delivery.payload,
            delivery.event_id,
            delivery.topic,
            plugin,
            self.subscribers[plugin],
            attempts=delivery.attempts,
        )

    def add(self, plugin, handlers, **settings):
        self.subscribers[plugin] = handlers
        self.router.lane(plugin, LaneSettings(**settings))

    def publish(self, n: int, topic: str = "t") -> dict:
        event = {"id": f"ev{n:04d}", "topic": topic, "data": {"n": n}}
        for plugin in self.journal.record(event, list(self.subscribers)):
            self.router.submit(Job(event, event["id"], topic, plugin, self.subscribers[plugin]))
        return event

    def state(self, n: int, plugin: str) -> str:
        return {d.plugin: d.state for d in self.journal.deliveries(f"ev{n:04d}")}[plugin]

    def metric(self, name: str, **labels) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
def env(tmp_path):
    environment = Env(tmp_path)
    yield environment
    environment.router.stop(grace=1)


def test_events_run_in_order_and_are_marked_done(env):
    seen = []
    env.add("ordered", [lambda e: seen.append(e["data"]["n"])])
    for n in range(50):
        env.publish(n)
    wait_for(lambda: len(seen) == 50)
    assert seen == list(range(50))
    wait_for(lambda: env.journal.counts()["done"] == 50)
    env.publish(3)  # a duplicate id is not delivered again
    assert env.journal.counts()["done"] == 50
    assert env.metric("reviewd_events_succeeded_total", plugin="ordered", topic="t") == 50


def test_raising_handler_is_retried_then_dead_lettered(env):
    calls = []

    def broken(event):
        calls.append(time.monotonic())
        raise ValueError("cannot handle this")

    env.add("broken", [broken], max_attempts=3, retry_backoff=0.05)
    env.publish(1)
    wait_for(lambda: env.state(1, "broken") == "dead")
    assert len(calls) == 3
    dead = env.journal.dead_letters("broken")[0]
    assert dead.attempts == 3 and "ValueError: cannot handle this" in dead.last_error
    assert env.metric("reviewd_events_retried_total", plugin="broken", topic="t") == 2
    assert env.metric("reviewd_events_dead_lettered_total", plugin="broken", topic="t") == 1
    assert calls[1] - calls[0] >= 0.05  # the backoff delay was honoured


def test_retry_that_succeeds_is_done_and_skips_handlers_already_run(env):
    first_calls, flaky_calls = [], []

    def first(event):
        first_calls.append(1)

    def flaky(event):
        flaky_calls.append(1)
        if len(flaky_calls) == 1:
            raise RuntimeError("transient")

    env.add("flaky", [first, flaky], retry_backoff=0.01)
    env.publish(1)
    wait_for(lambda: env.state(1, "flaky") == "done")
    assert (len(first_calls), len(flaky_calls)) == (1, 2)


def test_hanging_plugin_is_stuck_while_others_keep_going(env):
    release = threading.Event()
    fast_seen = []
    env.add("hangs", [lambda e: release.wait(30)], hard_timeout=0.2, soft_timeout=0.1)
    env.add("fast", [lambda e: fast_seen.append(e["id"])])
    for n in range(20):
        env.publish(n)
    reason = wait_for(lambda: env.router.stuck().get("hangs"))
    assert "ev0000" in reason and "hard timeout" in reason
    wait_for(lambda: len(fast_seen) == 20)  # while the other plugin is still hung
    assert env.router.stuck().keys() == {"hangs"}
    assert env.metric("reviewd_handler_slow_total", plugin="hangs") == 1
    release.set()
    wait_for(lambda: env.journal.counts()["done"] == 40)
    assert env.router.stuck() == {}


def test_full_queue_leaves_events_in_the_journal_and_refills(env):
    gate = threading.Event()
    seen = []

    def handler(event):
        gate.wait(30)
        seen.append(event["data"]["n"])

    env.add("small", [handler], queue_size=2)
    for n in range(10):
        env.publish(n)
    assert env.metric("reviewd_queue_overflow_total", plugin="small") > 0
    assert env.journal.counts()["pending"] == 10
    gate.set()
    wait_for(lambda: len(seen) == 10)
    wait_for(lambda: env.journal.counts()["done"] == 10)
    assert sorted(seen) == list(range(10))  # each exactly once


def test_concurrency_runs_handlers_in_parallel(env):
    inside = []
    barrier = threading.Barrier(3, timeout=10)

    def handler(event):
        inside.append(event["id"])
        barrier.wait()  # only passes when three handlers run at the same time

    env.add("wide", [handler], concurrency=3)
    for n in range(3):
        env.publish(n)
    wait_for(lambda: env.journal.counts()["done"] == 3)


def test_stop_lets_in_flight_finish_and_leaves_queued_pending(env):
    started, release, finished = threading.Event(), threading.Event(), []

    def handler(event):
        started.set()
        release.wait(30)
        finished.append(event["id"])

    env.add("slow", [handler])
    for n in range(5):
        env.publish(n)
    started.wait(10)
    threading.Timer(0.2, release.set).start()
    assert env.router.stop(grace=10) is True
    assert finished == ["ev0000"]
    assert env.state(0, "slow") == "done"
    assert [d.event_id for d in env.journal.pending("slow")] == [f"ev{n:04d}" for n in range(1, 5)]


def test_stop_returns_false_when_grace_expires(env):
    release = threading.Event()
    env.add("stuck", [lambda e: release.wait(30)])
    env.publish(1)
    wait_for(lambda: env.router.snapshot()["stuck"]["in_flight"] == 1)
    assert env.router.stop(grace=0.2) is False
    release.set()


def test_replay_from_journal_after_restart(env, tmp_path):
    for n in range(5):
        env.journal.record({"id": f"ev{n:04d}", "topic": "t", "data": {"n": n}}, ["late"])
    seen = []
    env.add("late", [lambda e: seen.append(e["data"]["n"])])
    assert env.router.refill() == 5
    wait_for(lambda: len(seen) == 5)
    assert seen == [0, 1, 2, 3, 4]
    assert env.metric("reviewd_events_replayed_total", plugin="late") == 5


def test_event_stop_skips_later_handlers_of_the_same_plugin(env):
    class StoppableEvent(dict):
        stopped = False

        def stop(self):
            self.stopped = True

        def is_stopped(self):
            return self.stopped

    later = []
    env.add("stopper", [lambda e: e.stop(), lambda e: later.append(1)])
    event = StoppableEvent(id="s1", topic="t", data={})
    env.journal.record(event, ["stopper"])
    env.router.submit(Job(event, "s1", "t", "stopper", env.subscribers["stopper"]))
    wait_for(lambda: env.journal.counts()["done"] == 1)
    assert later == []
