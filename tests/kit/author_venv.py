"""A plugin author's virtualenv: reviewd installed from this tree as a user installs it.

Built once under ``.cache/kit-venv`` (git-ignored) and refreshed whenever reviewd's
sources change (a hash of them is kept beside it), so the acceptance tests always run
today's code without paying for a whole new environment each run.  reviewd is installed
from a *copy* of the tree (a non-editable wheel build, as ``pip install reviewd`` does),
never editable: a plugin author's reviewd is an installed package.  What the tests
install into it (the scaffolded plugins) is uninstalled again by
:func:`uninstall_plugins`, and each test holds the venv alone (:func:`exclusive`), so
tests never see each other's plugins.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".cache" / "kit-venv"
STAMP = VENV / ".reviewd-source-hash"
PIP_QUIET = ["--disable-pip-version-check", "-q"]


def source_hash() -> str:
    digest = hashlib.sha256()
    files = [ROOT / "pyproject.toml", ROOT / "README.md"]
    files += sorted(
        p for p in (ROOT / "reviewd").rglob("*") if p.is_file() and "__pycache__" not in p.parts
    )
    for path in files:
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def clean_env(venv: Path = VENV, **extra: str) -> dict[str, str]:
    """The environment of a user's shell with *venv* activated: no reviewd/ftrack
    settings, no PYTHONPATH pointing into this tree."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FTRACK_", "REVIEWD_", "PYTHON", "VIRTUAL_ENV", "PYTEST"))
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    env.update(extra)
    return env


@contextmanager
def exclusive():
    """Hold the venv for one test's whole install-test-uninstall sequence.

    Why: the daemon loads every installed plugin, so a plugin another test (another
    pytest-xdist worker) installed meanwhile would act on this test's events too; and
    two pip runs must not write one environment at once.
    """
    with _locked():
        yield VENV


@contextmanager
def _locked():
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(VENV.parent / "kit-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _run(*command: str | os.PathLike) -> None:
    result = subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, env=clean_env(), timeout=900
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(map(str, command))} failed:\n{result.stdout}\n{result.stderr}"
        )


def author_venv() -> Path:
    """The venv's folder, with today's reviewd[testing] installed in it."""
    with _locked():
        wanted = source_hash()
        python = VENV / "bin" / "python"
        if not python.exists():
            _run(sys.executable, "-m", "venv", "--clear", VENV)
        elif STAMP.exists() and STAMP.read_text() == wanted:
            return VENV
        with tempfile.TemporaryDirectory(prefix="reviewd-src-") as copy:
            source = Path(copy) / "reviewd-src"
            source.mkdir()
            for name in ("pyproject.toml", "README.md"):
                shutil.copy2(ROOT / name, source / name)
            shutil.copytree(
                ROOT / "reviewd",
                source / "reviewd",
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            )
            # --force-reinstall --no-deps: the same version number, new code.
            _run(python, "-m", "pip", "install", *PIP_QUIET, f"{source}[testing]")
            _run(
                python,
                "-m",
                "pip",
                "install",
                *PIP_QUIET,
                "--no-deps",
                "--force-reinstall",
                str(source),
            )
        STAMP.write_text(wanted)
        return VENV


def uninstall_plugins(*distributions: str) -> None:
    """Remove plugin packages a test installed into the shared venv (call it inside
    :func:`exclusive`)."""
    _run(VENV / "bin" / "python", "-m", "pip", "uninstall", "-y", *PIP_QUIET, *distributions)
