"""Shared fixtures: the embedded server, the peer client, and REVIEWD_REQUIRE_ALL.

With ``REVIEWD_REQUIRE_ALL=1`` (set by ``.ci/run``) a test that would skip because a
system service or tool is absent fails instead, so CI cannot go green by skipping.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REQUIRE_ALL = os.environ.get("REVIEWD_REQUIRE_ALL") == "1"
SOAK = os.environ.get("REVIEWD_SOAK") == "1"
SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared")
FIXTURES = os.path.abspath(os.path.join(SHARED, "fixtures"))
PYCACHE = Path(__file__).resolve().parent.parent / ".cache" / "pycache"


def require(condition: bool, reason: str) -> None:
    """Skip (or, under REVIEWD_REQUIRE_ALL=1, fail) when *condition* is false."""
    if condition:
        return
    if REQUIRE_ALL:
        pytest.fail(f"required in CI but unavailable: {reason}")
    pytest.skip(reason)


def pytest_configure(config):
    """Under pytest-xdist, give each worker its own Redis database (gw0 → 1, gw1 → 2,
    ...), so that no worker's keys or clean-up can meet another's.  With
    ``REVIEWD_RECORD_DURATIONS=1``, record the tests' durations for the scheduler."""
    from tests.scheduling import DurationRecorder, recording

    if recording():
        config.pluginmanager.register(DurationRecorder(), "reviewd-durations")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    url = os.environ.get("REVIEWD_TEST_REDIS_URL")
    if url and worker.startswith("gw") and worker[2:].isdigit():
        base, _, db = url.rpartition("/")
        if db.isdigit() and base.startswith("redis"):
            os.environ["REVIEWD_TEST_REDIS_URL"] = f"{base}/{1 + int(worker[2:]) % 15}"


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_auto_num_workers(config):
    """``-n auto`` (pyproject's default): two workers per core, see ``tests/scheduling.py``
    (``PYTEST_XDIST_AUTO_NUM_WORKERS`` still overrides it)."""
    from tests.scheduling import auto_workers

    return auto_workers()


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadscope`` (pyproject's default), costliest modules first and a few
    costly modules cut finer: see ``tests/scheduling.py``."""
    if config.getoption("dist") != "loadscope":
        return None
    from tests.scheduling import make_scheduler

    return make_scheduler(config, log)


@pytest.hookimpl(hookwrapper=True)
def pytest_collection(session):
    """Under ``PYTHONDONTWRITEBYTECODE=1``, keep the rewritten test modules anyway, in
    ``.cache/pycache`` (never beside the sources), but only while collecting.

    Why: every xdist worker collects the whole suite, and rewriting the asserts of every
    test module from source cost each worker about 3 s of CPU per run (4.9 s against
    1.8 s for a collection).  Only collection: modules a test imports later (plugins
    it writes and rewrites within the same second) must never meet stale bytecode.
    """
    if not sys.dont_write_bytecode:
        yield
        return
    prefix = sys.pycache_prefix
    sys.dont_write_bytecode, sys.pycache_prefix = False, str(PYCACHE)
    try:
        yield
    finally:
        sys.dont_write_bytecode, sys.pycache_prefix = True, prefix


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_ALL and report.skipped and call.when in ("setup", "call"):
        # Turn any skip into a failure in CI; xfail is not a skip and is left alone.
        if not hasattr(report, "wasxfail"):
            report.outcome = "failed"
            report.longrepr = f"skipped under REVIEWD_REQUIRE_ALL=1: {report.longrepr}"


def pytest_terminal_summary(terminalreporter):
    """Print the figures tests recorded with ``record_property("figure: NAME", value)``
    (the container test's timings, the systemd security score): under pytest-xdist a
    worker's own output is not shown, but its reports' properties reach this summary."""
    figures = []
    for reports in terminalreporter.stats.values():
        for report in reports:
            for name, value in getattr(report, "user_properties", []):
                if str(name).startswith("figure: ") and getattr(report, "when", "") == "call":
                    figures.append(f"{name[8:]}: {value}")
    if figures:
        terminalreporter.write_sep("-", "figures")
        for line in sorted(set(figures)):
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def fixtures_dir() -> str:
    require(os.path.isdir(FIXTURES), f"shared fixtures not found at {FIXTURES}")
    return FIXTURES


@pytest.fixture(scope="session")
def peer_python():
    """Path of the interpreter of the cached ftrack-python-api==3.1.0 virtualenv."""
    from tests.peer import peer_python as build

    try:
        return build()
    except Exception as exc:  # pip unreachable, etc.
        require(False, f"cannot build the ftrack-python-api peer venv: {exc}")


@pytest.fixture(scope="session")
def devserver_session():
    """One demo-seeded embedded server shared by read-only tests of a whole run."""
    from reviewd.devserver import DevServer

    with DevServer(seed="demo") as server:
        yield server


@pytest.fixture
def devserver():
    """A fresh demo-seeded embedded server for a test that writes."""
    from reviewd.devserver import DevServer

    with DevServer(seed="demo") as server:
        yield server


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate and key for 127.0.0.1 (the TLS tests' server)."""
    require(shutil.which("openssl") is not None, "openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key
