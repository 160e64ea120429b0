"""Every reliability scenario in its short form (the long forms: ``python -m reliability
--long``).  Each asserts the suite's invariants: nothing the journal accepted is lost,
nothing handled twice, no crash, and the system came back after every fault."""

from __future__ import annotations

import pytest

from reliability.catalogue import SCENARIOS


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_short_scenario(name, tmp_path):
    outcome = SCENARIOS[name](tmp_path, False)
    assert outcome.runs >= 1 and outcome.faults >= 1, outcome
    assert outcome.crashes == 0, outcome
    assert outcome.lost == 0, outcome
    assert outcome.duplicates == 0, outcome
    if outcome.sent:
        assert outcome.handled >= 1 and outcome.handled == outcome.journaled, outcome
        assert outcome.longest_recovery < 60, outcome
