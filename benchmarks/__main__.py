"""``python -m benchmarks``: run every ``scenario_*.py`` module's scenarios (stub; the
full runner with rounds, medians, ratios, JSON and chart follows)."""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
from pathlib import Path

from benchmarks._scenario import Scenario


def discover() -> list[Scenario]:
    """Every scenario of every ``benchmarks/scenario_*.py`` module, in module order."""
    found: list[Scenario] = []
    here = str(Path(__file__).resolve().parent)
    for module in sorted(pkgutil.iter_modules([here]), key=lambda m: m.name):
        if module.name.startswith("scenario_"):
            found.extend(importlib.import_module(f"benchmarks.{module.name}").SCENARIOS)
    return found


def main(argv: list[str] | None = None) -> int:
    quick = "--quick" in (argv if argv is not None else sys.argv[1:])
    results = {scenario.name: scenario.run(quick) for scenario in discover()}
    sys.stdout.write(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
