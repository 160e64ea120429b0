"""Run the official ``ftrack-python-api`` client as a subprocess peer.

The official client pins ``websocket-client<1`` while reviewd needs ``>=1``, so it lives
in its own virtualenv, built once and cached under ``.cache/peer-venv`` (git-ignored).
Tests hand it a script and read a JSON document back from its last stdout line.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

PEER_REQUIREMENT = "ftrack-python-api==3.1.0"
ROOT = Path(__file__).resolve().parent.parent
PEER_VENV = ROOT / ".cache" / "peer-venv"


def peer_python() -> Path:
    """Return the peer virtualenv's interpreter, creating the venv the first time.

    Several pytest-xdist workers may ask at once: an exclusive lock on a file beside the
    venv makes one of them build it while the others wait, then find the marker.
    """
    python = PEER_VENV / "bin" / "python"
    marker = PEER_VENV / ".installed"
    if _installed(marker):
        return python
    PEER_VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(PEER_VENV.parent / "peer-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if _installed(marker):
            return python
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(PEER_VENV)], check=True)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                PEER_REQUIREMENT,
            ],
            check=True,
        )
        marker.write_text(PEER_REQUIREMENT)
    return python


def _installed(marker: Path) -> bool:
    return marker.exists() and marker.read_text().strip() == PEER_REQUIREMENT


class PeerError(AssertionError):
    pass


def run_peer(script: str, *, env: dict | None = None, timeout: float = 120, args=()) -> object:
    """Run *script* under the peer interpreter and return the JSON of its last stdout line.

    The script should ``print(json.dumps(result))`` as its final act.  A non-zero exit
    raises :class:`PeerError` with the peer's stderr, so failures read like the peer's
    own traceback.
    """
    completed = start_peer(script, env=env, args=args, wait=True, timeout=timeout)
    if completed.returncode != 0:
        raise PeerError(
            f"peer exited {completed.returncode}\n--- stdout\n{completed.stdout}\n--- stderr\n{completed.stderr}"
        )
    lines = [line for line in completed.stdout.splitlines() if line.strip()]
    if not lines:
        raise PeerError(f"peer printed nothing\n--- stderr\n{completed.stderr}")
    return json.loads(lines[-1])


def start_peer(script: str, *, env=None, args=(), wait=False, timeout=120):
    """Start the peer; with ``wait`` return a CompletedProcess, else a Popen (text mode)."""
    python = peer_python()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FTRACK_")}
    full_env["PYTHONUNBUFFERED"] = "1"
    full_env.update(env or {})
    cmd = [str(python), "-c", textwrap.dedent(script), *args]
    if wait:
        return subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=timeout)
    return subprocess.Popen(
        cmd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def peer_env(server, **extra) -> dict:
    """The FTRACK_* environment that points the peer at a running DevServer."""
    env = {
        "FTRACK_SERVER": server.url,
        "FTRACK_API_USER": server.api_user,
        "FTRACK_API_KEY": server.api_key,
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env
