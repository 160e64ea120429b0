"""The scale-out parts against a real redis-server, one at a time: the lease, the spool
while Redis is away (bounded, refusals counted), the cluster view and its metrics, the
``reviewd status`` cluster lines, and the pinned-plugins setting."""

from __future__ import annotations

import uuid

import pytest

from reviewd.daemon import cli, cluster
from reviewd.daemon import config as config_module
from reviewd.daemon.journal import JournalError
from reviewd.daemon.lease import Lease

from .daemon_harness import wait_for
from .redis_server import RedisServer


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis-parts")).start()
    yield server
    server.stop()


def journal(url, prefix, consumer="host", **kwargs):
    from reviewd.daemon.journal.redis import RedisJournal

    kwargs.setdefault("background", False)
    return RedisJournal(url, prefix=prefix, consumer=consumer, **kwargs)


def event(n):
    return {"id": f"e{n:04d}", "topic": "t", "data": {"n": n}}


def test_a_lease_is_held_by_one_renewed_and_taken_over_after_it_runs_out(redis_server):
    client = redis_server.client()
    key = "lease-" + uuid.uuid4().hex[:8]
    a = Lease(client, key, "a", ttl=0.6)
    b = Lease(client, key, "b", ttl=0.6)
    assert a.step() is True and b.step() is False
    assert a.holder() == a.token and a.token.startswith("a/")
    # Renewal extends only the holder's own key: b's compare-and-extend does nothing.
    first_ttl = client.pttl(key)
    assert a.step() is True and client.pttl(key) >= first_ttl - 50
    assert b.step() is False and a.holder() == a.token
    # a stops renewing (as if killed): the key runs out and b takes it.
    wait_for(lambda: b.step(), timeout=5, interval=0.05, message="b taking the expired lease")
    assert b.holder() == b.token
    # a finds out at its next renewal and lets go.
    assert a.step() is False and not a.held
    b.stop()  # a clean stop releases at once
    assert client.get(key) is None


def test_a_holder_cut_off_from_redis_stops_counting_on_its_lease(tmp_path):
    server = RedisServer(tmp_path / "redis", appendonly=False).start()
    try:
        lease = Lease(server.client(), "lease", "a", ttl=0.6)
        assert lease.step()
        server.stop()
        # No renewal possible: held turns False once the local validity (80% of the ttl
        # after the last renewal was sent) has passed, before the key can expire in Redis.
        wait_for(
            lambda: not lease.step(), timeout=5, interval=0.05, message="the lease given up locally"
        )
    finally:
        server.stop()


def test_while_redis_is_away_writes_raise_and_the_journal_says_why(tmp_path):
    """The intake keeps what cannot be written in its spool (tested with the daemons in
    test_daemon_redis_cluster); the journal's part is to refuse loudly, never to pretend."""
    from reviewd.daemon.journal.sqlite import Entry, encode_event

    server = RedisServer(tmp_path / "redis").start()
    prefix = "s" + uuid.uuid4().hex[:8]
    j = journal(server.url, prefix)
    try:
        assert j.record(event(0), ["p"]) == ["p"]
        server.stop()
        with pytest.raises(JournalError, match="Redis unreachable at redis://"):
            j.record(event(1), ["p"])
        assert j.problem and server.url in j.problem and not j.link.up
        batch = [Entry(f"e000{n}", "t", encode_event(event(n)), ["p"]) for n in (1, 2)]
        with pytest.raises(JournalError, match="Redis unreachable"):
            j.record_batch(batch)
        assert j.link.check() is False
        server.start()
        assert j.link.check() and j.problem is None and j.link.up
        assert j.record_batch(batch) == [["p"], ["p"]]
        assert j.record_batch(batch) == [[], []]  # already journaled: deduplicated
        taken = j.fetch("p", 10, block_ms=10)
        assert [d.event_id for d in taken] == ["e0000", "e0001", "e0002"]  # in order
    finally:
        j.close()
        server.stop()


def test_attempts_are_counted_per_batch_and_a_worker_waits_for_its_last_ack(tmp_path):
    """Taking a batch counts one attempt per delivery in one script call (before any
    handler runs); a worker whose completion could not be acknowledged (Redis away)
    starts no other handler until it is, so a kill -9 can leave at most one finished
    but unacknowledged delivery per worker; entries taken but never started are given
    back at a clean stop without the attempt."""
    import threading

    server = RedisServer(tmp_path / "redis").start()
    prefix = "g" + uuid.uuid4().hex[:8]
    client = server.client()
    j = journal(server.url, prefix, background=True)
    try:
        for n in range(3):
            j.record(event(n), ["p"])
        taken = j.fetch("p", 10, block_ms=10)
        assert [(d.event_id, d.attempts) for d in taken] == [(f"e000{n}", 0) for n in range(3)]
        assert client.hgetall(f"{prefix}:attempts:p") == {f"e000{n}": "1" for n in range(3)}
        steps: list[str] = []

        def worker():
            assert j.begin_attempt("e0000", "p", 1) == 1  # counted already: no write
            steps.append("handler e0000")
            server.stop()
            j.mark_done("e0000", "p")  # cannot be written now; kept for later
            steps.append("finished e0000")
            j.begin_attempt("e0001", "p", 1)  # waits for e0000's acknowledgement
            acked = client.hget(f"{prefix}:entry:p", "e0000") is None
            steps.append(f"handler e0001 (e0000 acknowledged: {acked})")

        thread = threading.Thread(target=worker)
        thread.start()
        wait_for(lambda: "finished e0000" in steps, timeout=10, message="e0000 finished")
        thread.join(0.5)
        assert thread.is_alive() and len(steps) == 2  # e0001 has not started
        assert j.acks.backlog() == 1 and not j.link.up
        server.start()  # the same data: the acknowledgement is written, then e0001 starts
        thread.join(15)
        assert steps[-1] == "handler e0001 (e0000 acknowledged: True)"
        j.mark_done("e0001", "p")
    finally:
        j.close()  # e0002 was taken but never started: handed back without its attempt
    try:
        assert client.hget(f"{prefix}:attempts:p", "e0002") == "0"
        assert client.get(f"{prefix}:done:p") == "2"
        assert client.xlen(f"{prefix}:stream:p") == 1
    finally:
        server.stop()


def test_raw_calls_survive_an_error_reply_and_a_redis_that_forgot_the_scripts(redis_server):
    """The journal's hot calls bypass redis-py's command path: an error reply among
    them is raised after every reply was read, and a Redis that lost its script cache
    (restarted, flushed) gets the scripts again instead of failing the intake or the
    acknowledgements."""
    import redis

    from reviewd.daemon.journal.redis_raw import RawConnections
    from reviewd.daemon.journal.sqlite import Entry, encode_event

    client = redis_server.client()
    key = "raw-" + uuid.uuid4().hex[:8]
    raw = RawConnections(client, lambda: None)
    with pytest.raises(redis.ResponseError, match="not an integer"):
        raw.send([("SET", key, "v"), ("INCR", key), ("APPEND", key, "w")])
    assert raw.send([("GET", key), ("STRLEN", key)]) == ["vw", 2]  # all three ran, in step
    raw.close()

    prefix = "n" + uuid.uuid4().hex[:8]
    j = journal(redis_server.url, prefix, background=True)
    try:
        client.script_flush()
        batch = [Entry(f"e000{n}", "t", encode_event(event(n)), ["p"]) for n in range(3)]
        assert j.record_batch(batch) == [["p"]] * 3
        taken = j.fetch("p", 10, block_ms=10)
        client.script_flush()
        for d in taken:
            j.mark_done(d.event_id, "p")
        assert j.acks.backlog() == 0
        assert j.counts() == {"pending": 0, "done": 3, "dead": 0}
    finally:
        j.close()


def test_cluster_view_metrics_and_status_lines(redis_server):
    prefix = "v" + uuid.uuid4().hex[:8]
    one = journal(redis_server.url, prefix, "one", pinned=["p"], lease_ttl=5)
    two = journal(redis_server.url, prefix, "two", pinned=["p"])
    for j in (one, two):
        j.link.check()  # a heartbeat each
    for n in range(5):
        one.record(event(n), ["p", "q"])
    one.fetch("p", 2, block_ms=10)
    two.fetch("p", 1, block_ms=10)
    one.fetch("q", 5, block_ms=10)
    one.mark_dead("e0000", "q", "ValueError: no")
    lease = Lease(one.client, one.key("lease", "p"), "one", ttl=5)
    assert lease.step()
    from reviewd.daemon.spool import Spool

    spool = Spool(1000)
    spool.put("x", 10)
    view = cluster.view(two, spool)
    assert view["spool"]["events"] == 1 and view["spool"]["bytes"] == 10
    assert {r["name"] for r in view["replicas"]} == {"one", "two"}
    assert all(r["age_seconds"] < 60 for r in view["replicas"])
    p, q = view["plugins"]["p"], view["plugins"]["q"]
    assert (p["lag"], p["pending"], p["pending_by_replica"]) == (2, 3, {"one": 2, "two": 1})
    assert p["lease_holder"].startswith("one/")
    assert (q["lag"], q["pending"], q["dead_letters"]) == (0, 4, 1)

    from reviewd.daemon.metrics import Metrics

    metrics = Metrics()
    metrics.registry.register(cluster.ClusterCollector(lambda: one))
    text = metrics.render().decode()
    assert 'reviewd_cluster_stream_lag{plugin="p"} 2.0' in text
    assert 'reviewd_cluster_pending{plugin="p",replica="two"} 1.0' in text
    assert 'reviewd_cluster_dead_letters{plugin="q"} 1.0' in text
    assert 'reviewd_cluster_lease_held{plugin="p"} 1.0' in text
    assert 'reviewd_cluster_heartbeat_age_seconds{replica="two"}' in text
    assert "reviewd_redis_up 1.0" in text
    refusing = Spool(5)
    refusing.put("first", 5)
    assert refusing.put("over", 4) is False  # full: refused and counted
    metrics = Metrics()
    metrics.registry.register(cluster.ClusterCollector(lambda: one, lambda: refusing))
    text = metrics.render().decode()
    assert "reviewd_redis_spool_refused_total 1.0" in text
    assert "reviewd_redis_spool_bytes 5.0" in text

    lines = "\n".join(cli.format_cluster(view))
    assert "replica two" in lines and "replica one" in lines
    assert "lag 2, pending 3, claims 0, dead 0, lease held by one/" in lines
    assert cli.format_cluster(None) == []
    lease.stop()
    for j in (one, two):
        j.close()


def test_pinned_plugins_and_lease_ttl_settings():
    config = config_module.load(
        environ={
            "REVIEWD_JOURNAL_BACKEND": "redis",
            "REVIEWD_REDIS_URL": "redis://127.0.0.1:1/0",
            "REVIEWD_PINNED_PLUGINS": "exporter, sync ",
            "REVIEWD_LEASE_TTL": "4s",
        },
        require_server=False,
    )
    assert config.pinned_plugins == ["exporter", "sync"] and config.lease_ttl == 4.0
    with pytest.raises(config_module.ConfigError, match="journal.pinned"):
        config_module.load(
            environ={"REVIEWD_PINNED_PLUGINS": "x"},
            flags={"pinned_plugins": 3},
            require_server=False,
        )


def test_the_command_line_tools_take_no_work_and_send_no_heartbeat(redis_server):
    from reviewd.daemon.journal import open_journal

    prefix = "t" + uuid.uuid4().hex[:8]
    config = config_module.load(
        environ={
            "REVIEWD_JOURNAL_BACKEND": "redis",
            "REVIEWD_REDIS_URL": redis_server.url,
            "REVIEWD_REDIS_PREFIX": prefix,
        },
        require_server=False,
    )
    worker = journal(redis_server.url, prefix, "worker")
    worker.record(event(1), ["p"])
    tool = open_journal("", config, background=False)
    try:
        assert [d.event_id for d in tool.pending("p")] == ["e0001"]
        assert redis_server.client().hgetall(f"{prefix}:replicas") == {}
        assert [d.event_id for d in worker.fetch("p", 10, block_ms=10)] == ["e0001"]
    finally:
        tool.close()
        worker.close()
