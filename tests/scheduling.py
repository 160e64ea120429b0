"""How pytest-xdist shares the suite among its workers: whole modules, costliest first.

The suite's wall time is the busiest worker's time, and a handful of tests cost more
than a hundred ordinary ones (ftrack's own suite in two modes, the reliability
scenarios, the three-replica Redis runs).  xdist's ``loadscope`` sends each module whole
to one worker, in order of *test count*, and tops a worker up as soon as it has two
tests left, so a two-minute module could start last, or two of them could queue on one
worker while the other ran out of work.  This scheduler keeps ``loadscope``'s unit (a
module, which keeps module-scoped servers and daemons and the order tests of a module
rely on) and changes three things:

* a few costly modules whose tests share nothing expensive are cut into smaller units
  (:data:`SPLIT`), so the scheduler can balance them;
* a worker that is (nearly) out of work gets the costliest unit left (longest
  processing time first: the long runs start at once and the short ones fill the gaps);
* a worker still busy with a long test, asked for its next unit only because xdist
  wants one test queued behind the running one, gets the cheapest unit left instead,
  so no long unit waits behind another while a different worker is free.

Costs come from ``tests/durations.json`` (seconds per test id, from a recorded full
run; refresh it with ``REVIEWD_RECORD_DURATIONS=1 pytest``), with a floor for the units
that rebuild a cache after a change (:data:`CACHE_BUILD_SECONDS`).  A test it does not
know costs :data:`UNKNOWN_TEST_SECONDS`.  The costs only order the work: a stale or missing
file makes the run slower, never wrong, and every test still runs exactly once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

DURATIONS_FILE = Path(__file__).resolve().parent / "durations.json"
RECORD_ENV = "REVIEWD_RECORD_DURATIONS"
UNKNOWN_TEST_SECONDS = 0.1
WORKERS_PER_CORE = 2
#: Redis gives each worker a database of its own (tests/conftest.py), 1 to 15.
MAX_WORKERS = 15
#: A worker with more than this many seconds of work queued gets the cheapest unit.
BUSY_SECONDS = 2.0
#: Tests shorter than this are left out of the recorded file (they cost the default).
RECORD_MIN_SECONDS = 0.2

#: Modules cut into smaller units, and how.  Only modules whose module-scoped fixtures
#: are cheap (a private redis-server) or per parameter, and whose tests do not rely on
#: what an earlier test of the module left: each unit then sets up its own.
#: ``"test"``: every test is a unit; ``"param"``: tests sharing a parameter id are one
#: unit (a module-scoped fixture parametrised per mode runs once per unit).
SPLIT: dict[str, str] = {
    # One fault scenario per test, each with its own server and daemon processes.
    "tests/reliability/test_scenarios_short.py": "test",
    # One run of ftrack's suite per mode (the module fixture is parametrised by mode).
    "tests/conformance/test_conformance.py": "param",
    # Each test starts its own three replicas and devserver; the module's redis-server
    # is cheap and every test uses its own key prefix.
    "tests/daemon/test_daemon_redis_cluster.py": "test",
    # Each test has its own devserver and daemon.
    "tests/daemon/test_daemon_soak_exactly_once.py": "test",
    "tests/daemon/test_daemon_acceptance_delivery.py": "test",
    "tests/reliability/test_hub_gaps.py": "test",
}


#: Units that build a cache on first use, and what that cost on a 2-core machine: the
#: recorded durations are usually from a warm run, but after a change to the sources the
#: first run rebuilds these (the image's context, the kit venv, the venv beside
#: ftrack-python-api), and a rebuild started last would end the run alone.  A floor,
#: never a ceiling: a warm run only starts them early.
CACHE_BUILD_SECONDS: dict[str, float] = {
    "tests/container/test_container.py": 45.0,
    "tests/kit/test_kit_new_plugin_venv.py": 35.0,
    "tests/plugin/test_plugin_beside_ftrack_api.py": 40.0,
}


def auto_workers() -> int:
    """The worker count for ``-n auto``: two per core the process may use, at most
    :data:`MAX_WORKERS`; ``PYTEST_XDIST_AUTO_NUM_WORKERS`` overrides it, as in xdist.

    Why more workers than cores: most of a test's time is spent waiting on real
    processes, sockets and timers (a daemon starting, a fault lasting its seconds, a
    retry's backoff), not computing; with one worker per core the cores sat idle most
    of the run.
    """
    override = os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS")
    if override:
        return int(override)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(WORKERS_PER_CORE * cores, MAX_WORKERS))


def load_durations(path: Path = DURATIONS_FILE) -> dict[str, float]:
    """The recorded seconds per test id; empty (every test costs the default) if the
    file is missing or unreadable, since the costs only order the work."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): float(v) for k, v in data.items() if isinstance(v, (int, float))}


def scope_of(nodeid: str) -> str:
    """The unit a test belongs to: its module, or a finer unit for :data:`SPLIT` modules."""
    module, _, rest = nodeid.partition("::")
    how = SPLIT.get(module)
    if how == "test":
        return nodeid
    if how == "param" and rest.endswith("]") and "[" in rest:
        return f"{module}[{rest[rest.index('[') + 1 : -1]}]"
    # loadscope's own rule: a class is a unit, functions of a module are one unit (the
    # parameter id is left out first: "[value-0::]" is no class).
    name = rest.split("[", 1)[0]
    return f"{module}::{name.rsplit('::', 1)[0]}" if "::" in name else module


def make_scheduler(config, log=None, durations: dict[str, float] | None = None):
    """The scheduler for ``--dist loadscope`` (see the module docstring); *durations*
    defaults to ``tests/durations.json``."""
    from xdist.scheduler import LoadScopeScheduling

    if durations is None:
        durations = load_durations()

    def cost(nodeids: Iterable[str]) -> float:
        return sum(durations.get(nodeid, UNKNOWN_TEST_SECONDS) for nodeid in nodeids)

    class CostOrderedScopeScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

        def _queued_cost(self, node) -> float:
            return cost(
                nodeid
                for unit in self.assigned_work.get(node, {}).values()
                for nodeid, done in unit.items()
                if not done
            )

        def _assign_work_unit(self, node) -> None:
            units = {
                scope: max(
                    cost(nodeid for nodeid, done in unit.items() if not done),
                    CACHE_BUILD_SECONDS.get(scope, 0.0),
                )
                for scope, unit in self.workqueue.items()
            }
            if self._queued_cost(node) > BUSY_SECONDS:
                chosen = min(units, key=units.__getitem__)
            else:
                chosen = max(units, key=units.__getitem__)
            self.workqueue.move_to_end(chosen, last=False)
            super()._assign_work_unit(node)

    return CostOrderedScopeScheduling(config, log)


class DurationRecorder:
    """With ``REVIEWD_RECORD_DURATIONS=1``: write every test's seconds (setup, call and
    teardown together) to ``tests/durations.json`` at the end of the run."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def pytest_runtest_logreport(self, report) -> None:
        self.seconds[report.nodeid] = self.seconds.get(report.nodeid, 0.0) + report.duration

    def pytest_sessionfinish(self, session) -> None:
        kept = {
            nodeid: round(seconds, 1)
            for nodeid, seconds in sorted(self.seconds.items())
            if seconds >= RECORD_MIN_SECONDS
        }
        DURATIONS_FILE.write_text(json.dumps(kept, indent=0) + "\n", encoding="utf-8")


def recording() -> bool:
    """Whether this run should record durations (only the controller or a plain run
    writes the file; xdist workers' reports reach the controller anyway)."""
    return os.environ.get(RECORD_ENV) == "1" and "PYTEST_XDIST_WORKER" not in os.environ
