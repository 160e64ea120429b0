"""reviewd installed beside the real ftrack-python-api 3.1.0, with the lowest
websocket-client (0.59.0) and the arrow (0.17) that combination resolves to.

One cached virtualenv (``.cache/beside-venv``) is built with
``pip install -e <reviewd> ftrack-python-api==3.1.0 websocket-client==0.59.0``:
that it resolves at all is the first assertion.  In it, the real ``reviewd``
daemon runs classic plugins guarded with each spelling of the isinstance check
against a real ``reviewd devserver`` process, and every plugin must receive an
``ftrack.update`` — which also proves the event hub on websocket-client 0.59.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.plugin.plugin_support import write_plugin

ROOT = Path(__file__).resolve().parent.parent.parent
VENV = ROOT / ".cache" / "beside-venv"
LOWEST_WEBSOCKET_CLIENT = "0.59.0"
REQUIREMENTS = ["ftrack-python-api==3.1.0", f"websocket-client=={LOWEST_WEBSOCKET_CLIENT}"]

pytestmark = [pytest.mark.slow, pytest.mark.peer]


def _marker_text() -> str:
    pyproject = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    return " ".join(REQUIREMENTS) + " " + pyproject


@pytest.fixture(scope="module")
def beside_venv() -> Path:
    """The cached venv; rebuilt when the requirements or pyproject.toml change."""
    marker = VENV / ".installed"
    if not (marker.exists() and marker.read_text() == _marker_text()):
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        installed = subprocess.run(
            [
                str(VENV / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "-e",
                str(ROOT),
                *REQUIREMENTS,
            ],
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert installed.returncode == 0, (
            "pip could not install reviewd beside ftrack-python-api 3.1.0:\n" + installed.stderr
        )
        marker.write_text(_marker_text())
    return VENV


def test_pip_resolves_reviewd_beside_ftrack_python_api(beside_venv):
    python = str(beside_venv / "bin" / "python")
    check = subprocess.run([python, "-m", "pip", "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    versions = subprocess.run(
        [
            python,
            "-c",
            "import json, websocket, arrow, ftrack_api, reviewd; print(json.dumps("
            "[websocket.__version__, arrow.__version__, ftrack_api.__file__]))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    websocket_version, arrow_version, real_file = json.loads(versions.stdout)
    assert websocket_version == LOWEST_WEBSOCKET_CLIENT
    assert arrow_version.split(".")[0] == "0"  # ftrack-python-api 3.1.0 needs arrow<1
    assert "site-packages/ftrack_api" in real_file  # the real package is there
    # reviewd's dates work on that older arrow too
    shifted = subprocess.run(
        [
            python,
            "-c",
            "from reviewd.api.transport import decode; value = decode("
            '\'{"__type__": "datetime", "value": "2022-10-10T10:12:09+02:00"}\'); '
            "print(type(value).__name__, value.shift(days=3).isoformat())",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shifted.stdout.split() == ["Arrow", "2022-10-13T10:12:09+02:00"]


SPELLINGS = {
    "dotted": ("import ftrack_api", "ftrack_api.Session"),
    "module_path": ("import ftrack_api.session", "ftrack_api.session.Session"),
    "alias": ("import ftrack_api as fa", "fa.Session"),
    "from_import": ("from ftrack_api.session import Session as FtrackSession", "FtrackSession"),
}

PLUGIN = """
    import os
    {import_line}

    def _hit(event):
        path = os.path.join(os.environ["BESIDE_HITS"], "{name}")
        with open(path, "a") as handle:
            handle.write(event["topic"] + "\\n")

    def register(session, **kw):
        if not isinstance(session, {guard}):
            return
        session.event_hub.subscribe("topic=ftrack.update", _hit)
"""


def _start_devserver(venv: Path, key: str) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [str(venv / "bin" / "reviewd"), "devserver", "--port", "0", "--api-key", key],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    line = process.stdout.readline()
    assert "listening on http://" in line, line
    return process, line.split("listening on ", 1)[1].strip()


def _rename_a_task(url: str, key: str, name: str) -> None:
    headers = {"ftrack-api-key": key, "ftrack-user": "admin", "content-type": "application/json"}
    found = requests.post(
        f"{url}/api",
        headers=headers,
        timeout=30,
        data=json.dumps([{"action": "query", "expression": "select id from Task limit 1"}]),
    ).json()
    task_id = found[0]["data"][0]["id"]
    answer = requests.post(
        f"{url}/api",
        headers=headers,
        timeout=30,
        data=json.dumps(
            [
                {
                    "action": "update",
                    "entity_type": "Task",
                    "entity_key": [task_id],
                    "entity_data": {"__entity_type__": "Task", "name": name},
                }
            ]
        ),
    ).json()
    assert isinstance(answer, list), answer


def test_daemon_beside_the_real_package_runs_every_guard_spelling(beside_venv, tmp_path):
    plugins, hits = tmp_path / "plugins", tmp_path / "hits"
    hits.mkdir()
    for name, (import_line, guard) in SPELLINGS.items():
        write_plugin(
            plugins, f"{name}.py", PLUGIN.format(import_line=import_line, guard=guard, name=name)
        )
    key = "beside-test-key"
    devserver, url = _start_devserver(beside_venv, key)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FTRACK_", "REVIEWD_"))}
    env.update(
        FTRACK_SERVER=url,
        FTRACK_API_USER="admin",
        FTRACK_API_KEY=key,
        REVIEWD_STATE_DIR=str(tmp_path / "state"),
        BESIDE_HITS=str(hits),
    )
    daemon = subprocess.Popen(
        [
            str(beside_venv / "bin" / "reviewd"),
            "--plugin-path",
            str(plugins),
            "--http",
            "off",
            "--log-format",
            "json",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        attempt = 0
        while time.monotonic() < deadline and daemon.poll() is None:
            attempt += 1
            _rename_a_task(url, key, f"beside {attempt}")
            if all((hits / name).exists() for name in SPELLINGS):
                break
            time.sleep(1.0)  # pace the renames; the loop polls the hit files
        received = sorted(p.name for p in hits.iterdir())
        assert daemon.poll() is None, daemon.stdout.read()
        assert received == sorted(SPELLINGS), f"only {received} received an ftrack.update"
    finally:
        daemon.terminate()
        output = daemon.communicate(timeout=60)[0]
        devserver.terminate()
        devserver.communicate(timeout=30)
    assert key not in output
