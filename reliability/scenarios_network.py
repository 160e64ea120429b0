"""Network and server faults: the proxy's cuts, stalls, slow and half-open links on each
socket; the server killed and restarted; the server answering errors or never acking."""

from __future__ import annotations

import random
import time
from pathlib import Path

from reliability.outcome import Outcome, time_to_next_delivery
from reliability.processes import wait_until
from reliability.proxy import API, EVENT
from reliability.stream import QUERYING_RECORDER, running_stream

#: Daemon retry settings for API faults: several quick attempts, so a fault of a few
#: seconds is ridden out by retries, never dead-lettered.
API_RETRIES = {
    "REVIEWD_MAX_ATTEMPTS": "30",
    "REVIEWD_RETRY_BACKOFF": "0.2",
    "REVIEWD_RETRY_BACKOFF_MAX": "1",
}


def _hub_connected(daemon) -> bool:
    return bool(daemon.status().get("hub", {}).get("connected"))


def _inject(stream, kind: str, fault: str, rng: random.Random) -> None:
    proxy, daemon = stream.proxy, stream.daemon
    if fault == "cut":
        proxy.cut(kind)
    elif fault == "stall":
        proxy.stall(kind, rng.uniform(1.0, 3.0))
        time.sleep(3.0)  # the fault's own duration
    elif fault == "slow":
        proxy.slow(kind, 4000)
        time.sleep(2.0)
        proxy.slow(kind, None)
    elif fault == "half_open":
        proxy.half_open(kind)
        if kind == EVENT:  # only heartbeats can reveal it: wait for the daemon to notice
            try:
                wait_until(lambda: not _hub_connected(daemon), 30, "the half-open socket")
            except TimeoutError:
                pass
        else:
            time.sleep(3.0)
            proxy.cut(kind)  # a stuck request ends at its timeout; don't wait 60 s
        proxy.half_open(kind, False)


def _socket_scenario(name: str, kind: str, workdir: Path, long: bool, seed: int) -> Outcome:
    rng = random.Random(seed)
    outcome = Outcome(name)
    if long:
        plan = ["cut"] * 100 + ["stall", "slow", "half_open"] * 3
        rng.shuffle(plan)
    else:
        plan = ["cut", "stall", "slow", "half_open", "cut"]
    plugins = {"recorder": QUERYING_RECORDER} if kind == API else None
    with running_stream(
        workdir,
        outcome,
        proxy=True,
        plugins=plugins,
        extra_env=API_RETRIES if kind == API else None,
    ) as stream:
        for fault in plan:
            time.sleep(rng.uniform(0.1, 0.6))  # random moments in the steady stream
            _inject(stream, kind, fault, rng)
            outcome.recovered(time_to_next_delivery(stream.daemon, 90))
    return outcome


def event_socket_faults(workdir: Path, long: bool) -> Outcome:
    return _socket_scenario("proxy: event socket", EVENT, workdir, long, 1)


def api_socket_faults(workdir: Path, long: bool) -> Outcome:
    return _socket_scenario("proxy: API socket", API, workdir, long, 2)


def server_restarts(workdir: Path, long: bool) -> Outcome:
    """The server SIGKILLed and restarted under load."""
    rng = random.Random(3)
    outcome = Outcome("server kill -9 + restart")
    slowest = [0.0]
    with running_stream(workdir, outcome) as stream:
        for _ in range(50 if long else 2):
            time.sleep(rng.uniform(0.2, 1.0))
            stream.server.kill()
            outcome.faults += 1
            time.sleep(rng.uniform(0.5, 3.0))  # the outage
            stream.server.start()
            back = time.monotonic()
            wait_until(lambda: _hub_connected(stream.daemon), 60, "the daemon to reconnect", 0.02)
            reconnect = time.monotonic() - back
            outcome.recovered(reconnect + time_to_next_delivery(stream.daemon, 90))
            slowest[0] = max(slowest[0], reconnect)
    outcome.notes.append(f"slowest daemon reconnect after the server listened: {slowest[0]:.2f}s")
    return outcome


ERROR_PAGES = {
    "500 HTML": (
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/html\r\n"
        b"Content-Length: 46\r\nConnection: close\r\n\r\n"
        b"<html><body><h1>500 Oops</h1></body></html>\r\n"
    ),
    "502 HTML": (
        b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\n"
        b"Content-Length: 51\r\nConnection: close\r\n\r\n"
        b"<html><body><h1>502 Bad Gateway</h1></body></html>\r\n"
    ),
    "truncated JSON": (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b"Content-Length: 40\r\nConnection: close\r\n\r\n"
        b'[{"action": "query", "data": [{"__entit'
    ),
}


def server_errors(workdir: Path, long: bool) -> Outcome:
    """API answers that are error pages or truncated JSON; an event server that never
    acknowledges (nor hears heartbeats)."""
    outcome = Outcome("server errors / never acking")
    rounds = 5 if long else 1
    with running_stream(
        workdir, outcome, proxy=True, plugins={"recorder": QUERYING_RECORDER}, extra_env=API_RETRIES
    ) as stream:
        for _ in range(rounds):
            for page in ERROR_PAGES.values():
                stream.proxy.answer_api(page)  # counted by the proxy
                time.sleep(2.0 if long else 1.0)  # the fault: every handler's query fails
                stream.proxy.answer_api(None)
                outcome.recovered(time_to_next_delivery(stream.daemon, 90))
            stream.proxy.deafen(EVENT)
            try:
                wait_until(lambda: not _hub_connected(stream.daemon), 30, "the deaf server")
            except TimeoutError:
                outcome.notes.append("a deaf event server was not noticed within 30 s")
            stream.proxy.deafen(EVENT, False)
            outcome.recovered(time_to_next_delivery(stream.daemon, 90))
    return outcome


def server_sigstop(workdir: Path, long: bool) -> Outcome:
    """The server frozen (SIGSTOP) for 8 s (short) or 90 s (long): the daemon must report
    a hub gap at least as long as the freeze (it starts at the last frame heard)."""
    outcome = Outcome("server SIGSTOP (hub gap)")
    pause = 90.0 if long else 8.0
    with running_stream(workdir, outcome) as stream:
        stream.server.pause()
        outcome.faults += 1
        time.sleep(pause)  # the freeze itself
        stream.server.resume()
        resumed = time.monotonic()
        wait_until(
            lambda: stream.daemon.status().get("hub", {}).get("last_gap"), 60, "the gap report"
        )
        outcome.recovered(time.monotonic() - resumed + time_to_next_delivery(stream.daemon, 60))
        gap = stream.daemon.status()["hub"]["last_gap"]["seconds"]
        outcome.notes.append(f"SIGSTOP {pause:.0f}s reported as a gap of {gap:.1f}s")
        if gap < pause:
            outcome.crashes += 1  # a wrong gap is a failure of the scenario
            outcome.notes.append("gap shorter than the freeze")
    return outcome
