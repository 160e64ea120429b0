"""Acceptance: ``docs/plugin-guide.md``'s commands, run word for word, in order.

The guide marks its runnable blocks with an info string: ```` ```sh test ```` blocks
run in one bash session (so ``cd`` and the activated venv carry over), a
```` ```sh test-background ```` block (one command: ``reviewd --foreground``) is
started in the background and must become ready; the blocks after it run while it
runs, and it must then report that it reloaded the edited plugin.

Only the environment is arranged: reviewd is not on the package index, so a wheel of
this tree is put where ``pip install 'reviewd[testing]'`` finds it (``PIP_FIND_LINKS``);
the daemon's HTTP listener gets a free port and JSON logs (through ``REVIEWD_*``
variables, not the command) so the test can read them.  Everything else — the venv,
the install from the index mirror, the scaffold, the plugin's install and test run —
is real.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import require
from tests.support import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "plugin-guide.md"
BLOCK = re.compile(r"^```sh (test|test-background)\n(.*?)^```", re.M | re.S)


def guide_blocks() -> list[tuple[str, str]]:
    return [(kind, body) for kind, body in BLOCK.findall(GUIDE.read_text())]


def build_wheel(folder: Path) -> Path:
    """A wheel of this tree (built from a copy, leaving the tree untouched)."""
    source = folder / "src"
    source.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "reviewd", source / "reviewd", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    wheels = folder / "wheels"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    require(result.returncode == 0, f"cannot build a reviewd wheel: {result.stderr}")
    return wheels


def user_env(wheels: Path, home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FTRACK_", "REVIEWD_", "PYTHON", "VIRTUAL_ENV", "PYTEST"))
    }
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if p and not p.startswith(str(ROOT))
    )
    links = " ".join(filter(None, [os.environ.get("PIP_FIND_LINKS", ""), str(wheels)]))
    env.update(
        PIP_FIND_LINKS=links,
        REVIEWD_LOG_FORMAT="json",
        REVIEWD_HTTP=f"127.0.0.1:{free_port()}",
        KIT_BG_LOG=str(home / "daemon.log"),
    )
    return env


WAIT_LOG = r"""
kit_wait_log() {
  local deadline=$((SECONDS + 120))
  until grep -q "$1" "$KIT_BG_LOG"; do
    if ! kill -0 "$KIT_BG_PID" 2>/dev/null; then
      echo "guide test: the background command exited before logging $1" >&2; exit 98
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "guide test: timed out waiting for $1 in the daemon log" >&2; exit 97
    fi
    sleep 0.1
  done
}
"""


def script_of(blocks: list[tuple[str, str]]) -> str:
    lines = ["set -euo pipefail", WAIT_LOG]
    background = False
    for kind, body in blocks:
        if kind == "test-background":
            commands = [c for c in body.strip().splitlines() if c.strip()]
            assert len(commands) == 1, "a background block holds exactly one command"
            lines += [
                f'{commands[0]} > "$KIT_BG_LOG" 2>&1 &',
                "KIT_BG_PID=$!",
                "trap 'kill -TERM $KIT_BG_PID 2>/dev/null; wait $KIT_BG_PID || true' EXIT",
                'kit_wait_log \'"event": "ready"\'',
            ]
            background = True
        else:
            lines.append(body)
    if background:
        lines.append('kit_wait_log \'"event": "plugin reloaded"\'')
    return "\n".join(lines) + "\n"


def test_kit_guide_blocks_are_the_expected_journey():
    commands = " ; ".join(body for _kind, body in guide_blocks())
    for step in (
        "pip install 'reviewd[testing]'",
        "reviewd new-plugin my_plugin",
        "pip install -e .",
        "pytest",
        "reviewd --foreground",
    ):
        assert step in commands, step
    assert [kind for kind, _ in guide_blocks()].count("test-background") == 1


def test_kit_guide_commands_run_word_for_word(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    wheels = build_wheel(tmp_path / "build")
    env = user_env(wheels, home)
    script = script_of(guide_blocks())
    (home / "guide.sh").write_text(script)
    started = time.monotonic()
    result = subprocess.run(
        ["bash", str(home / "guide.sh")],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    took = time.monotonic() - started
    log = Path(env["KIT_BG_LOG"]).read_text() if Path(env["KIT_BG_LOG"]).exists() else ""
    report = (
        f"exit {result.returncode} after {took:.0f}s\n--- stdout\n{result.stdout}\n"
        f"--- stderr\n{result.stderr}\n--- daemon log (tail)\n{log[-4000:]}"
    )
    if result.returncode != 0 and "Could not find a version" in result.stderr:
        require(False, f"the package index mirror is unreachable: {result.stderr[-500:]}")
    assert result.returncode == 0, report
    assert "1 passed" in result.stdout, report
    # `reviewd plugins list`: the installed package, found through its entry point
    assert re.search(
        r"^my_plugin +\[pluggy, loaded\] +entry point my_plugin = my_plugin", result.stdout, re.M
    ), report
    assert '"event": "plugin reloaded"' in log and "my_plugin" in log, report
    print(f"guide commands ran in {took:.1f}s (script: {shlex.quote(str(home / 'guide.sh'))})")
