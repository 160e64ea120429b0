"""``python -m benchmarks``: every scenario, several rounds, medians and ratios.

Runs each ``benchmarks/scenario_*.py`` scenario for ``--rounds`` rounds (scenarios
interleaved round by round, and each side-by-side scenario alternating which client
goes first, so that the shared machine's drift hits both alike), then prints one table
of medians with the reviewd/ftrack_api ratio (>1 means reviewd is better, whatever the
unit), writes every round's figures to JSON and, with the ``bench`` extra
(matplotlib), a PNG chart of the ratios.

``--quick`` runs small sizes and two rounds: under two minutes on a quiet machine.
Figures, not tests: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib
import json
import pkgutil
import platform
import statistics
import sys
import time
from pathlib import Path

from benchmarks._scenario import Scenario

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def discover() -> list[Scenario]:
    """Every scenario of every ``benchmarks/scenario_*.py`` module, in module order."""
    found: list[Scenario] = []
    for module in sorted(pkgutil.iter_modules([str(HERE)]), key=lambda m: m.name):
        if module.name.startswith("scenario_"):
            found.extend(importlib.import_module(f"benchmarks.{module.name}").SCENARIOS)
    return found


def ratio(scenario: Scenario, medians: dict[str, float]) -> float | None:
    """How many times better reviewd is than ftrack_api on this scenario (None if the
    scenario has no ftrack_api side)."""
    ours, theirs = medians.get(scenario.headline), medians.get("ftrack_api")
    if not ours or not theirs:
        return None
    return ours / theirs if scenario.higher_is_better else theirs / ours


def run(scenarios: list[Scenario], rounds: int, quick: bool, log=sys.stderr.write) -> dict:
    samples: dict[str, list[dict[str, float]]] = {s.name: [] for s in scenarios}
    errors: dict[str, str] = {}
    for number in range(rounds):
        for scenario in scenarios:
            if scenario.name in errors:
                continue
            started = time.monotonic()
            try:
                figures = scenario.run(quick)
            except Exception as exc:  # noqa: BLE001 - one broken scenario is reported
                errors[scenario.name] = f"{type(exc).__name__}: {exc}"
                log(f"  {scenario.name}: FAILED {errors[scenario.name]}\n")
                continue
            samples[scenario.name].append(figures)
            log(
                f"  round {number + 1}/{rounds} {scenario.name}: "
                f"{time.monotonic() - started:.1f}s\n"
            )
    results = {}
    for scenario in scenarios:
        rows = samples[scenario.name]
        keys = sorted({k for row in rows for k in row})
        medians = {k: statistics.median([row[k] for row in rows if k in row]) for k in keys}
        results[scenario.name] = {
            "unit": scenario.unit,
            "description": scenario.description,
            "higher_is_better": scenario.higher_is_better,
            "medians": medians,
            "ratio": ratio(scenario, medians),
            "rounds": rows,
            "error": errors.get(scenario.name),
        }
    return results


def table(results: dict) -> str:
    lines = [f"{'scenario':20}{'unit':>10}{'reviewd':>13}{'ftrack_api':>13}{'ratio':>8}  other"]
    for name, result in results.items():
        medians = result["medians"]
        if result["error"]:
            lines.append(f"{name:20}{result['unit']:>10}  FAILED: {result['error'][:80]}")
            continue
        ours = medians.get("reviewd")
        theirs = medians.get("ftrack_api")
        other = ", ".join(
            f"{k}={v:,.1f}" for k, v in medians.items() if k not in ("reviewd", "ftrack_api")
        )
        lines.append(
            f"{name:20}{result['unit']:>10}"
            f"{_fmt(ours):>13}{_fmt(theirs):>13}"
            f"{_ratio(result['ratio']):>8}"
            f"  {other}"
        )
    return "\n".join(lines)


def _ratio(value: float | None) -> str:
    return f"{value:.2f}x" if value else "-"


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"


def chart(results: dict, path: Path) -> bool:
    """A bar chart of the ratios (reviewd vs ftrack_api); False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    named = [(n, r["ratio"]) for n, r in results.items() if r.get("ratio")]
    if not named:
        return False
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(named) + 1.5))
    names = [n for n, _ in named]
    values = [v for _, v in named]
    bars = ax.barh(names, values, color=["#2a7" if v >= 1 else "#c44" for v in values])
    ax.axvline(1.0, color="#333", linewidth=1)
    ax.bar_label(bars, labels=[f"{v:.2f}x" for v in values], padding=3)
    ax.set_xlabel("times better than ftrack-python-api 3.1.0 (median of rounds)")
    ax.invert_yaxis()
    ax.set_title("reviewd vs ftrack_api")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, two rounds")
    parser.add_argument("--rounds", type=int, help="rounds per scenario (default 2 quick, 3)")
    parser.add_argument("--only", default="*", help="scenario name pattern, e.g. 'daemon.*'")
    parser.add_argument("--json", default=str(HERE / "results.json"), help="JSON output")
    parser.add_argument(
        "--chart",
        default=str(ROOT / "docs" / "benchmarks.png"),
        help="PNG chart output (needs the 'bench' extra: matplotlib)",
    )
    options = parser.parse_args(argv)
    rounds = options.rounds or (2 if options.quick else 3)
    scenarios = [s for s in discover() if fnmatch.fnmatch(s.name, options.only)]
    started = time.monotonic()
    results = run(scenarios, rounds, options.quick)
    elapsed = time.monotonic() - started
    sys.stdout.write(table(results) + "\n")
    sys.stdout.write(f"{rounds} round(s), {elapsed:.0f}s, python {platform.python_version()}\n")
    document = {
        "quick": options.quick,
        "rounds": rounds,
        "seconds": elapsed,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "scenarios": results,
    }
    Path(options.json).write_text(json.dumps(document, indent=2) + "\n")
    if chart(results, Path(options.chart)):
        sys.stdout.write(f"chart: {options.chart}\n")
    return 1 if any(r["error"] for r in results.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
