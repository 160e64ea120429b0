"""The built wheel is a working reviewd on a host that never saw the source tree.

Every other test installs reviewd editable from the checkout, which hides packaging
mistakes: a data file left out of the wheel (the devserver's schema JSON, the
``py.typed`` marker, the example plugins), a broken console script or entry point.
These tests build the sdist and wheel, check them as PyPI would (``twine check``),
install the wheel alone into a new venv, and drive the installed ``reviewd`` the way a
platform team vetting it would: version, configuration check, plugin check, and a short
daemon run against the embedded server to readiness and a clean stop.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.release.conftest import REPO, Dists, WheelVenv, isolated_env, run
from tests.support import free_port, http_get, stop_process, wait_process_ready

# One xdist worker runs them all (``--dist loadgroup``), so the sdist and wheel are
# built, and the venv made, once per test session rather than once per worker.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("release-wheel")]

EXAMPLE_PLUGINS = {"review_digest", "status_rollup", "verdicts_to_status", "version_to_review"}


def test_dists_pass_twine_check(dists: Dists) -> None:
    result = run(
        [sys.executable, "-m", "twine", "check", "--strict", str(dists.sdist), str(dists.wheel)],
        cwd=dists.wheel.parent,
    )
    assert result.stdout.count("PASSED") == 2, result.stdout


def test_wheel_carries_package_data_licence_and_entry_points(dists: Dists) -> None:
    with zipfile.ZipFile(dists.wheel) as wheel:
        names = set(wheel.namelist())
        info = next(n for n in names if n.endswith(".dist-info/METADATA")).rsplit("/", 1)[0]
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
        metadata = wheel.read(f"{info}/METADATA").decode()
    assert "reviewd/py.typed" in names
    assert "reviewd/devserver/schema/reviewd_schemas.json" in names
    assert {f"reviewd/examples/plugins/{name}.py" for name in EXAMPLE_PLUGINS} <= names
    assert f"{info}/licenses/LICENSE" in names
    assert "reviewd = reviewd.daemon.cli:main" in entry_points
    assert "License-Expression: Apache-2.0" in metadata
    # Nothing from the test suite or the checkout's tooling leaks into the wheel.
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "plugins/"))]


def test_installed_reviewd_comes_from_the_wheel(wheel_venv: WheelVenv) -> None:
    result = wheel_venv.run(
        "python",
        "-c",
        (
            "import reviewd, reviewd.examples, reviewd.devserver.schema as s, os;"
            "print(reviewd.__file__); print(reviewd.examples.plugin_path());"
            "print(os.path.exists(os.path.join(os.path.dirname(reviewd.__file__), 'py.typed')))"
        ),
    )
    assert result.returncode == 0, result.stderr
    package_file, examples, typed = result.stdout.splitlines()
    root = wheel_venv.root.resolve()
    assert root in Path(package_file).resolve().parents
    assert root in Path(examples).resolve().parents
    assert REPO not in Path(package_file).resolve().parents
    assert typed == "True"


def test_version_names_reviewd_python_and_ftrack_api(wheel_venv: WheelVenv) -> None:
    from reviewd import __version__

    result = wheel_venv.run("reviewd", "--version")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"reviewd {__version__}"
    assert lines[1].startswith("Python 3.")
    assert "ftrack-python-api 3.1.0" in lines[2]


def test_check_config_accepts_the_example_config(wheel_venv: WheelVenv, tmp_path: Path) -> None:
    """deploy/reviewd.toml.example with its host paths pointed into a scratch folder."""
    key = tmp_path / "ftrack_api_key"
    key.write_text("wheel-secret-31\n")
    key.chmod(0o600)
    text = (REPO / "deploy" / "reviewd.toml.example").read_text()
    for host_path, local in (
        ("/etc/reviewd/ftrack_api_key", key),
        ("/var/lib/reviewd", tmp_path / "state"),
        ("/srv/pipeline/reviewd-plugins", tmp_path / "plugins"),
    ):
        assert host_path in text, f"the example config no longer mentions {host_path}"
        text = text.replace(host_path, str(local))
    config = tmp_path / "reviewd.toml"
    config.write_text(text)

    result = wheel_venv.run("reviewd", "check-config", "--config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "configuration OK" in result.stdout
    assert "wheel-secret-31" not in result.stdout + result.stderr

    config.write_text(text.replace('backend = "sqlite"', 'backend = "carrier-pigeon"'))
    broken = wheel_venv.run("reviewd", "check-config", "--config", str(config))
    assert broken.returncode == 78, broken.stdout + broken.stderr


def _examples_folder(wheel_venv: WheelVenv) -> str:
    result = wheel_venv.run("python", "-m", "reviewd.examples")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_plugins_check_passes_on_the_shipped_examples(wheel_venv: WheelVenv) -> None:
    folder = _examples_folder(wheel_venv)
    result = wheel_venv.run("reviewd", "plugins", "check", "--json", folder)
    assert result.returncode == 0, result.stdout + result.stderr
    records = json.loads(result.stdout)["plugins"]
    assert all(record["loaded"] for record in records), result.stdout
    assert {record["name"] for record in records} >= EXAMPLE_PLUGINS, result.stdout


def test_daemon_runs_the_examples_on_the_embedded_server_and_stops_cleanly(
    wheel_venv: WheelVenv, tmp_path: Path
) -> None:
    folder = _examples_folder(wheel_venv)
    port = free_port()
    log = tmp_path / "reviewd.log"
    with open(log, "w") as output:
        proc = subprocess.Popen(
            [
                wheel_venv.reviewd,
                "--embedded-server",
                "--plugin-path",
                folder,
                "--http",
                f"127.0.0.1:{port}",
                "--journal",
                str(tmp_path / "journal.sqlite3"),
                "--log-format",
                "json",
            ],
            cwd=str(wheel_venv.work),
            stdout=output,
            stderr=subprocess.STDOUT,
            env=isolated_env(REVIEWD_STATE_DIR=str(tmp_path / "state")),
        )
    try:
        wait_process_ready(
            proc,
            lambda: http_get(f"http://127.0.0.1:{port}/readyz")[0] == 200,
            log.read_text,
            120,
            0.1,
            "the wheel's reviewd to become ready",
        )
        code, body = http_get(f"http://127.0.0.1:{port}/status")
        assert code == 200, body
        assert set(json.loads(body)["plugins"]) >= EXAMPLE_PLUGINS, body
    finally:
        returncode = stop_process(proc, 60)
    assert returncode == 0, log.read_text()
    assert os.path.exists(tmp_path / "journal.sqlite3")
