"""The status page at ``/``: what the daemon is doing, for a person with a browser.

Why a page when ``/metrics`` exists: many studios run no Prometheus, and the person who
gets the phone call ("the shot never went to Approved") needs to see, on the farm host's
port, whether the hub is connected, which plugin fails and why, what is dead-lettered,
and whether the last hour looked different from now.

What it is and is not:

- read-only: built from :func:`reviewd.daemon.report.status` (the same view as
  ``/status``) and a small in-memory :class:`History`; it has no forms, no buttons and
  answers GET only, so nothing on it can change the daemon;
- self-contained: inline CSS and inline SVG charts, no script, no external asset, so it
  works offline and behind any proxy; a ``Content-Security-Policy`` meta tag forbids
  loading anything else;
- refreshes itself every :data:`REFRESH_SECONDS` (``<meta http-equiv="refresh">``);
- no secrets: the status view never holds the API key, every value is HTML-escaped,
  and the finished page passes through :func:`~reviewd.api.exception.redact` again.

The last hour's charts (events handled per minute, mean handler time per minute) come
from :class:`History`, which the supervisor's main loop feeds with cumulative totals
about once a second; it keeps one entry per minute, so it never grows past an hour.
"""

from __future__ import annotations

import html
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from reviewd.api.exception import redact

REFRESH_SECONDS = 10
MINUTES = 60

#: Handler time per plugin: ``{plugin: (seconds_sum, count)}``.
Latency = Mapping[str, tuple[float, float]]


class History:
    """Cumulative totals at the end of each of the last :data:`MINUTES` minutes.

    Why cumulative totals and not per-minute counts: the sampler may run late, twice, or
    not at all for a while (a stalled main loop); differences of totals stay right
    whatever the sampling, and a missing minute simply shows as zero.
    """

    def __init__(self, clock: Any = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._minutes: OrderedDict[int, tuple[float, float, float]] = OrderedDict()

    def record(
        self, handled: float, seconds_sum: float, seconds_count: float, now: float | None = None
    ) -> None:
        """Note the totals now: deliveries handled, handler seconds and attempts."""
        minute = int((self._clock() if now is None else now) // 60)
        with self._lock:
            self._minutes[minute] = (handled, seconds_sum, seconds_count)
            self._minutes.move_to_end(minute)
            while len(self._minutes) > MINUTES + 1:
                self._minutes.popitem(last=False)

    def series(self, now: float | None = None) -> list[dict[str, float | None]]:
        """The last :data:`MINUTES` minutes, oldest first: ``{"minute": unix minute,
        "events": handled in it, "latency": mean handler seconds or None}``."""
        current = int((self._clock() if now is None else now) // 60)
        with self._lock:
            totals = dict(self._minutes)
        out = []
        previous = _last_before(totals, current - MINUTES + 1)
        for minute in range(current - MINUTES + 1, current + 1):
            entry = totals.get(minute)
            if entry is None or previous is None:
                out.append({"minute": minute, "events": 0.0, "latency": None})
            else:
                events = max(0.0, entry[0] - previous[0])
                count = entry[2] - previous[2]
                latency = (entry[1] - previous[1]) / count if count > 0 else None
                out.append({"minute": minute, "events": events, "latency": latency})
            if entry is not None:
                previous = entry
        return out


def _last_before(
    totals: Mapping[int, tuple[float, float, float]], minute: int
) -> tuple[float, float, float] | None:
    earlier = [m for m in totals if m < minute]
    return totals[max(earlier)] if earlier else (0.0, 0.0, 0.0)


def totals_of(status: Mapping[str, Any], latency: Latency) -> tuple[float, float, float]:
    """(handled, handler seconds, handler attempts) over all plugins, for :class:`History`."""
    handled = sum(float(p.get("handled", 0) or 0) for p in status.get("plugins", {}).values())
    seconds = sum(s for s, _ in latency.values())
    count = sum(c for _, c in latency.values())
    return handled, seconds, count


def handler_latency(histogram: Any) -> dict[str, tuple[float, float]]:
    """``{plugin: (seconds_sum, count)}`` from the ``reviewd_handler_duration_seconds``
    histogram (all topics of a plugin together)."""
    out: dict[str, list[float]] = {}
    for family in histogram.collect():
        for sample in family.samples:
            plugin = sample.labels.get("plugin")
            if plugin is None:
                continue
            slot = out.setdefault(plugin, [0.0, 0.0])
            if sample.name.endswith("_sum"):
                slot[0] += sample.value
            elif sample.name.endswith("_count"):
                slot[1] += sample.value
    return {plugin: (values[0], values[1]) for plugin, values in out.items()}


# ---------------------------------------------------------------------- rendering
def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _seconds(value: float | None) -> str:
    if value is None:
        return "–"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.2f} s"


def _bytes(value: Any) -> str:
    try:
        size = float(value)
    except (TypeError, ValueError):
        return "–"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s"


def chart(
    series: list[dict[str, float | None]], key: str, title: str, unit: str, chart_id: str
) -> str:
    """One small inline SVG chart of the last hour: bars for counts, a line for times."""
    width, height, pad = 360, 90, 4
    values = [point[key] for point in series]
    present = [v for v in values if v is not None]
    top = max(present) if present else 0.0
    scale = (height - 2 * pad) / top if top > 0 else 0.0
    step = (width - 2 * pad) / max(len(values), 1)
    parts = [
        f'<svg id="{chart_id}" class="chart" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{_e(title)}">',
        f'<rect x="0" y="0" width="{width}" height="{height}" class="frame"/>',
    ]
    if key == "events":
        for i, value in enumerate(values):
            h = (value or 0.0) * scale
            x = pad + i * step
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{height - pad - h:.1f}" '
                f'width="{max(step - 1, 1):.1f}" height="{h:.1f}" '
                f'data-value="{value or 0:g}"/>'
            )
    else:
        points = [
            f"{pad + (i + 0.5) * step:.1f},{height - pad - v * scale:.1f}"
            for i, v in enumerate(values)
            if v is not None
        ]
        if points:
            parts.append(f'<polyline class="line" points="{" ".join(points)}"/>')
            for point in points:
                cx, cy = point.split(",")
                parts.append(f'<circle class="dot" cx="{cx}" cy="{cy}" r="2"/>')
    parts.append("</svg>")
    peak = (_seconds(top) if unit == "s" else f"{top:g}") if present else "no data yet"
    return (
        f'<figure><figcaption>{_e(title)} <span class="muted">(last hour, peak '
        f"{_e(peak)})</span></figcaption>{''.join(parts)}"
        '<div class="axis"><span>60 min ago</span><span>now</span></div></figure>'
    )


def _plugin_rows(status: Mapping[str, Any], latency: Latency) -> str:
    rows = []
    for name, info in sorted(status.get("plugins", {}).items()):
        seconds, count = latency.get(name, (0.0, 0.0))
        mean = seconds / count if count else None
        if not info.get("loaded"):
            state, css = "failed to load", "bad"
        elif info.get("stuck"):
            state, css = "stuck", "bad"
        else:
            state, css = "running", "ok"
        error = info.get("last_error") or info.get("error") or ""
        rows.append(
            f'<tr data-plugin="{_e(name)}"><td class="name">{_e(name)}</td>'
            f'<td><span class="pill {css}">{_e(state)}</span></td>'
            f'<td class="num" data-field="queue">{_e(info.get("queue_depth", 0))}</td>'
            f'<td class="num" data-field="in_flight">{_e(info.get("in_flight", 0))}</td>'
            f'<td class="num" data-field="handled">{_e(info.get("handled", 0))}</td>'
            f'<td class="num" data-field="failed">{_e(info.get("failed", 0))}</td>'
            f'<td class="num" data-field="dead">{_e(info.get("dead_lettered", 0))}</td>'
            f'<td class="num" data-field="latency">{_e(_seconds(mean))}</td>'
            f'<td class="error" data-field="last_error">{_e(error)}</td></tr>'
        )
    if not rows:
        rows.append('<tr><td colspan="9" class="muted">no plugins</td></tr>')
    return "".join(rows)


def _dead_letter_rows(status: Mapping[str, Any]) -> str:
    rows = []
    for dead in reversed(status.get("dead_letters", [])):
        error = dead.get("error")
        error = error[-1] if isinstance(error, list) and error else (error or "")
        rows.append(
            f'<tr><td class="mono">{_e(dead.get("event_id"))}</td>'
            f"<td>{_e(dead.get('plugin'))}</td><td>{_e(dead.get('topic'))}</td>"
            f'<td class="num">{_e(dead.get("attempts"))}</td>'
            f'<td class="error">{_e(error)}</td></tr>'
        )
    if not rows:
        return '<p class="muted" id="no-dead-letters">No dead letters.</p>'
    return (
        '<table id="dead-letters"><thead><tr><th>event</th><th>plugin</th><th>topic</th>'
        "<th>attempts</th><th>error</th></tr></thead><tbody>"
        + "".join(rows)
        + '</tbody></table><p class="muted">Retry with <code>reviewd journal retry'
        "</code>, after fixing the cause.</p>"
    )


STYLE = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f5f6f8;
color:#1d2330}
header{background:#1d2330;color:#fff;padding:12px 20px;display:flex;gap:16px;align-items:center}
header h1{font-size:18px;margin:0}main{padding:16px 20px;display:grid;gap:16px}
section{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:12px 16px}
h2{font-size:15px;margin:0 0 8px}table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eef0f4;vertical-align:top}
th{font-weight:600;color:#5a6475;font-size:12px}.num{text-align:right;font-variant-numeric:tabular-nums}
.pill{display:inline-block;padding:1px 8px;border-radius:9px;font-size:12px;font-weight:600}
.ok{background:#dcf5e3;color:#17663a}.bad{background:#fde2e1;color:#a3211b}
.warn{background:#fff1cc;color:#7a5500}.muted{color:#7a8394}.error{color:#a3211b;max-width:420px}
.mono,code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
.facts{display:flex;flex-wrap:wrap;gap:6px 24px}.facts div span{color:#5a6475}
.charts{display:flex;flex-wrap:wrap;gap:24px}figure{margin:0}figcaption{font-weight:600;margin-bottom:4px}
.chart .frame{fill:#fafbfc;stroke:#dde1e8}.chart .bar{fill:#3b7ddd}
.chart .line{fill:none;stroke:#d9822b;stroke-width:2}.chart .dot{fill:#d9822b}
.axis{display:flex;justify-content:space-between;color:#7a8394;font-size:11px;width:360px}
ul.reasons{margin:4px 0 0;padding-left:20px;color:#a3211b}
"""


def render(
    status: Mapping[str, Any], series: list[dict[str, float | None]], latency: Latency
) -> bytes:
    """The whole page, as UTF-8 bytes."""
    ready = bool(status.get("ready"))
    hub = status.get("hub", {})
    server = status.get("server", {})
    journal = status.get("journal", {})
    reasons = "".join(f"<li>{_e(r)}</li>" for r in status.get("reasons", []))
    connected = bool(hub.get("connected"))
    last_gap = hub.get("last_gap")
    gap_text = (
        "none"
        if not hub.get("gaps")
        else f"{hub.get('gaps')} ({_e(_seconds(hub.get('gap_seconds')))} in all)"
    )
    problems = "".join(f"<li>{_e(p)}</li>" for p in status.get("plugin_problems", []))
    counts = ", ".join(
        f"{_e(state)} {_e(journal.get(state, 0))}"
        for state in ("pending", "done", "dead")
        if state in journal
    )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>reviewd {"ready" if ready else "NOT READY"} – {_e(server.get("url"))}</title>
<style>{STYLE}</style></head>
<body>
<header><h1>reviewd {_e(status.get("version"))}</h1>
<span id="readiness" class="pill {"ok" if ready else "bad"}">{"READY" if ready else "NOT READY"}</span>
<span>{_e(status.get("state"))}</span>
<span class="muted">pid {_e(status.get("pid"))}, up {_e(_duration(status.get("uptime_seconds", 0)))}</span></header>
<main>
{f'<section id="reasons"><h2>Why not ready</h2><ul class="reasons">{reasons}</ul></section>' if reasons else ""}
<section id="hub"><h2>Server and event hub</h2><div class="facts">
<div><span>server</span> {_e(server.get("url"))}{" (embedded demo)" if server.get("embedded") else ""}</div>
<div><span>user</span> {_e(server.get("user"))}</div>
<div><span>hub</span> <span id="hub-state" class="pill {"ok" if connected else "bad"}">{"connected" if connected else "DISCONNECTED"}</span></div>
<div><span>reconnects</span> <b id="hub-reconnects">{_e(hub.get("reconnects", 0))}</b></div>
<div><span>gaps</span> <b id="hub-gaps">{gap_text}</b></div>
<div><span>last gap</span> {_e(last_gap) if last_gap else "–"}</div>
</div></section>
<section id="charts"><h2>Last hour</h2><div class="charts">
{chart(series, "events", "Deliveries handled per minute", "n", "chart-events")}
{chart(series, "latency", "Mean handler time per minute", "s", "chart-latency")}
</div></section>
<section id="plugins"><h2>Plugins</h2>
<table><thead><tr><th>plugin</th><th>state</th><th class="num">queue</th>
<th class="num">in flight</th><th class="num">handled</th><th class="num">failures</th>
<th class="num">dead letters</th><th class="num">mean time</th><th>last error</th></tr></thead>
<tbody>{_plugin_rows(status, latency)}</tbody></table>
{f'<ul class="reasons">{problems}</ul>' if problems else ""}</section>
<section id="dead"><h2>Dead letters</h2>{_dead_letter_rows(status)}</section>
<section id="journal"><h2>Journal</h2><div class="facts">
<div><span>path</span> <span class="mono">{_e(journal.get("path", journal.get("error", "–")))}</span></div>
<div><span>size</span> <b id="journal-size">{_e(_bytes(journal.get("size_bytes")))}</b></div>
<div><span>deliveries</span> {counts or "–"}</div>
</div></section>
<p class="muted">Read-only; refreshes every {REFRESH_SECONDS} s. Machine-readable:
<code>/status</code>, <code>/metrics</code>, <code>/readyz</code>, <code>/healthz</code>.</p>
</main></body></html>
"""
    return redact(page).encode("utf-8")
