"""Run ftrack's client test suite against the embedded server and summarise the outcome.

    python -m tests.conformance.run --mode official            # the official client 3.1.0
    python -m tests.conformance.run --mode reviewd             # reviewd as ``ftrack_api``
    python -m tests.conformance.run --mode official --schema ../shared/fixtures/ftrack_schemas.json
    python -m tests.conformance.run --mode official --table    # print the last run's table

Each run starts an in-process ``DevServer`` (demo seed) on a free port, registers an
API key for the suite's user ``jenkins``, and runs
``../shared/conformance/ftrack-python-api/test/unit`` in a subprocess with the
conformance plugins (``plugins/``): ``conformance_seed`` creates the data the suite's
conftest hard-codes, ``conformance_report`` records every node id's outcome, and in
``reviewd`` mode ``conformance_reviewd`` activates the compat import hook first.

Outputs go to ``.cache/conformance/<mode>[-<schema>]/``: ``junit.xml``,
``results.jsonl`` and ``summary.md`` (the table). The ratchet lists beside this file
(``must_pass_<mode>.txt``) name node ids that must keep passing; ``excluded.txt`` names
those out of scope for an offline server, with the reason.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PLUGINS = HERE / "plugins"
SUITE = Path(
    os.environ.get("REVIEWD_CONFORMANCE_SUITE")
    or (ROOT.parent / "shared" / "conformance" / "ftrack-python-api")
)
OUTPUT = ROOT / ".cache" / "conformance"
OFFICIAL_VENV = ROOT / ".cache" / "conformance-venv"
REVIEWD_DEPS = ROOT / ".cache" / "conformance-deps"
# The suite's own test dependencies (its setup.py) plus clique, which its conftest imports.
SUITE_DEPS = ["pytest-mock", "mock", "flaky", "termcolor<2", "clique"]
OFFICIAL_REQUIREMENTS = ["ftrack-python-api==3.1.0", "pytest", *SUITE_DEPS]
HEARTBEAT_TEST = "test/unit/event/test_hub.py::test_server_heartbeat_response"
MODES = ("official", "reviewd")
OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")


# ---------------------------------------------------------------------- environments
def _pip(python: Path | str, *args: str) -> None:
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args],
        check=True,
    )


def _has_ndbm_or_gdbm(python: str) -> bool:
    probe = "import importlib.util, sys; sys.exit(not any(importlib.util.find_spec(m) for m in ('_gdbm', '_dbm')))"
    try:
        return subprocess.run([python, "-c", probe], check=False).returncode == 0
    except OSError:
        return False


def base_python() -> str:
    """The interpreter to build the conformance venv from.

    The suite's file-cache tests remove the dbm file by its exact name, which only a
    gdbm/ndbm-backed ``dbm`` creates (``dbm.dumb`` writes ``.dat``/``.dir``).  An
    interpreter built without them (pyenv builds often are) is passed over for one
    with them: ``$REVIEWD_CONFORMANCE_PYTHON``, this one, or the system ``python3``
    (Debian: ``apt-get install python3-gdbm``, done by ``.ci/run``).
    """
    candidates = [os.environ.get("REVIEWD_CONFORMANCE_PYTHON"), sys.executable, "/usr/bin/python3"]
    for candidate in filter(None, candidates):
        if _has_ndbm_or_gdbm(candidate):
            return candidate
    return sys.executable


def official_python() -> Path:
    """The interpreter of a cached venv with ftrack-python-api 3.1.0 and the suite's deps.

    Separate from ``tests/peer.py``'s venv so the peer tests never see pytest plugins.
    """
    python = OFFICIAL_VENV / "bin" / "python"
    marker = OFFICIAL_VENV / ".installed"
    base = base_python()
    wanted = "\n".join([*OFFICIAL_REQUIREMENTS, f"base={base}"])
    if marker.exists() and marker.read_text() == wanted:
        return python
    subprocess.run([base, "-m", "venv", "--clear", str(OFFICIAL_VENV)], check=True)
    _pip(python, *OFFICIAL_REQUIREMENTS)
    marker.write_text(wanted)
    return python


def reviewd_deps() -> Path:
    """A folder with the suite's test deps, put on ``PYTHONPATH`` beside reviewd's venv.

    Installed with ``--no-deps`` into a target folder, so reviewd's own venv (and its
    pytest) stays untouched and no real ``ftrack_api`` can sneak in.
    """
    marker = REVIEWD_DEPS / ".installed"
    wanted = "\n".join(SUITE_DEPS)
    if marker.exists() and marker.read_text() == wanted:
        return REVIEWD_DEPS
    REVIEWD_DEPS.mkdir(parents=True, exist_ok=True)
    _pip(sys.executable, "--no-deps", "--upgrade", "--target", str(REVIEWD_DEPS), *SUITE_DEPS)
    marker.write_text(wanted)
    return REVIEWD_DEPS


# ---------------------------------------------------------------------- results
@dataclass
class RunResult:
    """Outcome of one suite run: node id → outcome, plus messages for the table."""

    mode: str
    schema: str
    outcomes: dict[str, str] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    returncode: int = 0
    output_dir: Path = OUTPUT

    @property
    def counts(self) -> collections.Counter:
        return collections.Counter(self.outcomes.values())

    @property
    def total(self) -> int:
        return len(self.outcomes)

    def passed(self) -> set[str]:
        return {nodeid for nodeid, outcome in self.outcomes.items() if outcome == "passed"}


def read_results(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Collapse ``results.jsonl``: a node's worst outcome wins (a teardown error counts)."""
    outcomes: dict[str, str] = {}
    messages: dict[str, str] = {}
    if not path.exists():
        return outcomes, messages
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        nodeid, outcome = record["nodeid"], record["outcome"]
        if outcome == "teardown-error":
            if outcomes.get(nodeid) == "passed":
                outcomes[nodeid] = "error"
                messages[nodeid] = "teardown: " + record.get("message", "")
            continue
        outcomes[nodeid] = outcome
        if record.get("message"):
            messages[nodeid] = record["message"]
    return outcomes, messages


def read_list(path: Path) -> dict[str, str]:
    """A ratchet/exclusion list: ``node id`` or ``node id  # reason`` per line."""
    entries: dict[str, str] = {}
    if not path.exists():
        return entries
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        nodeid, _, reason = line.partition("  # ")
        entries[nodeid.strip()] = reason.strip()
    return entries


def ratchet_path(mode: str) -> Path:
    return HERE / f"must_pass_{mode}.txt"


def regressions(result: RunResult) -> list[str]:
    """Node ids on the mode's ratchet list that did not pass in *result*."""
    must = read_list(ratchet_path(result.mode))
    return sorted(nodeid for nodeid in must if result.outcomes.get(nodeid) != "passed")


def confirmed_regressions(result: RunResult, schema: str | None = None) -> tuple[list, list]:
    """(regressions, flaky): ratchet tests that failed, each given one more chance.

    Some of ftrack's tests race real sockets and timers (the suite marks a few with its
    own ``flaky``); on a loaded two-core machine one can miss.  Those that failed are
    run again once, on their own, against a fresh server: failing twice is a regression,
    passing the second time is reported as flaky (in the summary and the test output).
    """
    missing = regressions(result)
    if not missing:
        return [], []
    rerun = run_suite(result.mode, schema, selection=missing, label="rerun")
    again = [nodeid for nodeid in missing if rerun.outcomes.get(nodeid) != "passed"]
    flaky = [nodeid for nodeid in missing if nodeid not in again]
    if flaky:
        with open(result.output_dir / "summary.md", "a", encoding="utf-8") as handle:
            handle.write("\nPassed only when run again (flaky):\n")
            handle.write("".join(f"- `{nodeid}`\n" for nodeid in flaky))
    return again, flaky


def summary_table(result: RunResult) -> str:
    """The markdown summary: totals, per-file counts, and every non-passing test."""
    counts = result.counts
    excluded = read_list(HERE / "excluded.txt")
    must = read_list(ratchet_path(result.mode))
    lines = [
        f"# Conformance: mode `{result.mode}`, schema `{result.schema}`",
        "",
        "| total | " + " | ".join(OUTCOMES) + " | seconds |",
        "|---:|" + "---:|" * len(OUTCOMES) + "---:|",
        f"| {result.total} | "
        + " | ".join(str(counts.get(o, 0)) for o in OUTCOMES)
        + f" | {result.seconds:.0f} |",
        "",
        f"Ratchet `{ratchet_path(result.mode).name}`: {len(must)} listed, "
        f"{len(regressions(result))} not passing.",
        "",
        "| file | passed | not passed |",
        "|---|---:|---:|",
    ]
    per_file: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for nodeid, outcome in result.outcomes.items():
        per_file[nodeid.split("::")[0]]["passed" if outcome == "passed" else "other"] += 1
    for path in sorted(per_file):
        lines.append(f"| {path} | {per_file[path]['passed']} | {per_file[path]['other']} |")
    lines += ["", "| test | outcome | excluded because / message |", "|---|---|---|"]
    for nodeid in sorted(result.outcomes):
        outcome = result.outcomes[nodeid]
        if outcome == "passed":
            continue
        note = excluded.get(nodeid) or result.messages.get(nodeid, "")
        note = note.replace("|", "\\|").replace("\n", " ")[:200]
        lines.append(f"| `{nodeid}` | {outcome} | {note} |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- running
def output_dir(mode: str, schema: str | None) -> Path:
    suffix = "" if not schema else "-" + Path(schema).stem
    return OUTPUT / f"{mode}{suffix}"


def run_suite(
    mode: str,
    schema: str | None = None,
    selection: list[str] | None = None,
    include_heartbeat: bool = False,
    extra_args: list[str] | None = None,
    timeout: float = 3600,
    label: str = "",
) -> RunResult:
    """Start a DevServer, run the suite against it in *mode*, return the outcomes.

    *label* names a sub-folder for the outputs (a rerun must not overwrite the run).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if not (SUITE / "test" / "unit").is_dir():
        raise FileNotFoundError(f"the conformance suite is not at {SUITE}")
    from reviewd.devserver import DevServer

    out = output_dir(mode, schema) / label if label else output_dir(mode, schema)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.jsonl"
    results_path.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FTRACK_", "PYTEST_"))}
    python_path = [str(PLUGINS)]
    if mode == "official":
        python = official_python()
    else:
        python = Path(sys.executable)
        python_path += [str(reviewd_deps()), str(ROOT)]
    plugins = ["-p", "conformance_report", "-p", "conformance_seed"]
    if mode == "reviewd":
        plugins = ["-p", "conformance_reviewd", *plugins]
    args = list(selection or ["test/unit"])
    deselect = [] if include_heartbeat else ["--deselect", HEARTBEAT_TEST]
    command = [
        str(python),
        "-m",
        "pytest",
        *args,
        "-o",
        "addopts=",
        "-p",
        "no:cacheprovider",
        "-q",
        "--tb=short",
        "--continue-on-collection-errors",
        f"--junitxml={out / 'junit.xml'}",
        *plugins,
        *deselect,
        *(extra_args or []),
    ]
    started = time.monotonic()
    with DevServer(seed="demo", schema=schema) as server:
        api_key = secrets.token_hex(16)
        server.store.set_api_key("jenkins", api_key)
        env.update(
            FTRACK_SERVER=server.url,
            FTRACK_API_USER="jenkins",
            FTRACK_API_KEY=api_key,
            CONFORMANCE_RESULTS=str(results_path),
            PYTHONPATH=os.pathsep.join(python_path),
            PYTHONDONTWRITEBYTECODE="1",
            # The suite's sessions must not share a schema cache with other runs.
            FTRACK_API_SCHEMA_CACHE_PATH=str(out / "schema-cache"),
        )
        with open(out / "pytest.log", "w", encoding="utf-8") as log:
            completed = subprocess.run(
                command,
                cwd=SUITE,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
    outcomes, messages = read_results(results_path)
    result = RunResult(
        mode=mode,
        schema=Path(schema).name if schema else "default",
        outcomes=outcomes,
        messages=messages,
        seconds=time.monotonic() - started,
        returncode=completed.returncode,
        output_dir=out,
    )
    (out / "summary.md").write_text(summary_table(result), encoding="utf-8")
    (out / "outcomes.json").write_text(
        json.dumps(
            {
                "mode": mode,
                "schema": result.schema,
                "seconds": result.seconds,
                "outcomes": outcomes,
                "messages": messages,
            },
            indent=1,
            sort_keys=True,
        )
    )
    return result


def load_last(mode: str, schema: str | None) -> RunResult:
    data = json.loads((output_dir(mode, schema) / "outcomes.json").read_text())
    return RunResult(
        mode=data["mode"],
        schema=data["schema"],
        outcomes=data["outcomes"],
        messages=data["messages"],
        seconds=data["seconds"],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.conformance.run", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--mode", choices=MODES, default="official")
    parser.add_argument("--schema", help="serve this schema list instead of the built-in one")
    parser.add_argument(
        "--table", action="store_true", help="print the last run's table, do not run"
    )
    parser.add_argument("--heartbeat", action="store_true", help="include the 115 s heartbeat test")
    parser.add_argument(
        "--update-ratchet",
        action="store_true",
        help="add every passing test to must_pass_<mode>.txt (never removes)",
    )
    parser.add_argument("selection", nargs="*", help="suite paths/node ids (default test/unit)")
    args = parser.parse_args(argv)
    if args.table:
        sys.stdout.write(summary_table(load_last(args.mode, args.schema)))
        return 0
    result = run_suite(args.mode, args.schema, args.selection, include_heartbeat=args.heartbeat)
    sys.stdout.write(summary_table(result))
    if args.update_ratchet:
        path = ratchet_path(args.mode)
        listed = read_list(path)
        excluded = read_list(HERE / "excluded.txt")
        keep = sorted((set(listed) | result.passed()) - set(excluded))
        header = f"# Node ids that must keep passing in mode {args.mode!r} (default schema).\n"
        path.write_text(header + "".join(f"{nodeid}\n" for nodeid in keep))
    missing, flaky = confirmed_regressions(result, args.schema)
    if flaky:
        sys.stdout.write(f"\n{len(flaky)} ratchet test(s) passed only when run again:\n")
        sys.stdout.write("".join(f"  {nodeid}\n" for nodeid in flaky))
    if missing:
        sys.stdout.write(f"\n{len(missing)} ratchet test(s) no longer pass:\n")
        sys.stdout.write("".join(f"  {nodeid}\n" for nodeid in missing))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
