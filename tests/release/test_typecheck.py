"""The type checker, as CI runs it: mypy with the configuration in ``pyproject.toml``.

Strict on the client package ``reviewd/api/`` (what editors complete for
``reviewd.Session``), default mode on the rest of ``reviewd/``.  Running it as a test
puts it inside README's one test command, so CI cannot skip it.  A private cache folder
keeps parallel runs from sharing (and racing on) the checkout's ``.mypy_cache``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.release.conftest import REPO

IGNORE = re.compile(r"#\s*type:\s*ignore(?P<codes>\[[^\]]*\])?")


def test_mypy_reports_no_errors(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy-cache")],
        cwd=str(REPO),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("Success: no issues found"), result.stdout


def test_every_type_ignore_names_its_error_code() -> None:
    """A bare ``# type: ignore`` silences every error on its line, including ones added
    later; each ignore must name the code it is for (mypy's ``ignore-without-code`` too,
    but this also covers files mypy is not configured to check)."""
    bare = []
    for path in sorted((REPO / "reviewd").rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            match = IGNORE.search(line)
            if match and not match.group("codes"):
                bare.append(f"{path.relative_to(REPO)}:{number}")
    assert bare == []


SNIPPET = """\
import reviewd


def handle(session: reviewd.Session) -> None:
    reveal_type(session.query("Task").first())
    reveal_type(session.query("Task").all())
    reveal_type(session.get("Task", "1"))
    reveal_type(session.event_hub)
"""


def test_a_script_using_the_public_api_sees_its_types(tmp_path: Path) -> None:
    """What an editor or a user's own mypy run sees through ``py.typed``: a script
    annotated with ``reviewd.Session`` (the lazily imported name) checks in strict mode
    and gets entities, not ``Any``, back from queries."""
    script = tmp_path / "script.py"
    script.write_text(SNIPPET)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--follow-imports=silent",
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            str(script),
        ],
        cwd=str(REPO),
        capture_output=True,
        text=True,
        timeout=600,
    )
    revealed = re.findall(r'Revealed type is "([^"]+)"', result.stdout)
    # Module paths inside reviewd.api may move; the types may not degrade to Any.
    patterns = [
        r"reviewd\.api\.[\w.]+\.Entity \| None",
        r"list\[reviewd\.api\.[\w.]+\.Entity\]",
        r"reviewd\.api\.[\w.]+\.Entity \| None",
        r"reviewd\.api\.[\w.]+\.EventHub",
    ]
    assert len(revealed) == len(patterns), result.stdout
    for pattern, found in zip(patterns, revealed, strict=True):
        assert re.fullmatch(pattern, found), (pattern, found)
    assert "error" not in result.stdout, result.stdout
