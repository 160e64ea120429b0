"""The supervisor's helpers on their own: session opening, hub link, signal requests.

The whole daemon is exercised as a real process elsewhere in this folder; these tests
pin the small modules' own promises, in-process, against a real embedded server and a
real refused port.
"""

from __future__ import annotations

import pytest

from reviewd.daemon.config import Config, ConfigError
from reviewd.daemon.hub_link import HubLink
from reviewd.daemon.metrics import Metrics
from reviewd.daemon.session_open import open_session
from reviewd.daemon.signals import SignalRequests, StartupAborted
from tests.support import free_port


def sample(metrics: Metrics, name: str, **labels) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_open_session_retries_an_unreachable_server_until_stopped():
    config = Config(
        server_url=f"http://127.0.0.1:{free_port()}",
        api_user="u",
        api_key="k",
        connect_backoff_max=0.01,
    )
    metrics, signals = Metrics(), SignalRequests()
    states: list[str] = []
    errors: list[str] = []

    def failed(error: str) -> None:
        errors.append(error)
        if len(errors) == 3:
            signals.request_stop()

    with pytest.raises(StartupAborted):
        open_session(config, metrics, signals, on_attempt=states.append, on_failure=failed)
    assert states == [f"connecting to {config.server_url} (attempt {n})" for n in (1, 2, 3)]
    assert len(errors) == 3 and all(errors)
    assert sample(metrics, "reviewd_session_connect_attempts_total", outcome="failed") == 3


def test_open_session_returns_a_session_and_refused_credentials_are_config_errors(devserver):
    metrics, signals = Metrics(), SignalRequests()
    good = Config(server_url=devserver.url, api_user=devserver.api_user, api_key=devserver.api_key)
    session = open_session(
        good, metrics, signals, on_attempt=lambda _s: None, on_failure=lambda _e: None
    )
    try:
        assert session.server_version
        assert sample(metrics, "reviewd_session_connect_attempts_total", outcome="ok") == 1
    finally:
        session.close()
    bad = Config(server_url=devserver.url, api_user=devserver.api_user, api_key="wrong-key")
    with pytest.raises(ConfigError) as raised:
        open_session(bad, metrics, signals, on_attempt=lambda _s: None, on_failure=lambda _e: None)
    assert "server.api_key" in str(raised.value) and "wrong-key" not in str(raised.value)
    assert sample(metrics, "reviewd_session_connect_attempts_total", outcome="refused") == 1


def test_open_session_gives_up_at_once_when_already_stopped():
    signals = SignalRequests()
    signals.request_stop()
    attempts: list[str] = []
    with pytest.raises(StartupAborted):
        open_session(
            Config(server_url="http://127.0.0.1:1", api_user="u", api_key="k"),
            Metrics(),
            signals,
            on_attempt=attempts.append,
            on_failure=lambda _e: None,
        )
    assert attempts == []


def test_hub_link_counts_reconnects_and_gaps_only_after_a_first_connection():
    metrics = Metrics()
    link = HubLink(metrics)
    link.on_disconnected()  # never connected yet: not a gap
    link.on_connected()
    assert link.connected and link.reconnects == 0 and list(link.pending_gaps()) == []

    link.on_disconnected()
    started = link.disconnected_at
    link.on_disconnected()  # a second report does not move the gap's start
    assert not link.connected and link.disconnected_at == started
    link.on_connected()
    gaps = list(link.pending_gaps())
    assert link.reconnects == 1 and len(gaps) == 1 and gaps[0][0] == started
    assert link.disconnected_at is None and list(link.pending_gaps()) == []

    gap_start, gap_end = link.record_gap(*gaps[0])
    assert gap_start <= gap_end and link.gap_count == 1
    assert link.last_gap is not None and link.last_gap["start"] == gap_start.isoformat()
    assert sample(metrics, "reviewd_hub_gaps_total") == 1
    assert sample(metrics, "reviewd_hub_reconnects_total") == 1


def test_signal_requests_take_a_reload_once_and_wake_the_loop():
    signals = SignalRequests()
    assert not signals.take_reload()
    signals._on_hup(1, None)
    assert signals.take_reload() and not signals.take_reload()
    signals.check_stop()  # not stopping: no exception
    signals.request_stop()
    with pytest.raises(StartupAborted):
        signals.check_stop()
    with pytest.raises(StartupAborted):
        signals.wait_or_abort(5.0)
    signals.sleep(5.0)  # woken already: returns at once
