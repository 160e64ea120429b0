"""The suite's own xdist scheduler (tests/scheduling.py): units, order, worker count.

Driven with stand-in worker nodes that only record what they were sent (the scheduler
talks to xdist's nodes through ``send_runtest_some``, ``shutdown`` and
``shutting_down``): a real xdist run of the suite is the integration test of it.
"""

from __future__ import annotations

import json

import pytest

from tests import scheduling


class Node:
    """Records the test indices the scheduler sends it, like an xdist worker would run."""

    def __init__(self, name: str) -> None:
        self.gateway = type("Gateway", (), {"id": name})()
        self.sent: list[int] = []
        self.shutting_down = False

    def send_runtest_some(self, indices) -> None:
        self.sent.extend(indices)

    def shutdown(self) -> None:
        self.shutting_down = True


class Config:
    class option:
        loadscopereorder = True

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def getvalue(self, name):
        assert name == "tx"
        return [f"{self.workers}*popen"]


def start(collection: list[str], durations: dict[str, float], workers: int = 2):
    scheduler = scheduling.make_scheduler(Config(workers), durations=durations)
    nodes = [Node(f"gw{n}") for n in range(workers)]
    for node in nodes:
        scheduler.add_node(node)
    for node in nodes:
        scheduler.add_node_collection(node, collection)
    scheduler.schedule()
    return scheduler, nodes


def names(node: Node, collection: list[str]) -> list[str]:
    return [collection[i] for i in node.sent]


def finish_all(scheduler, nodes, collection) -> list[str]:
    """Complete every test each node holds, in order, until the scheduler runs dry."""
    ran: list[str] = []
    progress = True
    while progress:
        progress = False
        for node in nodes:
            done = sum(1 for n in ran if n in names(node, collection))
            pending = names(node, collection)[done:]
            if pending:
                ran.append(pending[0])
                scheduler.mark_test_complete(node, collection.index(pending[0]))
                progress = True
    return ran


def test_scope_of_keeps_modules_and_classes_whole_and_cuts_the_split_modules() -> None:
    assert scheduling.scope_of("tests/a/test_x.py::test_one") == "tests/a/test_x.py"
    assert scheduling.scope_of("tests/a/test_x.py::Group::test_one") == "tests/a/test_x.py::Group"
    assert scheduling.scope_of("tests/a/test_x.py::test_codec[value0-0::]") == "tests/a/test_x.py"
    assert scheduling.scope_of("tests/a/test_x.py::Group::test[a::b]") == "tests/a/test_x.py::Group"
    short = "tests/reliability/test_scenarios_short.py::test_short_scenario[fuzz]"
    assert scheduling.scope_of(short) == short
    conformance = "tests/conformance/test_conformance.py"
    assert (
        scheduling.scope_of(f"{conformance}::test_ratchet_tests_still_pass[reviewd]")
        == scheduling.scope_of(f"{conformance}::test_summary_written[reviewd]")
        == f"{conformance}[reviewd]"
    )
    assert scheduling.scope_of(f"{conformance}::test_excluded_tests_have_reasons") == conformance


def test_split_and_cache_building_modules_exist() -> None:
    """A renamed or moved module must not silently lose its split or its floor."""
    for module in [*scheduling.SPLIT, *scheduling.CACHE_BUILD_SECONDS]:
        assert (scheduling.DURATIONS_FILE.parent.parent / module).is_file(), module


def test_a_cache_building_module_starts_before_warmer_but_costlier_work(monkeypatch) -> None:
    container = "tests/container/test_container.py::test_the_image_builds"
    other = "tests/x/test_other.py::test_1"
    monkeypatch.setitem(scheduling.CACHE_BUILD_SECONDS, "tests/container/test_container.py", 45.0)
    scheduler, (node,) = start([other, container], {container: 5.0, other: 20.0}, workers=1)
    assert names(node, [other, container])[0] == container


def test_costliest_unit_goes_first_and_a_busy_worker_is_topped_up_cheaply() -> None:
    collection = [
        "tests/a/test_cheap.py::test_1",
        "tests/a/test_cheap.py::test_2",
        "tests/b/test_long.py::test_1",
        "tests/c/test_longer.py::test_1",
        "tests/d/test_medium.py::test_1",
        "tests/d/test_medium.py::test_2",
        "tests/d/test_medium.py::test_3",
        "tests/e/test_tiny.py::test_1",
    ]
    durations = {
        "tests/b/test_long.py::test_1": 60.0,
        "tests/c/test_longer.py::test_1": 90.0,
        "tests/d/test_medium.py::test_1": 10.0,
    }
    scheduler, (first, second) = start(collection, durations)
    # Each worker starts on one of the two long modules, costliest first, and is
    # topped up with the cheapest unit, not with the other long one.
    assert names(first, collection)[0] == "tests/c/test_longer.py::test_1"
    assert names(second, collection)[0] == "tests/b/test_long.py::test_1"
    queued = names(first, collection)[1:] + names(second, collection)[1:]
    assert sorted(queued) == [
        "tests/a/test_cheap.py::test_1",
        "tests/a/test_cheap.py::test_2",
        "tests/e/test_tiny.py::test_1",
    ]
    ran = finish_all(scheduler, [first, second], collection)
    assert sorted(ran) == sorted(collection), "every test runs exactly once"
    medium = [n for n in names(first, collection) + names(second, collection) if "medium" in n]
    assert medium == sorted(medium), "a module's tests stay together and in order"
    assert first.shutting_down and second.shutting_down


def test_unknown_tests_and_a_missing_file_only_cost_the_default(tmp_path) -> None:
    assert scheduling.load_durations(tmp_path / "absent.json") == {}
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert scheduling.load_durations(broken) == {}
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"t.py::a": 1.5, "t.py::b": "x"}))
    assert scheduling.load_durations(good) == {"t.py::a": 1.5}
    collection = ["tests/x/test_new.py::test_1", "tests/y/test_newer.py::test_1"]
    scheduler, nodes = start(collection, {})
    assert sorted(finish_all(scheduler, nodes, collection)) == sorted(collection)


def test_auto_workers_two_per_core_capped_and_overridable(monkeypatch) -> None:
    monkeypatch.delenv("PYTEST_XDIST_AUTO_NUM_WORKERS", raising=False)
    monkeypatch.setattr(scheduling.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert scheduling.auto_workers() == 4
    monkeypatch.setattr(scheduling.os, "sched_getaffinity", lambda pid: set(range(64)))
    assert scheduling.auto_workers() == scheduling.MAX_WORKERS
    monkeypatch.setenv("PYTEST_XDIST_AUTO_NUM_WORKERS", "3")
    assert scheduling.auto_workers() == 3


@pytest.mark.parametrize(
    "recording_env, worker, expected", [("1", None, True), ("1", "gw0", False), (None, None, False)]
)
def test_only_the_controller_records_durations(
    monkeypatch, recording_env, worker, expected
) -> None:
    for name, value in ((scheduling.RECORD_ENV, recording_env), ("PYTEST_XDIST_WORKER", worker)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert scheduling.recording() is expected
