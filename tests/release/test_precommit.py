"""``pre-commit run --all-files`` passes on a fresh clone.

A contributor's first commit after cloning runs these hooks; CI runs the same checks.
The clone is simulated by copying exactly what git would give a new clone of the
working tree (tracked files plus new files not ignored) into a new repository, so the
result cannot depend on local caches, the venv or build output in the checkout.  The
hooks are local ones using the venv's tools, so the test needs no network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.release.conftest import REPO

pytestmark = pytest.mark.slow


def fresh_copy(target: Path) -> Path:
    """The working tree as a new clone would hold it, committed in a new repository."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=str(REPO),
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file() and not source.is_symlink():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    git = ["git", "-c", "user.name=release-test", "-c", "user.email=release@test.invalid"]
    subprocess.run([*git, "init", "-q"], cwd=str(target), check=True)
    subprocess.run([*git, "add", "-A"], cwd=str(target), check=True)
    subprocess.run([*git, "commit", "-q", "-m", "fresh clone"], cwd=str(target), check=True)
    return target


def test_pre_commit_passes_on_a_fresh_clone(tmp_path: Path) -> None:
    clone = fresh_copy(tmp_path / "clone")
    venv_bin = os.path.dirname(sys.executable)
    env = {
        **os.environ,
        "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
        "MYPY_CACHE_DIR": str(tmp_path / "mypy-cache"),
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pre_commit",
            "run",
            "--all-files",
            "--show-diff-on-failure",
            "--color",
            "never",
        ],
        cwd=str(clone),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr
    for hook in ("ruff (lint)", "ruff (format)", "mypy"):
        assert any(
            line.startswith(hook) and line.rstrip().endswith("Passed")
            for line in result.stdout.splitlines()
        ), result.stdout
