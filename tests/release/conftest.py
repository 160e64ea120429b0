"""The release artefacts, built once per test session, and a venv that has only the wheel.

Building (sdist, then the wheel from the sdist, as ``python -m build`` does) and
installing the wheel with its dependencies into a new virtualenv are the slow parts
of this suite, so each happens once per pytest session and every release test shares
the result.  The venv lives under pytest's temporary folder, outside the source tree,
and every command in it runs with that folder as working directory and without
``PYTHONPATH``: nothing can quietly import the checkout instead of the wheel.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT = 600


def run(
    command: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = BUILD_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Run *command*, failing the test with its whole output when it exits non-zero."""
    result = subprocess.run(
        command, cwd=str(cwd), env=env, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} exited with {result.returncode}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
    return result


def isolated_env(**extra: str) -> dict[str, str]:
    """The environment for commands inside the wheel's venv: no path into the checkout,
    no ftrack or reviewd settings inherited from whoever runs the tests."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
        and not key.startswith(("FTRACK_", "REVIEWD_", "NOTIFY_SOCKET", "WATCHDOG_"))
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


@dataclass(frozen=True)
class Dists:
    sdist: Path
    wheel: Path


@dataclass(frozen=True)
class WheelVenv:
    """A virtualenv holding reviewd installed from the wheel, and a scratch folder."""

    root: Path
    work: Path

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def python(self) -> str:
        return str(self.bin / "python")

    @property
    def reviewd(self) -> str:
        return str(self.bin / "reviewd")

    def run(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        """Run a command from the venv's bin (``reviewd``, ``python``) in the scratch folder."""
        program, *rest = args
        return subprocess.run(
            [str(self.bin / program), *rest],
            cwd=str(self.work),
            env=isolated_env(**(env or {})),
            capture_output=True,
            text=True,
            timeout=timeout,
        )


@pytest.fixture(scope="session")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    """sdist and wheel from ``python -m build`` (isolated build, as a release would)."""
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", str(out), str(REPO)], cwd=out)
    sdists = sorted(out.glob("reviewd-*.tar.gz"))
    wheels = sorted(out.glob("reviewd-*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, sorted(p.name for p in out.iterdir())
    return Dists(sdist=sdists[0], wheel=wheels[0])


@pytest.fixture(scope="session")
def wheel_venv(dists: Dists, tmp_path_factory: pytest.TempPathFactory) -> WheelVenv:
    """A fresh venv outside the source tree with reviewd installed from the wheel only."""
    base = tmp_path_factory.mktemp("wheel-venv")
    root, work = base / "venv", base / "work"
    work.mkdir()
    assert REPO not in base.resolve().parents, "the venv must live outside the source tree"
    run([sys.executable, "-m", "venv", str(root)], cwd=work, env=isolated_env())
    run(
        [
            str(root / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            str(dists.wheel),
        ],
        cwd=work,
        env=isolated_env(),
    )
    return WheelVenv(root=root, work=work)
