"""CI gate: ftrack's own client suite against the embedded server, in both modes.

Each mode runs the whole suite once (about a minute each on two cores; the 115-second
heartbeat test is deselected) and every node id on its ratchet list must still pass.
The lists only grow: ``python -m tests.conformance.run --mode MODE --update-ratchet``.
"""

from __future__ import annotations

import pytest

from tests.conformance import run
from tests.conftest import require


@pytest.fixture(scope="module", params=run.MODES)
def suite_result(request) -> run.RunResult:
    require(run.SUITE.joinpath("test", "unit").is_dir(), f"conformance suite not at {run.SUITE}")
    try:
        if request.param == "official":
            run.official_python()
        else:
            run.reviewd_deps()
    except Exception as exc:  # pip or the network is unavailable
        require(False, f"cannot prepare the conformance environment: {exc}")
    return run.run_suite(request.param)


def test_ratchet_tests_still_pass(suite_result: run.RunResult) -> None:
    must = run.read_list(run.ratchet_path(suite_result.mode))
    assert must, f"{run.ratchet_path(suite_result.mode).name} is empty"
    assert suite_result.total >= len(must), (
        f"only {suite_result.total} outcomes recorded; see {suite_result.output_dir}/pytest.log"
    )
    missing, flaky = run.confirmed_regressions(suite_result)
    if flaky:
        print(f"ratchet tests that passed only when run again: {flaky}")
    details = "\n".join(
        f"{nodeid}: {suite_result.outcomes.get(nodeid, 'not run')} "
        f"{suite_result.messages.get(nodeid, '')}"
        for nodeid in missing
    )
    assert not missing, f"{len(missing)} ratchet test(s) no longer pass:\n{details}"


def test_summary_written(suite_result: run.RunResult) -> None:
    summary = (suite_result.output_dir / "summary.md").read_text()
    counts = suite_result.counts
    assert f"| {suite_result.total} | {counts.get('passed', 0)} |" in summary
    assert (suite_result.output_dir / "junit.xml").stat().st_size > 0


def test_excluded_tests_have_reasons() -> None:
    excluded = run.read_list(run.HERE / "excluded.txt")
    assert all(reason for reason in excluded.values()), "every excluded test needs a reason"
    for mode in run.MODES:
        overlap = set(excluded) & set(run.read_list(run.ratchet_path(mode)))
        assert not overlap, f"excluded tests on the {mode} ratchet: {sorted(overlap)}"


def test_list_parsing_and_regressions(tmp_path, monkeypatch) -> None:
    """The ratchet logic itself: a listed test that fails or vanishes is a regression."""
    monkeypatch.setattr(run, "HERE", tmp_path)
    (tmp_path / "must_pass_official.txt").write_text(
        "# header\nt.py::a\nt.py::b  # flaky upstream? no: must pass\nt.py::c\n"
    )
    result = run.RunResult(
        mode="official",
        schema="default",
        outcomes={"t.py::a": "passed", "t.py::b": "failed", "t.py::d": "passed"},
    )
    assert run.regressions(result) == ["t.py::b", "t.py::c"]
