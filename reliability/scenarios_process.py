"""Process faults: reviewd SIGKILLed at random moments; the wall clock jumping under
it; plugins that raise, hang, leak, spawn threads, exit or flood."""

from __future__ import annotations

import random
import time
from pathlib import Path

from reliability.outcome import Outcome, account, settle, time_to_next_delivery
from reliability.stream import running_stream, wait_flowing


def daemon_kill9(workdir: Path, long: bool) -> Outcome:
    """kill -9 of reviewd at random moments of a steady stream, restarted each time.

    Events published while it is down reach no subscriber (the ftrack protocol has no
    replay; plugins hear of the gap); what the journal accepted must all be handled.
    A handler that finished but whose completion the kill prevented from being recorded
    runs again (at-least-once): counted apart; *duplicates* counts only handlings of an
    event whose completion the journal had already recorded.
    """
    rng = random.Random(4)
    outcome = Outcome("reviewd kill -9 + restart")
    kills: list[tuple[set[str], int]] = []  # (done ids, handled lines) at each kill
    with running_stream(workdir, outcome) as stream:
        daemon = stream.daemon
        for _ in range(50 if long else 3):
            time.sleep(rng.uniform(0.05, 1.5))
            daemon.kill()
            kills.append((daemon.done_ids(), len(daemon.handled())))
            outcome.faults += 1
            started = time.monotonic()
            daemon.start()
            daemon.wait_ready()
            wait_flowing(daemon)
            outcome.recovered(time.monotonic() - started)
    handled = daemon.handled()
    repeated = {
        index
        for done, position in kills
        for index in range(position, len(handled))
        if handled[index] in done
    }
    after_completion = len(repeated)
    in_flight = outcome.duplicates - after_completion
    outcome.duplicates = after_completion
    outcome.notes.append(
        f"{in_flight} event(s) handled again after a kill interrupted them "
        "before their completion was recorded (at-least-once)"
    )
    return outcome


#: Loaded into the daemon through PYTHONPATH: the wall clock jumps an hour forward and
#: two back, again and again.  Everything that measures a duration must use the
#: monotonic clock and not notice; what uses the wall clock (timestamps) just shows it.
CLOCK_JUMPER = """
import threading
import time

_real_time = time.time
_offset = [0.0]


def _jumping_time():
    return _real_time() + _offset[0]


def _jump():
    steps = [3600.0, -7200.0, 86400.0, -86400.0, 0.0]
    n = 0
    while True:
        _real_sleep(0.7)
        _offset[0] = steps[n % len(steps)]
        n += 1


_real_sleep = time.sleep
time.time = _jumping_time
threading.Thread(target=_jump, daemon=True, name="clock-jumper").start()
"""


def clock_jumps(workdir: Path, long: bool) -> Outcome:
    outcome = Outcome("wall-clock jumps (+1h, -2h, +1d, -1d)")
    hook = workdir / "clockhook"
    hook.mkdir(parents=True, exist_ok=True)
    (hook / "sitecustomize.py").write_text(CLOCK_JUMPER)
    env = {"PYTHONPATH": str(hook), "REVIEWD_SOFT_TIMEOUT": "2", "REVIEWD_HARD_TIMEOUT": "5"}
    with running_stream(workdir, outcome, extra_env=env) as stream:
        deadline = time.monotonic() + (90 if long else 6)
        jumps = 0
        while time.monotonic() < deadline:
            outcome.recovered(time_to_next_delivery(stream.daemon, 30))
            time.sleep(0.7)
            jumps += 1
        status = stream.daemon.status()
        hub = status.get("hub", {})
        outcome.faults += jumps
        if hub.get("reconnects"):
            outcome.notes.append(f"{hub['reconnects']} spurious reconnect(s)")
        stuck = [name for name, p in status.get("plugins", {}).items() if p.get("stuck")]
        if stuck or stream.daemon.get("/readyz")[0] != 200:
            outcome.notes.append(f"not ready after clock jumps (stuck: {stuck})")
    return outcome


MISBEHAVING = {
    "raiser": """
def register(session, **kwargs):
    def handler(event):
        raise ValueError("this plugin always fails")
    session.event_hub.subscribe("topic=reliability.*", handler)
""",
    "hanger": """
import time

def register(session, **kwargs):
    def handler(event):
        time.sleep(30)
    session.event_hub.subscribe("topic=reliability.*", handler)
""",
    "leaker": """
HOARD = []

def register(session, **kwargs):
    def handler(event):
        if len(HOARD) < 200:
            HOARD.append(bytearray(256 * 1024))
    session.event_hub.subscribe("topic=reliability.*", handler)
""",
    "threader": """
import threading
import time

def register(session, **kwargs):
    def handler(event):
        threading.Thread(target=time.sleep, args=(2,)).start()
    session.event_hub.subscribe("topic=reliability.*", handler)
""",
    "exiter": """
import sys

def register(session, **kwargs):
    def handler(event):
        sys.exit(3)
    session.event_hub.subscribe("topic=reliability.*", handler)
""",
    "flooder": """
import ftrack_api

def register(session, **kwargs):
    def handler(event):
        for n in range(20):
            session.event_hub.publish(ftrack_api.event.base.Event("flood.noise", data={"n": n}))
    session.event_hub.subscribe("topic=reliability.*", handler)
""",
}


def misbehaving_plugins(workdir: Path, long: bool) -> Outcome:
    """Six misbehaving plugins beside the recorder: the recorder loses nothing."""
    outcome = Outcome("plugins raise/hang/leak/threads/exit/flood")
    env = {
        "REVIEWD_SOFT_TIMEOUT": "1",
        "REVIEWD_HARD_TIMEOUT": "3",
        "REVIEWD_MAX_ATTEMPTS": "2",
        "REVIEWD_RETRY_BACKOFF": "0.1",
        "REVIEWD_QUEUE_SIZE": "200",
    }
    with running_stream(workdir, outcome, plugins=MISBEHAVING, extra_env=env, rate=20) as stream:
        deadline = time.monotonic() + (120 if long else 8)
        while time.monotonic() < deadline:
            outcome.recovered(time_to_next_delivery(stream.daemon, 30))
            time.sleep(0.5)
        outcome.faults += len(MISBEHAVING)
        plugins = stream.daemon.status().get("plugins", {})
        outcome.notes.append(
            "failed handlings: "
            + ", ".join(
                f"{name} {plugins.get(name, {}).get('failed', 0)}" for name in sorted(MISBEHAVING)
            )
        )
    return outcome


__all__ = ["account", "settle", "daemon_kill9", "clock_jumps", "misbehaving_plugins"]
