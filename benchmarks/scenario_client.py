"""Client scenarios: a Session's start-up and a 10,000-row query, reviewd against
ftrack-python-api 3.1.0 (``bench_session.py`` does the measuring)."""

from __future__ import annotations

import contextlib
import io

from benchmarks._scenario import Scenario

_cache: dict[bool, dict] = {}


def _figures(quick: bool) -> dict:
    """One run of bench_session (both scenarios read it; a new round runs it again)."""
    from benchmarks import bench_session

    args = [
        "--tasks",
        "2000" if quick else "10000",
        "--runs",
        "1" if quick else "3",
        "--peer-runs",
        "1",
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        return bench_session.main(args)


def _startup(quick: bool) -> dict[str, float]:
    _cache[quick] = figures = _figures(quick)
    start = figures["canned"]["startup"]
    return {
        "reviewd": start["reviewd"],
        "ftrack_api": start["peer"],
        "bare_requests": start["bare"],
    }


def _query(quick: bool) -> dict[str, float]:
    figures = _cache.pop(quick, None) or _figures(quick)
    query = figures["live"]["query"]
    return {
        "reviewd": query["reviewd"],
        "ftrack_api": query["peer"],
        "bare_http_json": query["bare"],
    }


SCENARIOS = [
    Scenario(
        "client.startup",
        "s",
        _startup,
        higher_is_better=False,
        description="interpreter start to a ready Session (warm schema cache)",
    ),
    Scenario(
        "client.query",
        "s",
        _query,
        higher_is_better=False,
        description="query(...).all() of the Tasks, five projections",
    ),
]
