"""The container image, built and run for real (podman, runc, a Debian stand-in for the
base image): it builds, runs as a non-root user, becomes ready against a server on the
host network, its HEALTHCHECK reports healthy, SIGTERM stops it with exit 0 within the
grace period, its journal survives a restart on its volume, and a bad configuration
exits 78.  The timings are printed (and written to ``.cache/container-timings.json``)."""

from __future__ import annotations

import json
import os
import time
import uuid

import pytest

from tests.conftest import require
from tests.daemon.daemon_harness import write_plugin
from tests.support import free_port, http_get, wait_until

from . import podman as pm

pytestmark = pytest.mark.slow

GRACE = 20.0
PLUGIN = """
    def register(session, **kwargs):
        session.event_hub.subscribe("topic=container.ping", lambda event: None)
"""


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    missing = pm.missing_tools()
    require(
        not missing,
        f"container tools not installed: {', '.join(missing)} "
        "(apt-get install podman runc mmdebstrap; see .ci/run)",
    )
    timings = {}
    base, timings["base_image_seconds"] = pm.ensure_base_image()
    # One stable tag, kept after the run: the next build reuses its layers (the
    # dependencies layer is rebuilt only when pyproject.toml changes).
    tag = "localhost/reviewd-test:latest"
    timings["build_seconds"] = pm.build_image(tag, tmp_path_factory.mktemp("pip") / "pip.conf")
    pm.podman("image", "prune", "-f", check=False)  # the previous build's untagged image
    yield tag, timings


def _run(tag: str, name: str, port: int, server, volume: str, plugins, *extra: str) -> None:
    pm.podman(
        "run",
        "-d",
        "--name",
        name,
        "--network=host",
        "-e",
        f"FTRACK_SERVER={server.url}",
        "-e",
        f"FTRACK_API_USER={server.api_user}",
        "-e",
        f"FTRACK_API_KEY={server.api_key}",
        "-e",
        f"REVIEWD_HTTP=127.0.0.1:{port}",
        "-e",
        f"REVIEWD_GRACE_PERIOD={GRACE:g}",
        "-v",
        f"{volume}:/var/lib/reviewd",
        "-v",
        f"{plugins}:/etc/reviewd/plugins:ro",
        *extra,
        tag,
    )


def _state(name: str, field: str) -> str:
    return pm.podman("inspect", "--format", "{{" + field + "}}", name).stdout.strip()


def _ready(port: int) -> bool:
    try:
        return http_get(f"http://127.0.0.1:{port}/readyz", timeout=2)[0] == 200
    except OSError:
        return False


def _wait_ready(name: str, port: int, timeout: float = 90) -> float:
    started = time.monotonic()

    def ready_or_dead():
        if _state(name, ".State.Running") != "true":
            logs = pm.podman("logs", name, check=False)
            raise AssertionError(f"container exited:\n{logs.stdout}\n{logs.stderr}")
        return _ready(port)

    wait_until(ready_or_dead, timeout, 0.2, f"{name} /readyz to answer 200")
    return time.monotonic() - started


def test_the_image_builds_runs_stops_and_keeps_its_journal(
    image, devserver, tmp_path, record_property
):
    tag, timings = image
    plugins = tmp_path / "plugins"
    write_plugin(plugins, "ping", PLUGIN)
    os.chmod(plugins, 0o755)
    os.chmod(plugins / "ping.py", 0o644)
    port = free_port()
    name = f"reviewd-test-{uuid.uuid4().hex[:8]}"
    volume = f"{name}-state"
    try:
        started = time.monotonic()
        _run(tag, name, port, devserver, volume, plugins)
        _wait_ready(name, port)
        timings["run_to_ready_seconds"] = time.monotonic() - started  # `podman run` included
        # Non-root: the daemon (PID 1 in the container) runs as the image's user.
        status = pm.podman("exec", name, "cat", "/proc/1/status").stdout
        uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
        assert uid != 0
        assert pm.podman("exec", name, "id", "-un").stdout.strip() == "reviewd"
        # The image's own HEALTHCHECK.
        health = pm.podman("healthcheck", "run", name, check=False)
        assert health.returncode == 0, health.stdout + health.stderr
        assert _state(name, ".State.Healthcheck.Status") == "healthy"
        # One event handled and journaled on the volume.
        devserver.emit("container.ping", {"n": 1})
        wait_until(
            lambda: (
                json.loads(http_get(f"http://127.0.0.1:{port}/status")[1])["journal"].get("done", 0)
                >= 1
            ),
            30,
            0.2,
            "the event to be handled",
        )
        # SIGTERM (the image's STOPSIGNAL): exit 0 within the grace period.
        stopping = time.monotonic()
        pm.podman("stop", "-t", str(int(GRACE) + 10), name)
        timings["sigterm_to_exit_seconds"] = time.monotonic() - stopping
        assert _state(name, ".State.ExitCode") == "0"
        assert timings["sigterm_to_exit_seconds"] < GRACE
        # Restart on the same volume: the journal is still there.
        restarting = time.monotonic()
        pm.podman("start", name)
        timings["restart_to_ready_seconds"] = _wait_ready(name, port)
        body = json.loads(http_get(f"http://127.0.0.1:{port}/status")[1])
        assert body["journal"]["path"] == "/var/lib/reviewd/journal.sqlite3"
        assert body["journal"].get("done", 0) >= 1, body["journal"]
        assert time.monotonic() - restarting < 90
        pm.podman("stop", "-t", str(int(GRACE) + 10), name)
        assert _state(name, ".State.ExitCode") == "0"
    finally:
        pm.podman("rm", "-f", name, check=False)
        pm.podman("volume", "rm", "-f", volume, check=False)
    _report(timings, record_property)


def test_a_bad_configuration_exits_78(image, tmp_path):
    tag, _ = image
    name = f"reviewd-bad-{uuid.uuid4().hex[:8]}"
    try:
        result = pm.podman(
            "run",
            "--name",
            name,
            "--network=host",
            "-e",
            "FTRACK_SERVER=http://127.0.0.1:1",
            "-e",
            "FTRACK_API_KEY=x",
            "-e",
            "REVIEWD_CONCURRENCY=-2",
            tag,
            check=False,
            timeout=120,
        )
        assert result.returncode == 78, result.stdout + result.stderr
        assert _state(name, ".State.ExitCode") == "78"
        assert "routing.concurrency" in result.stderr.strip().splitlines()[-1]
    finally:
        pm.podman("rm", "-f", name, check=False)


def _report(timings: dict, record_property) -> None:
    path = pm.REPO / ".cache" / "container-timings.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(timings, indent=2, sort_keys=True) + "\n")
    record_property(
        "figure: container timings (s)",
        ", ".join(f"{k} {v:.1f}" for k, v in sorted(timings.items())),
    )
