"""Acceptance: durable, isolated delivery in the real ``reviewd`` process.

kill -9 mid-burst and replay; failing and hanging plugins; graceful stop with in-flight
handlers; SIGHUP reload with the hub still connected; foreground hot reload.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading

from reviewd.daemon.journal.attempts import SUCCEEDED, AttemptLog

from .daemon_harness import DaemonProcess, lines_of, service_env, wait_for, write_plugin
from .test_daemon_acceptance_start import wait_subscribed

SLOW = """
    import os
    import time

    OUT = os.environ["SLOW_OUT"]

    def register(session, **kwargs):
        def on_burst(event):
            time.sleep(0.004)
            with open(OUT, "a") as handle:
                handle.write(event["id"] + "\\n")
        session.event_hub.subscribe("topic=test.burst", on_burst)
"""


def journal_states(path: str) -> dict[str, str]:
    """Every journaled event's state for the 'slow' plugin, including the finished events
    the journal compacted into its de-duplication table (``seen``: 16-byte ids)."""
    db = sqlite3.connect(path)
    try:
        rows = db.execute(
            "SELECT e.id, d.state FROM deliveries d JOIN events e "
            "ON e.seq = d.event_seq WHERE d.plugin = 'slow'"
        ).fetchall()
        rows += db.execute("SELECT lower(hex(id)), 'done' FROM seen").fetchall()
    finally:
        db.close()
    return dict(rows)


def test_kill_9_mid_burst_then_restart_loses_nothing_and_repeats_nothing_done(tmp_path, devserver):
    plugins = tmp_path / "plugins"
    write_plugin(plugins, "slow", SLOW)
    journal = str(tmp_path / "journal.sqlite3")
    first_out, second_out = tmp_path / "first.txt", tmp_path / "second.txt"
    env = service_env(
        devserver,
        FTRACK_EVENT_PLUGIN_PATH=str(plugins),
        REVIEWD_JOURNAL=journal,
        SLOW_OUT=str(first_out),
    )
    daemon = DaemonProcess(tmp_path, [], env=env, name="first")
    daemon.wait_ready()
    wait_subscribed(devserver, "test.burst")

    stop_emitting = threading.Event()

    def burst():
        for n in range(1000):
            if stop_emitting.is_set():
                return
            devserver.emit("test.burst", {"n": n})

    emitter = threading.Thread(target=burst)
    emitter.start()
    try:
        wait_for(
            lambda: len(lines_of(first_out)) >= 150,
            timeout=60,
            message="the slow plugin to be part-way through the burst",
        )
        daemon.kill()  # SIGKILL: no cleanup of any kind
    finally:
        stop_emitting.set()
        emitter.join()

    before = journal_states(journal)
    # A handler that returned before the kill but whose "done" was still waiting for the
    # shared commit is in the attempt log as succeeded: the next start marks it done.
    succeeded = {
        event_id
        for (event_id, plugin), (_, state) in AttemptLog.read(journal + "-attempts").items()
        if plugin == "slow" and state == SUCCEEDED
    }
    done_before = {i for i, s in before.items() if s == "done" or i in succeeded}
    pending_before = {i for i, s in before.items() if s == "pending" and i not in succeeded}
    handled_first = lines_of(first_out)
    assert pending_before, "the kill should leave unfinished deliveries"
    assert done_before <= set(handled_first)  # done implies handled
    assert set(handled_first) <= set(before)  # journaled before any plugin saw it

    env["SLOW_OUT"] = str(second_out)
    again = DaemonProcess(tmp_path, [], env=env, name="second")
    try:
        again.wait_ready()
        wait_for(
            lambda: not any(s == "pending" for s in journal_states(journal).values()),
            timeout=60,
            message="every unfinished delivery to be replayed",
        )
        status = again.status()
    finally:
        assert again.stop() == 0, again.output()
    handled_second = lines_of(second_out)
    assert set(handled_second) == pending_before  # replayed: exactly the unfinished ones
    assert not set(handled_second) & done_before  # none twice after completion
    everything = handled_first + handled_second
    assert set(everything) == set(before)  # every journaled event handled at least once
    repeats = {i for i in everything if everything.count(i) > 1}
    assert repeats <= pending_before and len(repeats) <= 1  # at most the one in flight
    assert status["plugins"]["slow"]["succeeded"] >= len(pending_before)


MIXED = """
    import os
    import time

    import reviewd

    HERE = os.path.dirname(os.path.abspath(__file__))

    def register(session, **kwargs):
        def fast(event):
            with open(os.path.join(HERE, "fast.txt"), "a") as handle:
                handle.write(event["id"] + "\\n")
        session.event_hub.subscribe("topic=test.mixed", fast)
"""

RAISER = """
    def register(session, **kwargs):
        def broken(event):
            raise ValueError("this plugin always fails")
        session.event_hub.subscribe("topic=test.mixed", broken)
"""

HANGER = """
    import os
    import time

    import reviewd

    HERE = os.path.dirname(os.path.abspath(__file__))

    @reviewd.hookimpl
    def reviewd_register(session, registry, arguments, name):
        def hang(event):
            while not os.path.exists(os.path.join(HERE, "release")):
                time.sleep(0.02)
        registry.subscribe("topic=test.mixed", hang, timeout=1.0)
"""


def test_failing_plugin_dead_letters_hanging_plugin_is_stuck_others_keep_going(tmp_path, devserver):
    plugins = tmp_path / "plugins"
    write_plugin(plugins, "fast", MIXED)
    write_plugin(plugins, "raiser", RAISER)
    write_plugin(plugins, "hanger", HANGER)
    (tmp_path / "reviewd.toml").write_text(
        "[routing]\nmax_attempts = 3\nretry_backoff = 0.05\nsoft_timeout = 0.5\n"
    )
    env = service_env(devserver, FTRACK_EVENT_PLUGIN_PATH=str(plugins))
    daemon = DaemonProcess(tmp_path, ["--config", str(tmp_path / "reviewd.toml")], env=env)
    try:
        daemon.wait_ready()
        wait_subscribed(devserver, "test.mixed")
        for n in range(5):
            devserver.emit("test.mixed", {"n": n})

        # The hanging plugin is stuck and /readyz says which and why.
        def not_ready_because_stuck():
            code, body = daemon.get("/readyz")
            return code == 503 and any(
                "plugin hanger stuck" in r for r in json.loads(body)["reasons"]
            )

        wait_for(not_ready_because_stuck, timeout=20, message="/readyz to report hanger stuck")
        # Meanwhile the other plugins get every event: the fast one handles all five, the
        # failing one is retried three times per event and dead-lettered.
        wait_for(lambda: len(lines_of(plugins / "fast.txt")) == 5, timeout=20)
        wait_for(lambda: daemon.status()["plugins"]["raiser"]["dead_lettered"] == 5, timeout=30)
        status = daemon.status()
        assert status["plugins"]["raiser"]["failed"] == 15
        assert status["plugins"]["raiser"]["retried"] == 10
        assert status["plugins"]["hanger"]["stuck"]
        assert status["plugins"]["hanger"]["succeeded"] == 0
        assert len(status["dead_letters"]) == 5
        metrics = daemon.get("/metrics")[1]
        assert 'reviewd_plugin_stuck{plugin="hanger"} 1.0' in metrics
        assert (
            'reviewd_events_dead_lettered_total{plugin="raiser",topic="test.mixed"} 5.0' in metrics
        )
        assert 'reviewd_handler_slow_total{plugin="hanger"} 1.0' in metrics

        # Dead letters from the command line: list, retry (fails again), purge.
        def cli(*args):
            return subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "reviewd.daemon.cli",
                    "journal",
                    *args,
                    "--config",
                    str(tmp_path / "reviewd.toml"),
                ],
                capture_output=True,
                text=True,
                timeout=30,
                env=daemon.env,
            )

        listed = cli("list", "--plugin", "raiser")
        assert "5 dead letters" in listed.stdout
        assert "ValueError: this plugin always fails" in listed.stdout
        assert (
            "1 dead letter(s) made pending again"
            in cli("retry", "--event", listed.stdout.split()[0]).stdout
        )
        wait_for(
            lambda: daemon.status()["plugins"]["raiser"]["failed"] == 18,
            timeout=30,
            message="the retried dead letter to be attempted again",
        )
        wait_for(lambda: daemon.status()["plugins"]["raiser"]["dead_lettered"] == 6, timeout=30)
        assert "5 dead letter(s) purged" in cli("purge").stdout

        (plugins / "release").write_text("")
        wait_for(
            lambda: daemon.get("/readyz")[0] == 200,
            timeout=30,
            message="readiness to return once the hung handler finished",
        )
    finally:
        assert daemon.stop() == 0, daemon.output()


GRACEFUL = """
    import os
    import time

    HERE = os.path.dirname(os.path.abspath(__file__))

    def register(session, **kwargs):
        def slow(event):
            with open(os.path.join(HERE, "log.txt"), "a") as handle:
                handle.write("start-" + event["id"] + "\\n")
            time.sleep(1.5)
            with open(os.path.join(HERE, "log.txt"), "a") as handle:
                handle.write("end-" + event["id"] + "\\n")
        session.event_hub.subscribe("topic=test.slow", slow)
"""


def test_sigterm_lets_in_flight_handlers_finish_and_exits_0(tmp_path, devserver):
    plugins = tmp_path / "plugins"
    write_plugin(plugins, "graceful", GRACEFUL)
    env = service_env(devserver, FTRACK_EVENT_PLUGIN_PATH=str(plugins), REVIEWD_GRACE_PERIOD="20")
    daemon = DaemonProcess(tmp_path, [], env=env)
    daemon.wait_ready()
    wait_subscribed(devserver, "test.slow")
    devserver.emit("test.slow", {})
    wait_for(
        lambda: any(x.startswith("start-") for x in lines_of(plugins / "log.txt")),
        message="the handler to start",
    )
    daemon.signal(signal.SIGTERM)
    assert daemon.proc.wait(20) == 0, daemon.output()
    log = lines_of(plugins / "log.txt")
    assert [x.split("-")[0] for x in log] == ["start", "end"]
    records = daemon.log_records()
    assert any(r.get("event") == "stopped" for r in records)


VERSIONED = """
    import os

    HERE = os.path.dirname(os.path.abspath(__file__))

    def register(session, **kwargs):
        def handler(event):
            with open(os.path.join(HERE, "versions.txt"), "a") as handle:
                handle.write("{version}\\n")
        session.event_hub.subscribe("topic=test.reload", handler)
"""


def test_sighup_reloads_a_changed_plugin_with_the_hub_still_connected(tmp_path, devserver):
    plugins = tmp_path / "plugins"
    path = write_plugin(plugins, "versioned", VERSIONED.replace("{version}", "v1"))
    env = service_env(devserver, FTRACK_EVENT_PLUGIN_PATH=str(plugins))
    daemon = DaemonProcess(tmp_path, [], env=env)
    try:
        daemon.wait_ready()
        wait_subscribed(devserver, "test.reload")
        connections_before = [c["sid"] for c in devserver.events.connections()]
        devserver.emit("test.reload", {})
        wait_for(lambda: lines_of(plugins / "versions.txt") == ["v1"])

        path.write_text(path.read_text().replace('"v1', '"v2'))
        daemon.signal(signal.SIGHUP)
        wait_for(
            lambda: any(r.get("event") == "reload finished" for r in daemon.log_records()),
            message="the reload to finish",
        )
        wait_subscribed(devserver, "test.reload")
        devserver.emit("test.reload", {})
        wait_for(lambda: len(lines_of(plugins / "versions.txt")) == 2)
        assert lines_of(plugins / "versions.txt") == ["v1", "v2"]  # old handler gone
        status = daemon.status()
        assert status["hub"]["connected"] and status["hub"]["reconnects"] == 0
        assert [c["sid"] for c in devserver.events.connections()] == connections_before
    finally:
        assert daemon.stop() == 0, daemon.output()


def test_foreground_reloads_a_plugin_when_its_file_changes(tmp_path, devserver):
    plugins = tmp_path / "plugins"
    path = write_plugin(plugins, "versioned", VERSIONED.replace("{version}", "v1"))
    env = service_env(devserver, FTRACK_EVENT_PLUGIN_PATH=str(plugins))
    daemon = DaemonProcess(tmp_path, ["--foreground"], env=env)
    try:
        daemon.wait_ready()
        wait_subscribed(devserver, "test.reload")
        path.write_text(path.read_text().replace('"v1', '"v2'))
        stamp = os.stat(path).st_mtime_ns
        os.utime(path, ns=(stamp + 2_000_000_000, stamp + 2_000_000_000))
        wait_for(
            lambda: "plugin reloaded" in daemon.output(),
            timeout=20,
            message="the watcher to reload the changed plugin",
        )
        wait_subscribed(devserver, "test.reload")
        devserver.emit("test.reload", {})
        wait_for(lambda: lines_of(plugins / "versions.txt") == ["v2"])
    finally:
        assert daemon.stop() == 0, daemon.output()


GAP = """
    import os

    import reviewd

    HERE = os.path.dirname(os.path.abspath(__file__))

    @reviewd.hookimpl
    def reviewd_register(session, registry, arguments, name):
        registry.subscribe("topic=test.gap", lambda event: None)

    @reviewd.hookimpl
    def reviewd_hub_gap(session, gap_start, gap_end):
        with open(os.path.join(HERE, "gaps.txt"), "a") as handle:
            handle.write(gap_start.isoformat() + "|" + gap_end.isoformat() + "\\n")
"""


def test_hub_gap_is_told_to_plugins_logged_and_counted(tmp_path, devserver):
    import datetime

    plugins = tmp_path / "plugins"
    write_plugin(plugins, "gapwatch", GAP)
    env = service_env(devserver, FTRACK_EVENT_PLUGIN_PATH=str(plugins))
    daemon = DaemonProcess(tmp_path, [], env=env)
    try:
        daemon.wait_ready()
        wait_subscribed(devserver, "test.gap")
        assert devserver.faults.drop_all() >= 1
        wait_for(
            lambda: lines_of(plugins / "gaps.txt"),
            timeout=30,
            message="the gap hook to be called after the reconnect",
        )
        start, end = (
            datetime.datetime.fromisoformat(x) for x in lines_of(plugins / "gaps.txt")[0].split("|")
        )
        assert start.tzinfo is not None and start <= end
        status = daemon.status()
        assert status["hub"]["gaps"] == 1 and status["hub"]["reconnects"] == 1
        assert status["hub"]["last_gap"]["seconds"] >= 0
        assert "reviewd_hub_gaps_total 1.0" in daemon.get("/metrics")[1]
        assert any(r.get("event") == "event hub gap" for r in daemon.log_records())
    finally:
        assert daemon.stop() == 0, daemon.output()


HANGS_FOREVER = """
    import os
    import time

    HERE = os.path.dirname(os.path.abspath(__file__))

    def register(session, **kwargs):
        def hang(event):
            with open(os.path.join(HERE, "started.txt"), "a") as handle:
                handle.write(event["id"] + "\\n")
            time.sleep(3600)
        session.event_hub.subscribe("topic=test.forever", hang)
"""


def test_second_signal_exits_at_once_and_keeps_the_delivery_pending(tmp_path, devserver):
    plugins = tmp_path / "plugins"
    write_plugin(plugins, "forever", HANGS_FOREVER)
    journal = str(tmp_path / "journal.sqlite3")
    env = service_env(
        devserver,
        FTRACK_EVENT_PLUGIN_PATH=str(plugins),
        REVIEWD_JOURNAL=journal,
        REVIEWD_GRACE_PERIOD="1h",
    )
    daemon = DaemonProcess(tmp_path, [], env=env)
    try:
        daemon.wait_ready()
        wait_subscribed(devserver, "test.forever")
        devserver.emit("test.forever", {})
        wait_for(lambda: lines_of(plugins / "started.txt"), message="the handler to start")
        daemon.signal(signal.SIGINT)
        wait_for(
            lambda: any(r.get("event") == "stopping" for r in daemon.log_records()),
            message="the first signal to start a graceful stop",
        )
        assert daemon.proc.poll() is None  # still draining: the grace period is an hour
        daemon.signal(signal.SIGINT)
        assert daemon.proc.wait(10) == 1
        assert "second SIGINT" in daemon.output()
    finally:
        daemon.kill()
    db = sqlite3.connect(journal)
    states = [row[0] for row in db.execute("SELECT state FROM deliveries")]
    db.close()
    assert states == ["pending"]


def test_sighup_applies_new_plugin_paths_and_refuses_a_broken_config(tmp_path, devserver):
    first, second = tmp_path / "first", tmp_path / "second"
    write_plugin(first, "alpha", VERSIONED.replace("{version}", "alpha"))
    write_plugin(second, "beta", VERSIONED.replace("{version}", "beta"))
    config = tmp_path / "reviewd.toml"
    config.write_text(f'[plugins]\npaths = ["{first}"]\n')
    daemon = DaemonProcess(tmp_path, ["--config", str(config)], env=service_env(devserver))
    try:
        assert sorted(daemon.wait_ready()["plugins"]) == ["alpha"]

        config.write_text("[routing]\nconcurrency = 0\n")
        daemon.signal(signal.SIGHUP)
        wait_for(
            lambda: any(
                r.get("event", "").startswith("reload refused") for r in daemon.log_records()
            )
        )
        assert sorted(daemon.status()["plugins"]) == ["alpha"]

        config.write_text(f'[plugins]\npaths = ["{first}", "{second}"]\n')
        daemon.signal(signal.SIGHUP)
        wait_for(
            lambda: sorted(daemon.status().get("plugins", {})) == ["alpha", "beta"],
            message="the new plugin path to be loaded",
        )
        daemon.wait_ready()
        wait_subscribed(devserver, "test.reload")
        wait_for(
            lambda: (
                sum(
                    "test.reload" in s["subscription"]
                    for c in devserver.events.connections()
                    for s in c["subscribers"]
                )
                == 2
            )
        )
        devserver.emit("test.reload", {})
        wait_for(
            lambda: (
                sorted(lines_of(first / "versions.txt") + lines_of(second / "versions.txt"))
                == ["alpha", "beta"]
            )
        )
        assert daemon.status()["hub"]["reconnects"] == 0
    finally:
        assert daemon.stop() == 0, daemon.output()


ANSWERS = """
    def register(session, **kwargs):
        def answer(event):
            return {"answer": event["data"]["question"] * 2}
        session.event_hub.subscribe("topic=test.ask", answer)
"""


def test_handler_return_values_become_replies(tmp_path, devserver):
    plugins = tmp_path / "plugins"
    write_plugin(plugins, "answers", ANSWERS)
    daemon = DaemonProcess(
        tmp_path, [], env=service_env(devserver, FTRACK_EVENT_PLUGIN_PATH=str(plugins))
    )
    try:
        daemon.wait_ready()
        wait_subscribed(devserver, "test.ask")
        reply = devserver.emit("test.ask", {"question": 21}, wait_reply=20)
        assert reply is not None and reply["data"] == {"answer": 42}
        assert reply.get("inReplyToEvent") or reply.get("in_reply_to_event")
    finally:
        assert daemon.stop() == 0, daemon.output()


LOCAL = """
    import os
    import threading

    import reviewd
    from reviewd.api.event.base import Event

    HERE = os.path.dirname(os.path.abspath(__file__))

    @reviewd.hookimpl
    def reviewd_register(session, registry, arguments, name):
        registry.subscribe("topic=test.local", lambda event: threading.current_thread().name)

    @reviewd.hookimpl
    def reviewd_started(session):
        results = session.event_hub.publish(Event("test.local"), synchronous=True)
        with open(os.path.join(HERE, "local.txt"), "w") as handle:
            handle.write(" ".join(results) + " caller=" + threading.current_thread().name)
"""


def test_synchronous_local_events_run_inline_and_skip_the_journal(tmp_path, devserver):
    plugins = tmp_path / "plugins"
    write_plugin(plugins, "local", LOCAL)
    daemon = DaemonProcess(
        tmp_path, [], env=service_env(devserver, FTRACK_EVENT_PLUGIN_PATH=str(plugins))
    )
    try:
        status = daemon.wait_ready()
        handler_thread, caller = (plugins / "local.txt").read_text().split(" caller=")
        assert handler_thread == caller  # run inline on the publisher's thread
        assert status["journal"]["pending"] + status["journal"]["done"] == 0
    finally:
        assert daemon.stop() == 0, daemon.output()
