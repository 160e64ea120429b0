"""``python -m reliability [--long] [--only NAME ...] [--report FILE]`` from the repo root.

Runs each scenario (short by default, long with ``--long``), prints a line per scenario
as it finishes and writes the Markdown report (``reliability-report.md``).  Exit status
1 when any scenario lost, duplicated or crashed.
"""

from __future__ import annotations

import argparse
import platform
import signal
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from reliability.catalogue import SCENARIOS
from reliability.outcome import Outcome

COLUMNS = (
    "scenario",
    "runs",
    "faults injected",
    "events sent",
    "journaled",
    "handled",
    "lost",
    "duplicates",
    "crashes",
    "longest recovery (s)",
    "time (s)",
)


def table(outcomes: list[Outcome]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for o in outcomes:
        cells = [
            o.name,
            o.runs,
            o.faults,
            o.sent,
            o.journaled,
            o.handled,
            o.lost,
            o.duplicates,
            o.crashes,
            f"{o.longest_recovery:.2f}",
            f"{o.seconds:.0f}",
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def report(outcomes: list[Outcome], long: bool, total: float) -> str:
    notes = [f"- **{o.name}**: {note}" for o in outcomes for note in o.notes]
    return "\n".join(
        [
            "# reviewd reliability report",
            "",
            f"Mode: {'long' if long else 'short'}; run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} "
            f"UTC on {platform.node()} ({platform.python_version()}); total {total:.0f} s.",
            "",
            "*journaled* counts the events the daemon's journal accepted; *lost* the journaled "
            "events the plugin never handled (must be 0).  Events sent while the daemon had no "
            "working event socket reach no subscriber (ftrack has no replay; plugins get "
            "`reviewd_hub_gap`) and show as sent minus journaled.  *longest recovery* is the "
            "longest time from the end of a fault to the next event handled.",
            "",
            table(outcomes),
            "",
            "## Notes",
            "",
            *(notes or ["- none"]),
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability")
    parser.add_argument("--long", action="store_true", help="run the long versions")
    parser.add_argument("--only", nargs="*", choices=sorted(SCENARIOS), help="these scenarios")
    parser.add_argument("--report", default="reliability-report.md", help="report file")
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so every scenario's finally-blocks stop its processes.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    names = args.only or list(SCENARIOS)
    outcomes: list[Outcome] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="reviewd-reliability-") as scratch:
        for name in names:
            begun = time.monotonic()
            try:
                outcome = SCENARIOS[name](Path(scratch) / name, args.long)
            except Exception as error:  # noqa: BLE001 - a broken scenario is reported
                outcome = Outcome(
                    name, crashes=1, notes=[f"scenario failed: {type(error).__name__}: {error}"]
                )
                traceback.print_exc()
            outcome.seconds = time.monotonic() - begun
            outcomes.append(outcome)
            sys.stdout.write(table([outcome]).splitlines()[-1] + "\n")
            sys.stdout.flush()
    text = report(outcomes, args.long, time.monotonic() - started)
    Path(args.report).write_text(text)
    sys.stdout.write(f"\n{table(outcomes)}\n\nreport written to {args.report}\n")
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
