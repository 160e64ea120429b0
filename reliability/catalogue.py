"""Every scenario of the suite, in report order."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from reliability import scenarios_input, scenarios_network, scenarios_process
from reliability.outcome import Outcome

Scenario = Callable[[Path, bool], Outcome]

SCENARIOS: dict[str, Scenario] = {
    "event-socket": scenarios_network.event_socket_faults,
    "api-socket": scenarios_network.api_socket_faults,
    "server-restart": scenarios_network.server_restarts,
    "server-errors": scenarios_network.server_errors,
    "server-sigstop": scenarios_network.server_sigstop,
    "daemon-kill9": scenarios_process.daemon_kill9,
    "clock-jumps": scenarios_process.clock_jumps,
    "plugins": scenarios_process.misbehaving_plugins,
    "http-flood": scenarios_input.http_flood,
    "fuzz": scenarios_input.fuzz_parsers,
    "hostile-events": scenarios_input.hostile_events,
}
