"""pytest plugin (loaded with ``-p conformance_report``): one JSON line per test outcome.

JUnit XML names tests by dotted class name, which cannot be mapped back to a node id
reliably (parametrised ids contain dots and spaces); the ratchet lists compare node ids,
so the outcome of every node id, and of every file that failed to import, is written to
``$CONFORMANCE_RESULTS`` as it happens.
"""

from __future__ import annotations

import json
import os

_PATH = os.environ.get("CONFORMANCE_RESULTS")


def _write(record: dict) -> None:
    if not _PATH:
        return
    with open(_PATH, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def _message(report) -> str:
    text = str(getattr(report, "longreprtext", "") or report.longrepr or "")
    lines = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
    lines = lines or text.strip().splitlines() or [""]
    return lines[-1][:300]


def pytest_runtest_logreport(report) -> None:
    if report.when == "call" or (report.when == "setup" and not report.passed):
        if report.when == "setup" and report.failed:
            outcome = "error"
        elif hasattr(report, "wasxfail"):
            outcome = "xfailed" if report.skipped else "xpassed"
        else:
            outcome = report.outcome
        _write(
            {
                "nodeid": report.nodeid,
                "outcome": outcome,
                "message": "" if report.passed else _message(report),
            }
        )
    elif report.when == "teardown" and report.failed:
        _write({"nodeid": report.nodeid, "outcome": "teardown-error", "message": _message(report)})


def pytest_collectreport(report) -> None:
    if report.failed:
        _write({"nodeid": report.nodeid, "outcome": "error", "message": _message(report)})
