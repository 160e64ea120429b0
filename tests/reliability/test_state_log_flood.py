"""While degraded, the daemon logs state changes, not ticks (issue 14, finding 9).

Before the fix the ``state`` line was logged every 250 ms while the hub was away (its
text holds a growing "(for 3.2s)"): 180 lines in 45 s.
"""

from __future__ import annotations

import json
import time

from reliability.processes import wait_until
from reviewd.daemon.supervisor import state_without_durations


def state_lines(daemon) -> list[str]:
    lines = []
    for line in daemon.log().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event") == "state":
            lines.append(record.get("state", ""))
    return lines


def test_durations_do_not_make_a_new_state():
    assert state_without_durations(
        "degraded: event hub not connected (for 1.2s)"
    ) == state_without_durations("degraded: event hub not connected (for 31.7s)")
    assert state_without_durations("degraded: a") != state_without_durations("degraded: b")


def test_hub_away_for_6s_logs_a_handful_of_state_lines(server_process, daemon_process):
    before = len(state_lines(daemon_process))
    server_process.kill()
    wait_until(lambda: daemon_process.get("/readyz")[0] == 503, 30, "the daemon to degrade")
    time.sleep(6)  # the fault's duration: the hub stays away this long
    during = state_lines(daemon_process)[before:]
    assert 1 <= len(during) <= 3, during  # ~24 ticks would have been ~24 lines
    server_process.start()
    wait_until(lambda: daemon_process.get("/readyz")[0] == 200, 30, "recovery")
    wait_until(lambda: state_lines(daemon_process)[-1:] == ["running"], 10, "the running line")
