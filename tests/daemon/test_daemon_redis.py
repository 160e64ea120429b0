"""The Redis Streams journal with a real redis-server: dedupe across hosts, shared work,
takeover from a dead host, dead letters; and two real daemons sharing one Redis."""

from __future__ import annotations

import collections
import os
import shutil
import subprocess
import threading
import uuid

import pytest

from reviewd.daemon.metrics import Metrics
from reviewd.daemon.router import Job, LaneSettings, Router
from tests.conftest import require

from .daemon_harness import DaemonProcess, free_port, lines_of, service_env, wait_for, write_plugin
from .test_daemon_acceptance_start import wait_subscribed


@pytest.fixture(scope="module")
def redis_url():
    url = os.environ.get("REVIEWD_TEST_REDIS_URL")
    if url:
        yield url
        return
    require(shutil.which("redis-server") is not None, "redis-server is not installed")
    port = free_port()
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--bind",
            "127.0.0.1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(port=port)

    def pong():
        try:
            return client.ping()
        except redis.RedisError:
            return False

    wait_for(pong, timeout=20, message="redis-server to start")
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)


def journal(url, prefix, consumer, **kwargs):
    from reviewd.daemon.journal.redis import RedisJournal

    kwargs.setdefault("background", False)
    return RedisJournal(url, prefix=prefix, consumer=consumer, **kwargs)


def event(n):
    return {"id": f"r{n:04d}", "topic": "t", "data": {"n": n}}


def test_dedupe_across_hosts_and_shared_work(redis_url):
    prefix = "t" + uuid.uuid4().hex[:8]
    a, b = journal(redis_url, prefix, "host-a"), journal(redis_url, prefix, "host-b")
    assert a.record(event(1), ["p", "q"]) == ["p", "q"]
    assert b.record(event(1), ["p", "q"]) == []  # the other host already journaled it
    for n in range(2, 6):
        b.record(event(n), ["p"])
    first = a.fetch("p", 2, block_ms=10)
    rest = b.fetch("p", 10, block_ms=10)
    assert [d.event_id for d in first] == ["r0001", "r0002"]
    assert [d.event_id for d in rest] == ["r0003", "r0004", "r0005"]  # no entry twice
    assert first[0].payload["data"] == {"n": 1}
    # The read-only view (reviewd journal list --pending) takes nothing.
    assert [d.event_id for d in a.pending("p")] == [f"r000{n}" for n in range(1, 6)]
    assert b.fetch("p", 10, block_ms=10) == []
    assert a.counts() == {"pending": 6, "done": 0, "dead": 0}
    for d in first:
        a.mark_done(d.event_id, "p")
    assert a.counts()["done"] == 2 and a.counts()["pending"] == 4
    # A restarted host (same consumer name) gets its own unfinished entries back.
    again = journal(redis_url, prefix, "host-b").fetch("p", 100, own=True)
    assert [d.event_id for d in again] == ["r0003", "r0004", "r0005"]


def test_an_acknowledgement_leaves_at_once_and_joins_the_others_ready(redis_url):
    import redis

    prefix = "t" + uuid.uuid4().hex[:8]
    client = redis.Redis.from_url(redis_url)
    j = journal(redis_url, prefix, "host", background=True)
    try:
        for n in range(300):
            j.record(event(n), ["p"])
        taken = j.fetch("p", 300, block_ms=10)
        assert len(taken) == 300
        # A worker's completion is in Redis when mark_done returns: no timer, no batch fill.
        for d in taken[:100]:
            j.mark_done(d.event_id, "p")
            assert client.xpending(f"{prefix}:stream:p", "reviewd")["pending"] == 299 - int(
                d.event_id[1:]
            )
        assert j.acks.acked == 100 and j.acks.batches == 100
        # Completions that gathered while a write was under way go in the next one, in
        # one round trip (here: queued without writing, then one worker writes through).
        tickets = [j.acks.done("p", d.event_id) for d in taken[100:]]
        assert not j.acks.written(tickets[0])
        assert j.acks.write_through(tickets[0])
        assert j.acks.written(tickets[-1]) and j.acks.batches == 101
        assert j.counts() == {"pending": 0, "done": 300, "dead": 0}
        assert j.acks.acked == 300
    finally:
        j.close()


def test_a_dead_hosts_entries_are_taken_over_unless_touched(redis_url):
    prefix = "t" + uuid.uuid4().hex[:8]
    a = journal(redis_url, prefix, "host-a", claim_idle=0.3)
    b = journal(redis_url, prefix, "host-b", claim_idle=0.3)
    for n in range(3):
        a.record(event(n), ["p"])
    held = a.fetch("p", 10, block_ms=10)
    assert len(held) == 3
    assert b.fetch("p", 10, block_ms=10) == [] and b.claim("p", 10) == []  # all held by a
    import redis

    client = redis.Redis.from_url(redis_url)

    def all_idle():  # host-a stays silent until every entry is past claim_idle
        entries = client.xpending_range(f"{prefix}:stream:p", "reviewd", "-", "+", 10)
        return len(entries) == 3 and all(e["time_since_delivered"] > 300 for e in entries)

    wait_for(all_idle, timeout=10, message="host-a's entries to be idle past claim_idle")
    assert a.touch("p", ["r0000"]) == []  # host-a still works on this one
    taken = b.claim("p", 10)
    assert [d.event_id for d in taken] == ["r0001", "r0002"]
    assert int(client.get(f"{prefix}:claims:p")) == 2
    # host-a touching what host-b took does not take it back: it learns it lost them.
    assert sorted(a.touch("p", ["r0001", "r0002"])) == ["r0001", "r0002"]
    owners = {
        e["message_id"].decode(): e["consumer"].decode()
        for e in client.xpending_range(f"{prefix}:stream:p", "reviewd", "-", "+", 10)
    }
    assert sorted(owners.values()) == ["host-a", "host-b", "host-b"]


def test_failures_dead_letters_retry_and_purge(redis_url):
    prefix = "t" + uuid.uuid4().hex[:8]
    j = journal(redis_url, prefix, "host")
    j.record(event(1), ["p"])
    j.fetch("p", 10, block_ms=10)
    assert j.begin_attempt("r0001", "p") == 1  # counted before the handler runs
    j.mark_failed("r0001", "p", "first failure")
    again = j.fetch("p", 10, own=True)
    assert [(d.attempts, d.last_error) for d in again] == [(1, "first failure")]
    j.begin_attempt("r0001", "p")
    j.mark_dead("r0001", "p", "Traceback\nValueError: no")
    dead = j.dead_letters()
    assert [(d.event_id, d.state, d.attempts) for d in dead] == [("r0001", "dead", 2)]
    assert j.counts() == {"pending": 0, "done": 0, "dead": 1}
    assert j.retry_dead(plugin="p") == 1
    again = j.fetch("p", 10, block_ms=10)
    assert [(d.event_id, d.attempts) for d in again] == [("r0001", 0)]
    j.mark_dead("r0001", "p", "still no")
    assert j.purge_dead(event_id="r0001") == 1
    assert j.counts() == {"pending": 0, "done": 0, "dead": 0}


def test_router_lanes_pull_their_share_from_redis(redis_url):
    prefix = "t" + uuid.uuid4().hex[:8]
    handled: dict[str, list] = {"a": [], "b": []}
    routers = []
    for host in ("a", "b"):
        j = journal(redis_url, prefix, f"host-{host}")

        def resolve(plugin, delivery, host=host):
            return Job(
                delivery.payload,
                delivery.event_id,
                delivery.topic,
                plugin,
                [lambda e, host=host: handled[host].append(e["id"])],
            )

        router = Router(j, lambda ev, sub: sub(ev), Metrics(), resolver=resolve)
        router.lane("p", LaneSettings())
        routers.append((j, router))
    writer = journal(redis_url, prefix, "writer")
    for n in range(40):
        writer.record(event(n), ["p"])
    wait_for(lambda: len(handled["a"]) + len(handled["b"]) == 40, timeout=20)
    wait_for(lambda: writer.counts()["done"] == 40, timeout=20)
    assert sorted(handled["a"] + handled["b"]) == [f"r{n:04d}" for n in range(40)]
    for _j, router in routers:
        router.stop(grace=2)


SHARED = """
    import os
    import time

    OUT = os.environ["SHARED_OUT"]

    def register(session, **kwargs):
        def on_event(event):
            if os.environ.get("SHARED_HANG") and event["data"]["n"] > 60:
                time.sleep(3600)  # this host hangs, then is killed holding the event
            time.sleep(0.02)
            with open(OUT, "a") as handle:
                handle.write(event["data"]["n"] and str(event["data"]["n"]) or "0")
                handle.write("\\n")
        session.event_hub.subscribe("topic=test.shared", on_event)
"""


def test_two_daemons_share_one_redis_and_take_over_from_a_killed_one(
    tmp_path, devserver, redis_url
):
    plugins = tmp_path / "plugins"
    write_plugin(plugins, "shared", SHARED)
    prefix = "t" + uuid.uuid4().hex[:8]
    daemons = []
    for host in ("one", "two"):
        env = service_env(
            devserver,
            FTRACK_EVENT_PLUGIN_PATH=str(plugins),
            REVIEWD_JOURNAL_BACKEND="redis",
            REVIEWD_REDIS_URL=redis_url,
            REVIEWD_REDIS_PREFIX=prefix,
            REVIEWD_CONSUMER=host,
            REVIEWD_CLAIM_IDLE="1",
            SHARED_OUT=str(tmp_path / f"{host}.txt"),
        )
        if host == "one":
            env["SHARED_HANG"] = "1"
        daemons.append(DaemonProcess(tmp_path, [], env=env, name=host))
    one, two = daemons
    try:
        for daemon in daemons:
            daemon.wait_ready()
        wait_for(
            lambda: (
                len(
                    [
                        c
                        for c in devserver.events.connections()
                        if any("test.shared" in s["subscription"] for s in c["subscribers"])
                    ]
                )
                == 2
            )
        )
        wait_subscribed(devserver, "test.shared")

        def emit(numbers):
            for n in numbers:
                devserver.emit("test.shared", {"n": n})

        emit(range(1, 61))
        wait_for(
            lambda: len(lines_of(tmp_path / "one.txt")) + len(lines_of(tmp_path / "two.txt")) >= 60,
            timeout=30,
            message="60 events handled between the two daemons",
        )
        handled = lines_of(tmp_path / "one.txt") + lines_of(tmp_path / "two.txt")
        assert sorted(map(int, handled)) == list(range(1, 61))  # each exactly once

        # Host "one" hangs on an event of the second batch and is killed holding it (and
        # whatever else it had pulled); host "two" takes all of it over after claim_idle.
        emitter = threading.Thread(target=emit, args=(range(61, 121),))
        emitter.start()
        wait_for(
            lambda: one.status().get("plugins", {}).get("shared", {}).get("in_flight"),
            timeout=30,
            message="host one to be busy with an event of the second batch",
        )
        one.kill()
        emitter.join()
        wait_for(
            lambda: (
                two.status().get("journal", {}).get("pending") == 0
                and set(range(61, 121))
                <= set(map(int, lines_of(tmp_path / "one.txt") + lines_of(tmp_path / "two.txt")))
            ),
            timeout=60,
            message="host two to finish everything, host one's share included",
        )
    finally:
        for daemon in daemons:
            daemon.stop()
    handled = list(map(int, lines_of(tmp_path / "one.txt") + lines_of(tmp_path / "two.txt")))
    assert set(handled) == set(range(1, 121))
    assert sorted(handled) == list(range(1, 121))  # each exactly once
    # Host one never finished an event of the second batch: host two handled them all,
    # including the one host one was holding when it was killed.
    assert all(n <= 60 for n in map(int, lines_of(tmp_path / "one.txt")))


def test_journal_cli_works_on_the_redis_backend(redis_url):
    from .test_daemon_config import run_cli

    prefix = "t" + uuid.uuid4().hex[:8]
    j = journal(redis_url, prefix, "host")
    j.record(event(7), ["p"])
    j.pending("p")
    j.mark_dead("r0007", "p", "KeyError: 'x'")
    env = {
        "REVIEWD_JOURNAL_BACKEND": "redis",
        "REVIEWD_REDIS_URL": redis_url,
        "REVIEWD_REDIS_PREFIX": prefix,
    }
    listed = run_cli("journal", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "r0007  p  t  dead  attempts=1  KeyError: 'x'" in listed.stdout
    assert "1 dead letter(s) made pending again" in run_cli("journal", "retry", env=env).stdout
    assert j.counts() == {"pending": 1, "done": 0, "dead": 0}


def test_on_redis_the_attempt_is_counted_before_the_handler_and_base_exceptions_fail_it(redis_url):
    import redis

    prefix = "t" + uuid.uuid4().hex[:8]
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    j = journal(redis_url, prefix, "host", background=True)
    seen_attempts = []
    calls = collections.Counter()

    def handler(event):
        calls[event["id"]] += 1
        seen_attempts.append(client.hget(f"{prefix}:attempts:p", event["id"]))
        if event["id"] == "r0001":
            raise SystemExit("a handler calling sys.exit")
        if event["id"] == "r0002":
            raise KeyboardInterrupt

    def resolve(plugin, delivery):
        return Job(
            delivery.payload,
            delivery.event_id,
            delivery.topic,
            plugin,
            [handler],
            attempts=delivery.attempts,
        )

    router = Router(j, lambda ev, sub: sub(ev), Metrics(), resolver=resolve)
    router.lane("p", LaneSettings(max_attempts=2, retry_backoff=0.01))
    try:
        for n in range(4):
            j.record(event(n), ["p"])
        wait_for(
            lambda: j.counts() == {"pending": 0, "done": 2, "dead": 2},
            timeout=20,
            message="two done, the two raising BaseException dead-lettered",
        )
        dead = {d.event_id: (d.attempts, d.last_error.splitlines()[-1]) for d in j.dead_letters()}
    finally:
        router.stop(grace=2)
        j.close()
    # Each attempt was in Redis before its handler ran; the worker survived SystemExit
    # and KeyboardInterrupt (each a failed attempt, retried once, then dead-lettered).
    assert "1" in seen_attempts and "2" in seen_attempts
    assert calls == {"r0000": 1, "r0001": 2, "r0002": 2, "r0003": 1}
    assert dead == {
        "r0001": (2, "SystemExit: a handler calling sys.exit"),
        "r0002": (2, "KeyboardInterrupt"),
    }


def test_a_pinned_lane_takes_work_only_while_it_holds_the_lease(redis_url):
    import redis

    prefix = "t" + uuid.uuid4().hex[:8]
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    key = f"{prefix}:lease:p"
    client.set(key, "elsewhere/1/abc", px=60_000)  # another replica holds it
    j = journal(redis_url, prefix, "here", background=True, pinned=["p"], lease_ttl=0.6)
    handled = []
    release = threading.Event()

    def handler(event):
        handled.append(event["id"])
        release.wait(0.05)

    def resolve(plugin, delivery):
        return Job(delivery.payload, delivery.event_id, delivery.topic, plugin, [handler])

    router = Router(j, lambda ev, sub: sub(ev), Metrics(), resolver=resolve)
    lane = router.lane("p", LaneSettings())
    feed = j.feeds["p"]
    try:
        for n in range(30):
            j.record(event(n), ["p"])
        wait_for(lambda: feed.lease.rounds >= 4, message="several tries for the lease")
        assert handled == [] and not feed.lease.held  # not the holder: takes nothing
        client.delete(key)  # the holder went away
        wait_for(lambda: len(handled) >= 5, message="the lane working once it holds the lease")
        assert client.get(key).startswith("here/")
        client.set(key, "elsewhere/2/def", px=60_000)  # taken over (as after a long pause)
        wait_for(lambda: not feed.lease.held, message="the lease seen lost")
        wait_for(
            lambda: lane.queue.qsize() == 0 and not lane.in_flight,
            message="queued deliveries given back, the running one finished",
        )
        stopped_at = len(handled)
        rounds = feed.lease.rounds
        wait_for(lambda: feed.lease.rounds >= rounds + 3, message="more lease rounds")
        assert len(handled) == stopped_at  # nothing started without the lease
        assert stopped_at < 30
        # What it gave back is still pending in Redis, for the holder to take.
        assert j.counts()["pending"] == 30 - stopped_at
    finally:
        router.stop(grace=2)
        j.close()


def test_a_fed_lane_bounded_in_bytes_gets_everything_in_order(redis_url):
    prefix = "t" + uuid.uuid4().hex[:8]
    j = journal(redis_url, prefix, "host", background=True)
    handled = []

    def resolve(plugin, delivery):
        return Job(
            delivery.payload,
            delivery.event_id,
            delivery.topic,
            plugin,
            [lambda e: handled.append(e["id"])],
            size=delivery.size,
        )

    router = Router(j, lambda ev, sub: sub(ev), Metrics(), resolver=resolve)
    router.lane("p", LaneSettings(queue_bytes=3000))  # room for about two events
    try:
        for n in range(60):
            j.record({**event(n), "data": {"blob": "x" * 1000}}, ["p"])
        wait_for(
            lambda: len(handled) == 60,
            timeout=30,
            message="every event through a lane that holds two at a time",
        )
        assert handled == [f"r{n:04d}" for n in range(60)]  # one worker: arrival order
        wait_for(lambda: j.counts()["done"] == 60, timeout=10)
    finally:
        router.stop(grace=2)
        j.close()
