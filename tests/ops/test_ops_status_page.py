"""The status page at ``/``, loaded by a real headless Chromium from a running daemon:
what it shows (readiness, hub, each plugin's figures and last error, dead letters, the
journal, the last hour's charts), that it refreshes itself, needs nothing from outside,
changes nothing and holds no secret.  The screenshot is kept for a person to look at."""

from __future__ import annotations

import html
import re
import shutil
import struct
import subprocess
import uuid

import pytest

from reviewd.daemon.status_page import History, chart, render
from tests.conftest import require
from tests.daemon.daemon_harness import REPO, DaemonProcess, service_env, wait_for, write_plugin

STEADY = """
    import time

    def register(session, **kwargs):
        session.event_hub.subscribe("topic=page.work", handle)

    def handle(event):
        time.sleep(0.02)
"""

FLAKY = """
    def register(session, **kwargs):
        session.event_hub.subscribe("topic=page.work", handle)

    def handle(event):
        raise ValueError(f"cannot file shot {event['data']['n']}")
"""

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium(tmp_path, *args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    require(binary is not None, "chromium is not installed (Debian package 'chromium')")
    profile = tmp_path / f"chromium-profile-{uuid.uuid4().hex[:8]}"
    return subprocess.run(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.mark.slow
def test_status_page_in_headless_chromium(tmp_path, devserver):
    plugins = tmp_path / "plugins"
    write_plugin(plugins, "steady", STEADY)
    write_plugin(plugins, "flaky", FLAKY)
    daemon = DaemonProcess(
        tmp_path,
        [],
        env=service_env(devserver, FTRACK_EVENT_PLUGIN_PATH=str(plugins), REVIEWD_MAX_ATTEMPTS="1"),
    )
    try:
        daemon.wait_ready(timeout=40)
        for n in range(12):
            devserver.emit("page.work", {"n": n})
        wait_for(
            lambda: (
                daemon.status()["plugins"]["flaky"].get("dead_lettered") == 12
                and daemon.status()["plugins"]["steady"].get("handled") == 12
            ),
            timeout=60,
            message="every event handled by steady and dead-lettered by flaky",
        )
        url = daemon.base + "/"
        dumped = chromium(tmp_path, "--dump-dom", url)
        assert dumped.returncode == 0, dumped.stderr[-2000:]
        dom = dumped.stdout
        shot = tmp_path / "status-page.png"
        taken = chromium(
            tmp_path, f"--screenshot={shot}", "--window-size=1280,1500", "--hide-scrollbars", url
        )
        assert taken.returncode == 0 and shot.exists(), taken.stderr[-2000:]
    finally:
        assert daemon.stop() == 0

    # Readiness: a failing plugin is not a reason (its failures are data), so READY.
    assert re.search(r'id="readiness"[^>]*>READY<', dom)
    assert re.search(r'id="hub-state"[^>]*>connected<', dom)

    def cell(plugin: str, field: str) -> str:
        row = re.search(rf'<tr data-plugin="{plugin}">(.*?)</tr>', dom, re.S).group(1)
        return html.unescape(
            re.search(rf'data-field="{field}"[^>]*>(.*?)</td>', row, re.S).group(1)
        )

    assert cell("steady", "handled") == "12" and cell("steady", "failed") == "0"
    assert cell("flaky", "failed") == "12" and cell("flaky", "dead") == "12"
    assert cell("steady", "queue") == "0" and cell("steady", "in_flight") == "0"
    assert re.fullmatch(r"\d+ ms", cell("steady", "latency"))
    assert int(cell("steady", "latency").split()[0]) >= 20  # it sleeps 20 ms per event
    assert cell("flaky", "last_error").startswith("ValueError: cannot file shot ")
    # Dead letters: twelve rows naming the plugin and the error.
    table = re.search(r'<table id="dead-letters">(.*?)</table>', dom, re.S).group(1)
    assert table.count("<tr>") == 13  # header + 12
    assert "flaky" in table and "page.work" in table
    # Journal size, and the charts of the last hour (events this minute, a latency point).
    assert re.search(r'id="journal-size">\d+(\.\d)? (B|KiB|MiB)<', dom)
    events = re.search(r'<svg id="chart-events".*?</svg>', dom, re.S).group(0)
    values = [float(v) for v in re.findall(r'class="bar"[^>]*data-value="([\d.]+)"', events)]
    assert len(values) == 60 and sum(values) >= 12
    latency = re.search(r'<svg id="chart-latency".*?</svg>', dom, re.S).group(0)
    assert "<polyline" in latency
    # Refreshes itself; loads nothing from outside; no form, button or script.
    assert re.search(r'<meta http-equiv="refresh" content="\d+"', dom)
    assert "default-src 'none'" in dom
    assert not re.search(r"<(script|form|button|input|link|img|iframe)\b", dom, re.I)
    assert not re.search(r'(src|href)="(https?:)?//', dom)
    assert devserver.api_key not in dom
    # A real rendering, kept for a person to look at.
    width, height = png_size(shot)
    assert (width, height) == (1280, 1500)
    assert shot.stat().st_size > 20_000  # a blank page compresses to a few KB
    kept = REPO / ".cache" / "status-page.png"
    kept.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, kept)


def test_status_page_answers_get_only(tmp_path, devserver):
    import urllib.error
    import urllib.request

    plugins = tmp_path / "plugins"
    write_plugin(plugins, "steady", STEADY)
    daemon = DaemonProcess(
        tmp_path, [], env=service_env(devserver, FTRACK_EVENT_PLUGIN_PATH=str(plugins))
    )
    try:
        daemon.wait_ready(timeout=40)
        code, body = daemon.get("/")
        assert code == 200 and body.startswith("<!DOCTYPE html>")
        request = urllib.request.Request(daemon.base + "/", data=b"x=1", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        assert refused.value.code in (404, 405, 501)
    finally:
        assert daemon.stop() == 0


def test_history_counts_events_per_minute_from_totals():
    history = History(clock=lambda: 0)
    base = 1_000_000 * 60.0
    history.record(0, 0.0, 0, now=base)  # minute 0: start
    history.record(5, 0.5, 5, now=base + 30)  # minute 0: 5 handled
    history.record(12, 2.6, 12, now=base + 70)  # minute 1: 7 more, 2.1 s over 7
    history.record(12, 2.6, 12, now=base + 190)  # minute 3: nothing (minute 2 missed)
    series = history.series(now=base + 190)
    assert len(series) == 60
    tail = series[-4:]
    assert [p["events"] for p in tail] == [5, 7, 0, 0]
    assert tail[0]["latency"] == pytest.approx(0.1)
    assert tail[1]["latency"] == pytest.approx(0.3)
    assert tail[2]["latency"] is None and tail[3]["latency"] is None


def test_history_keeps_one_hour_only():
    history = History()
    for minute in range(500):
        history.record(minute, 0.0, 0, now=minute * 60.0)
    assert len(history._minutes) == 61


def test_render_escapes_what_plugins_and_errors_say():
    status = {
        "ready": False,
        "reasons": ["plugin <b>x</b> failed"],
        "version": "1",
        "plugins": {
            "evil<script>": {
                "loaded": True,
                "handled": 1,
                "last_error": "<img src=x onerror=alert(1)>",
            }
        },
        "dead_letters": [],
        "journal": {},
        "hub": {},
        "server": {},
    }
    page = render(status, History().series(), {}).decode()
    assert "<script>" not in page and "<img" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert 'id="readiness" class="pill bad">NOT READY<' in page
    assert "<svg" in chart([{"events": 1.0, "latency": None}], "events", "t", "n", "c")
