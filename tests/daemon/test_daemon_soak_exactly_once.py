"""Exactly once under load (issue 13, acceptance 1): a steady 200 events/s and a burst,
each to two plugins that record every event id with fsync; every (event, plugin) must
be handled exactly once.  Short in CI (20 s; 10,000 events); the full length
(5 minutes; 100,000 events) with ``REVIEWD_SOAK=1``::

    REVIEWD_SOAK=1 .venv/bin/python -m pytest -m soak -q tests/daemon/test_daemon_soak_exactly_once.py
"""

from __future__ import annotations

import asyncio
import collections
import os
import time

import pytest

from .daemon_harness import DaemonProcess, service_env, wait_for, write_plugin
from .test_daemon_acceptance_start import wait_subscribed

LONG = os.environ.get("REVIEWD_SOAK") == "1"

RECORDER = """
    import os

    OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "{name}.ids")
    handle = open(OUT, "a")

    def register(session, **kwargs):
        def record(event):
            handle.write(str(event["data"]["n"]) + "\\n")
            handle.flush()
            os.fsync(handle.fileno())
        session.event_hub.subscribe("topic=soak.*", record)
"""


def recorded(plugins, name: str) -> list[str]:
    try:
        return (plugins / f"{name}.ids").read_text().split()
    except FileNotFoundError:
        return []


def start(tmp_path, devserver):
    plugins = tmp_path / "plugins"
    for name in ("alpha", "beta"):
        write_plugin(plugins, name, RECORDER.replace("{name}", name))
    env = service_env(devserver, FTRACK_EVENT_PLUGIN_PATH=str(plugins), REVIEWD_LOG_LEVEL="warning")
    daemon = DaemonProcess(tmp_path, [], env=env)
    daemon.wait_ready()
    wait_subscribed(devserver, "soak.")
    return daemon, plugins


def publish(devserver, total: int, rate: float | None) -> None:
    """*total* events from the server's own loop, paced at *rate* per second (None:
    as fast as the connection takes them)."""
    events = devserver.events
    source = {"id": "soak-source", "user": {"username": "soak"}}

    async def run() -> None:
        begin = time.monotonic()
        for n in range(total):
            if rate is not None:
                delay = begin + n / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            elif n % 500 == 0:
                while any(c.outbox.qsize() > 2000 for c in events._open_connections()):
                    await asyncio.sleep(0.001)
            await events.publish({"topic": "soak.event", "data": {"n": n}, "source": source})

    asyncio.run_coroutine_threadsafe(run(), events.loop).result(3600)


def assert_exactly_once(plugins, total: int) -> None:
    expected = {str(n) for n in range(total)}
    for name in ("alpha", "beta"):
        ids = recorded(plugins, name)
        counts = collections.Counter(ids)
        twice = {i: c for i, c in counts.items() if c > 1}
        assert twice == {}, f"{name} handled {len(twice)} event(s) more than once"
        assert set(ids) == expected, f"{name} missed {len(expected - set(ids))} event(s)"


@pytest.mark.soak
@pytest.mark.timeout(2400)
def test_steady_200_per_second_two_plugins_exactly_once(tmp_path, devserver):
    seconds = 300 if LONG else 20
    total = 200 * seconds
    daemon, plugins = start(tmp_path, devserver)
    try:
        publish(devserver, total, rate=200)
        wait_for(
            lambda: min(len(recorded(plugins, "alpha")), len(recorded(plugins, "beta"))) >= total,
            timeout=120,
            message="both plugins to record every event",
        )
        assert_exactly_once(plugins, total)
        # Done outcomes are group-committed shortly after the handlers return: wait for the
        # journal to agree, then check nothing was dead-lettered.
        status = wait_for(
            lambda: (s := daemon.status())["journal"]["pending"] == 0 and s,
            timeout=30,
            message="the journal to record every delivery as done",
        )
        assert status["journal"]["dead"] == 0
    finally:
        assert daemon.stop() == 0, daemon.output()[-3000:]


@pytest.mark.soak
@pytest.mark.timeout(2400)
def test_burst_to_two_plugins_exactly_once(tmp_path, devserver):
    total = 100_000 if LONG else 10_000
    daemon, plugins = start(tmp_path, devserver)
    try:
        publish(devserver, total, rate=None)
        wait_for(
            lambda: min(len(recorded(plugins, "alpha")), len(recorded(plugins, "beta"))) >= total,
            timeout=1800 if LONG else 300,
            message="both plugins to record every event",
        )
        assert_exactly_once(plugins, total)
    finally:
        assert daemon.stop() == 0, daemon.output()[-3000:]
