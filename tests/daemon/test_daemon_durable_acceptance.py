"""Acceptance of the durable path (issue 13) in the real ``reviewd`` process: a handler
that kills the process, handlers raising SystemExit/KeyboardInterrupt, a failed action
answered to the web UI, a journal on a full file system, a journal deleted while
running and a journal corrupted mid-file at start."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import threading
import uuid

import pytest

from reviewd.daemon.journal import SqliteJournal
from reviewd.daemon.journal.sqlite import DIED

from .daemon_harness import DaemonProcess, lines_of, service_env, wait_for, write_plugin
from .test_daemon_acceptance_start import wait_subscribed

WITNESS = """
    import os

    HERE = os.path.dirname(os.path.abspath(__file__))

    def register(session, **kwargs):
        def witness(event):
            with open(os.path.join(HERE, "witness.txt"), "a") as handle:
                handle.write(str(event["data"]["n"]) + "\\n")
        session.event_hub.subscribe("topic=test.crash", witness)
"""

KILLER = """
    import os
    import time

    HERE = os.path.dirname(os.path.abspath(__file__))

    def register(session, **kwargs):
        def killer(event):
            if event["data"].get("kill"):
                # Die only once every event is journaled, as a segfault or the OOM
                # killer would: no exception, no cleanup.
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    if os.path.exists(os.path.join(HERE, "all-sent")):
                        break
                    time.sleep(0.02)
                os._exit(7)
            with open(os.path.join(HERE, "killer.txt"), "a") as handle:
                handle.write(str(event["data"]["n"]) + "\\n")
        session.event_hub.subscribe("topic=test.crash", killer)
"""


def readyz_reasons(daemon: DaemonProcess) -> list[str]:
    code, body = daemon.get("/readyz")
    try:
        return json.loads(body).get("reasons", []) if code != 200 else []
    except ValueError:
        return []


def test_handler_killing_the_process_is_dead_lettered_after_restarts(tmp_path, devserver):
    plugins = tmp_path / "plugins"
    write_plugin(plugins, "witness", WITNESS)
    write_plugin(plugins, "killer", KILLER)
    config = tmp_path / "reviewd.toml"
    config.write_text("[routing]\nmax_attempts = 2\nretry_backoff = 0.05\n")
    journal = str(tmp_path / "journal.sqlite3")
    env = service_env(devserver, FTRACK_EVENT_PLUGIN_PATH=str(plugins), REVIEWD_JOURNAL=journal)
    events = 10
    starts = []
    daemon = DaemonProcess(tmp_path, ["--config", str(config)], env=env, name="start0")
    starts.append(daemon)
    daemon.wait_ready()
    wait_subscribed(devserver, "test.crash")
    for n in range(events):
        devserver.emit("test.crash", {"n": n, "kill": n == 3})
    wait_for(
        lambda: len(set(lines_of(plugins / "witness.txt"))) == events,
        timeout=30,
        message="every event journaled and seen by the witness plugin",
    )
    (plugins / "all-sent").write_text("")
    # Restart on failure, as systemd's Restart=on-failure would, until it stays up.
    while True:
        daemon.proc.wait(timeout=60) if daemon.proc.poll() is None and _dying(daemon) else None
        if daemon.proc.poll() is None:
            break
        assert daemon.proc.returncode == 7, daemon.output()
        assert len(starts) <= 4, "the daemon crash-loops on the same event"
        daemon = DaemonProcess(
            tmp_path, ["--config", str(config)], env=env, name=f"start{len(starts)}"
        )
        starts.append(daemon)
        wait_for(
            lambda d=daemon: d.proc.poll() is not None or d.get("/readyz")[0] == 200,
            timeout=60,
            message="the restarted daemon to die again or become ready",
        )
    try:
        wait_for(lambda: daemon.get("/readyz")[0] == 200, timeout=60)
        wait_for(
            lambda: daemon.status()["journal"].get("dead", 0) == 1,
            timeout=30,
            message=f"one dead letter: {daemon.status()}",
        )
        status = daemon.status()
        [dead] = status["dead_letters"]
        assert dead["plugin"] == "killer"
        assert DIED in json.dumps(dead)
        wait_for(
            lambda: (
                set(lines_of(plugins / "killer.txt")) == {str(n) for n in range(events) if n != 3}
            ),
            timeout=30,
            message="the killer plugin to handle every other event",
        )
        assert set(lines_of(plugins / "witness.txt")) == {str(n) for n in range(events)}
        assert len(starts) == 3  # two deaths spend the budget of two attempts
    finally:
        assert daemon.stop() == 0, daemon.output()


def _dying(daemon: DaemonProcess) -> bool:
    """True once the daemon is on its way out (exited) or stays up and ready for a while
    without the doomed event pending (then it will not die)."""
    try:
        wait_for(
            lambda: daemon.proc.poll() is not None or _settled(daemon),
            timeout=60,
            message="the daemon to die in the handler or settle",
        )
    except AssertionError:
        return False
    return daemon.proc.poll() is not None


def _settled(daemon: DaemonProcess) -> bool:
    status = daemon.status()
    return bool(status) and status.get("journal", {}).get("dead", 0) >= 1


QUITTERS = """
    import os
    import sys

    HERE = os.path.dirname(os.path.abspath(__file__))

    def register(session, **kwargs):
        def quitter(event):
            kind = event["data"].get("raise")
            if kind == "exit":
                sys.exit("handler asked to exit")
            if kind == "interrupt":
                raise KeyboardInterrupt()
            with open(os.path.join(HERE, "quitter.txt"), "a") as handle:
                handle.write(str(event["data"]["n"]) + "\\n")
        session.event_hub.subscribe("topic=test.quit", quitter)

        def action(event):
            raise RuntimeError("the render farm is unreachable")
        session.event_hub.subscribe("topic=ftrack.action.launch", action)
"""


def test_system_exit_and_keyboard_interrupt_are_failed_attempts_and_actions_reply(
    tmp_path, devserver
):
    plugins = tmp_path / "plugins"
    write_plugin(plugins, "quitter", QUITTERS)
    config = tmp_path / "reviewd.toml"
    config.write_text("[routing]\nmax_attempts = 2\nretry_backoff = 0.05\n")
    env = service_env(devserver, FTRACK_EVENT_PLUGIN_PATH=str(plugins))
    daemon = DaemonProcess(tmp_path, ["--config", str(config)], env=env)
    try:
        daemon.wait_ready()
        wait_subscribed(devserver, "test.quit")
        devserver.emit("test.quit", {"n": 0, "raise": "exit"})
        devserver.emit("test.quit", {"n": 1, "raise": "interrupt"})
        for n in range(2, 6):
            devserver.emit("test.quit", {"n": n})
        wait_for(
            lambda: len(lines_of(plugins / "quitter.txt")) == 4,
            timeout=30,
            message="later events to be handled by the same lane",
        )
        # Dead letters are committed with the next shared commit: wait for the journal.
        wait_for(lambda: len(daemon.status()["dead_letters"]) == 2, timeout=30)
        status = daemon.status()
        assert status["plugins"]["quitter"]["dead_lettered"] == 2
        assert status["plugins"]["quitter"]["failed"] == 4  # two attempts each
        assert status["plugins"]["quitter"]["workers"] == 1
        errors = json.dumps(status["dead_letters"])
        assert "SystemExit" in errors and "KeyboardInterrupt" in errors
        assert daemon.proc.poll() is None
        assert daemon.get("/readyz")[0] == 200

        wait_subscribed(devserver, "ftrack.action.launch")
        reply = devserver.emit("ftrack.action.launch", {"actionIdentifier": "farm"}, wait_reply=20)
        assert reply is not None, "the web UI got no answer to the failed action"
        assert reply["data"]["success"] is False
        assert "the render farm is unreachable" in reply["data"]["message"]
        wait_for(lambda: len(daemon.status()["dead_letters"]) == 3)
        assert daemon.status()["plugins"]["quitter"]["failed"] == 5  # not retried
    finally:
        assert daemon.stop() == 0, daemon.output()


RECORDER = """
    import os

    OUT = os.environ["RECORD_OUT"]

    def register(session, **kwargs):
        def record(event):
            with open(OUT, "a") as handle:
                handle.write(str(event["data"]["n"]) + "\\n")
        session.event_hub.subscribe("topic=test.fill", record)
"""


@pytest.fixture
def small_tmpfs(tmp_path):
    """A real 3 MB tmpfs (root only), unmounted afterwards."""
    mount = tmp_path / "small"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {result.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory) -> str:
    """Write a file until the file system is full; return its path."""
    path = os.path.join(directory, "filler")
    with open(path, "wb") as handle:
        chunk = b"\0" * 65536
        try:
            while True:
                handle.write(chunk)
                handle.flush()
        except OSError:
            pass
    try:
        with open(path, "ab") as handle:  # the last partial chunk
            while True:
                handle.write(b"\0" * 512)
                handle.flush()
    except OSError:
        pass
    return path


def test_full_disk_mid_burst_keeps_every_event_and_readyz_says_why(
    tmp_path, devserver, small_tmpfs
):
    plugins = tmp_path / "plugins"
    write_plugin(plugins, "recorder", RECORDER)
    out = tmp_path / "handled.txt"
    journal = str(small_tmpfs / "journal.sqlite3")
    env = service_env(
        devserver,
        FTRACK_EVENT_PLUGIN_PATH=str(plugins),
        REVIEWD_JOURNAL=journal,
        RECORD_OUT=str(out),
    )
    daemon = DaemonProcess(tmp_path, [], env=env)
    total = 3000
    try:
        daemon.wait_ready()
        wait_subscribed(devserver, "test.fill")
        reasons_seen: list[str] = []
        filled = threading.Event()

        def burst():
            for n in range(total):
                if n == 500:
                    fill(small_tmpfs)
                    filled.set()
                devserver.emit("test.fill", {"n": n})

        emitter = threading.Thread(target=burst)
        emitter.start()
        filled.wait(60)

        def says_disk_full():
            reasons = readyz_reasons(daemon)
            reasons_seen.extend(reasons)
            return any(f"journal: no space left on device at {journal}" in r for r in reasons)

        wait_for(says_disk_full, timeout=60, message="/readyz to say the disk is full")
        emitter.join()
        os.remove(small_tmpfs / "filler")
        wait_for(
            lambda: daemon.get("/readyz")[0] == 200,
            timeout=60,
            message="readiness once space is back",
        )
        wait_for(
            lambda: len(set(lines_of(out))) == total,
            timeout=120,
            message="every event the hub delivered to be handled",
        )
        assert set(lines_of(out)) == {str(n) for n in range(total)}
        assert not [
            r for r in daemon.log_records() if r.get("event", "").startswith("event refused")
        ]
    finally:
        assert daemon.stop() == 0, daemon.output()


SILENT = """
    def register(session, **kwargs):
        session.event_hub.subscribe("topic=test.gone", lambda event: None)
"""


def test_journal_deleted_while_running_makes_the_daemon_not_ready_naming_it(tmp_path, devserver):
    plugins = tmp_path / "plugins"
    write_plugin(plugins, "silent", SILENT)
    journal = str(tmp_path / "state" / "journal.sqlite3")
    env = service_env(devserver, FTRACK_EVENT_PLUGIN_PATH=str(plugins), REVIEWD_JOURNAL=journal)
    daemon = DaemonProcess(tmp_path, [], env=env)
    try:
        daemon.wait_ready()
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(journal + suffix):
                os.remove(journal + suffix)
        reason = wait_for(
            lambda: [r for r in readyz_reasons(daemon) if journal in r],
            timeout=20,
            message="/readyz to name the deleted journal",
        )
        assert "was deleted while reviewd was running" in reason[0]
        assert daemon.get("/healthz")[0] == 200  # alive: it holds events in memory
    finally:
        daemon.stop()


def test_journal_emptied_while_running_makes_the_daemon_not_ready(tmp_path, devserver):
    plugins = tmp_path / "plugins"
    write_plugin(plugins, "silent", SILENT)
    journal = str(tmp_path / "state" / "journal.sqlite3")
    env = service_env(devserver, FTRACK_EVENT_PLUGIN_PATH=str(plugins), REVIEWD_JOURNAL=journal)
    daemon = DaemonProcess(tmp_path, [], env=env)
    try:
        daemon.wait_ready()
        os.truncate(journal, 0)
        reason = wait_for(
            lambda: [r for r in readyz_reasons(daemon) if journal in r],
            timeout=20,
            message="/readyz to name the emptied journal",
        )
        assert "was emptied" in reason[0]
    finally:
        daemon.stop()


def test_journal_corrupted_mid_file_at_start_exits_73_with_one_line(tmp_path, devserver):
    journal = str(tmp_path / "journal.sqlite3")
    store = SqliteJournal(journal)
    for n in range(3000):
        store.record(
            {"id": uuid.uuid4().hex, "topic": "t", "data": {"n": n, "p": "x" * 200}}, ["p"]
        )
    store.close()
    size = os.path.getsize(journal)
    with open(journal, "r+b") as handle:  # garbage over pages in the middle of the file
        handle.seek(size // 2 - (size // 2) % 4096)
        handle.write(os.urandom(8 * 4096))
    backup = tmp_path / "before.sqlite3"
    shutil.copy(journal, backup)
    env = service_env(devserver, REVIEWD_JOURNAL=journal)
    daemon = DaemonProcess(tmp_path, [], env=env)
    assert daemon.proc.wait(timeout=60) == 73, daemon.output()
    last = daemon.stderr_path.read_text().strip().splitlines()[-1]
    assert last.startswith("reviewd: ") and journal in last
    assert "is corrupt" in last and f"mv {journal} {journal}.corrupt" in last
    assert open(journal, "rb").read() == backup.read_bytes()  # left as it was for forensics
    with pytest.raises(sqlite3.DatabaseError):
        sqlite3.connect(journal).execute("PRAGMA integrity_check").fetchall()
