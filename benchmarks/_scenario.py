"""The contract every benchmark scenario follows, so one runner can drive them all.

A scenario module is ``benchmarks/scenario_<name>.py`` and exposes
``SCENARIOS: list[Scenario]``.  The runner (``python -m benchmarks``) discovers those
modules, runs each scenario several rounds (alternating reviewd and the ftrack_api peer
where a scenario measures both), and reports the median of every figure.

Why a plain dataclass and a ``run`` callable: scenarios differ wildly (a subprocess
client, an in-process daemon, a long soak) and the runner only needs figures back; it
must not care how they were obtained.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Scenario:
    """One measurable thing.

    ``name``: unique, dotted by area (``daemon.throughput``, ``hub.stream``).
    ``unit``: the unit of the headline figure (``events/s``, ``us/event``, ``ms``, ``MB``).
    ``run(quick)``: performs one round and returns named figures; ``quick`` asks for a
    short round (the whole ``--quick`` suite must finish in under two minutes).
    The figure names ``reviewd`` and ``ftrack_api`` are compared side by side: the
    runner prints their ratio.  Other figure names are reported as they are.
    ``headline``: which figure's key is the headline (defaults to ``reviewd``).
    ``higher_is_better``: for the ratio column's reading (throughput yes, latency no).
    """

    name: str
    unit: str
    run: Callable[[bool], dict[str, float]]
    headline: str = "reviewd"
    higher_is_better: bool = True
    description: str = field(default="")
