"""Acceptance: ``reviewd --foreground`` with no server hands the embedded demo server's
credentials to the developer through a private file, never through its logs."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys

from reviewd.daemon.embedded import HINT_PREFIX
from tests.conftest import require

from .daemon_harness import REPO, DaemonProcess, clean_env, wait_for


def parse_env_file(path: str) -> dict[str, str]:
    values = {}
    with open(path) as handle:
        for line in handle:
            line = line.strip()
            if line and not line.startswith("#"):
                name, _, value = line.partition("=")
                values[name] = value
    return values


def test_embedded_credentials_file_drives_the_emit_command_without_logging_the_key(tmp_path):
    bin_dir = os.path.dirname(sys.executable)
    require(
        os.path.exists(os.path.join(bin_dir, "reviewd")),
        f"the reviewd console script is not installed next to {sys.executable}",
    )
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    shutil.copy(REPO / "plugins" / "review_digest.py", plugins / "review_digest.py")
    daemon = DaemonProcess(
        tmp_path, ["--foreground", "--log-format", "json"], env={"REVIEWD_SIMULATE": "0"}
    )
    try:
        daemon.wait_ready()
        running = next(
            r for r in daemon.log_records() if r.get("event") == "embedded server running"
        )
        path = running["credentials_file"]
        assert os.path.basename(path) == "embedded-server.env"
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
        credentials = parse_env_file(path)
        assert sorted(credentials) == ["FTRACK_API_KEY", "FTRACK_API_USER", "FTRACK_SERVER"]
        assert credentials["FTRACK_SERVER"] == daemon.status()["server"]["url"]
        key = credentials["FTRACK_API_KEY"]
        assert len(key) >= 16

        # The logged hint is a working shell command: run it exactly as printed.
        hint = next(
            r["event"][len(HINT_PREFIX) :]
            for r in daemon.log_records()
            if r.get("event", "").startswith(HINT_PREFIX)
        )
        assert path in hint and key not in hint
        env = clean_env(PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))

        def discovered():
            result = subprocess.run(
                ["bash", "-c", hint],
                capture_output=True,
                text=True,
                timeout=60,
                env=env,
                cwd=tmp_path,
            )
            return result if result.returncode == 0 else None

        result = wait_for(
            discovered,
            timeout=30,
            interval=0.5,
            message="the review-digest plugin to answer the hint's emit",
        )
        reply = json.loads(result.stdout)
        assert reply["data"]["items"][0]["actionIdentifier"] == "reviewd.review-digest"

        # A wrong key in the same file format is refused: the file's key is what works.
        refused = subprocess.run(
            [sys.executable, "-m", "reviewd.devserver.emit", "ftrack.action.discover"],
            capture_output=True,
            text=True,
            timeout=60,
            env=clean_env(**{**credentials, "FTRACK_API_KEY": "not-" + key}),
        )
        assert refused.returncode == 77, refused.stderr
    finally:
        assert daemon.stop() == 0, daemon.output()
    output = daemon.output()
    assert "embedded-server.env" in output
    assert key not in output
    assert not os.path.exists(path)  # removed with the embedded state folder
