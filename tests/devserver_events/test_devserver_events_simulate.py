"""Acceptance 5: simulated production activity flows as ``ftrack.update`` events, both
from the Python ``Simulator`` and from ``reviewd devserver --seed demo --simulate 2``."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading

import pytest

from reviewd.devserver.simulate import Simulator
from tests.devserver_events.devserver_events_support import RawClient, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_each_kind_of_change_produces_an_update_through_the_api_path(devserver):
    simulator = Simulator(devserver, rate=1.0, seed=7)
    with RawClient(devserver) as listener:
        listener.subscribe("topic=ftrack.update")
        for kind in Simulator.KINDS:
            assert simulator.step(kind) == kind, simulator.last_error
        wait_until(lambda: len(listener.events()) >= 4, message="four ftrack.update events")
        events = listener.events()
    assert simulator.errors == 0
    assert dict(simulator.counts) == {kind: 1 for kind in Simulator.KINDS}
    changed_types = [{e["entity_type"] for e in event["data"]["entities"]} for event in events]
    assert {"Task"} in changed_types
    assert any("AssetVersion" in types for types in changed_types)
    assert any("ReviewSessionObjectStatus" in types for types in changed_types)
    assert {"Note"} in changed_types
    usernames = {event["source"]["user"]["username"] for event in events}
    assert usernames and all(usernames)
    # Every change was a batch on the same path as POST /api (which records them).
    writes = [
        batch
        for batch in devserver.batches
        if any(op.get("action") in ("create", "update") for op in batch)
    ]
    assert len(writes) == 4


def test_running_simulator_produces_a_stream_and_stops(devserver):
    with RawClient(devserver) as listener:
        listener.subscribe("topic=ftrack.update")
        simulator = Simulator(devserver, rate=20.0, seed=1).start()
        try:
            wait_until(lambda: len(listener.events()) >= 5, 30, message="five updates")
        finally:
            simulator.stop()
        assert not simulator.running
        assert simulator.errors == 0, simulator.last_error
        assert sum(simulator.counts.values()) >= 5


def test_rate_must_be_positive(devserver):
    for rate in (0, -1, None):
        with pytest.raises(ValueError):
            Simulator(devserver, rate)


class ServerProcess:
    """`reviewd devserver ...` as a real process; reads its URL, user and key from stdout."""

    def __init__(self, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FTRACK_")}
        env["PYTHONUNBUFFERED"] = "1"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "reviewd.daemon.cli", "devserver", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.output.append(line)

    def text(self) -> str:
        return "".join(self.output)

    def settings(self):
        text = self.text()
        url = re.search(r"(http://127\.0\.0\.1:\d+)", text)
        user = re.search(r"FTRACK_API_USER\W+([\w.@-]+)", text) or re.search(
            r"user\W+([\w.@-]+)", text, re.I
        )
        key = re.search(r"FTRACK_API_KEY\W+([\w-]+)", text) or re.search(
            r"key\W+([\w-]+)", text, re.I
        )
        if url and user and key:
            return url.group(1), user.group(1), key.group(1)
        return None


def test_devserver_command_with_simulate_emits_updates():
    server = ServerProcess("--seed", "demo", "--simulate", "2", "--port", "0")
    try:
        found = wait_until(
            lambda: server.process.poll() is not None or server.settings(),
            60,
            message="the devserver to print its URL, user and key",
        )
        assert server.process.poll() is None, server.text()
        url, user, key = found

        class Target:  # what RawClient needs to know about a server
            pass

        target = Target()
        target.url, target.api_user, target.api_key = url, user, key
        with RawClient(target) as listener:
            listener.subscribe("topic=ftrack.update")
            wait_until(
                lambda: len(listener.events()) >= 3,
                30,
                message="three simulated ftrack.update events",
            )
            for event in listener.events():
                assert event["data"]["entities"], event
                assert event["source"]["user"]["username"]
    finally:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            raise
    assert server.process.returncode in (0, -signal.SIGTERM), server.text()
