"""``reviewd new-plugin``: what it writes, and its clear refusals (the package's own
test passing in a fresh venv is ``test_kit_new_plugin_venv.py``)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from reviewd.plugin.scaffold import main, write_plugin

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


def reviewd(*arguments, cwd):
    result = subprocess.run(
        [sys.executable, "-m", "reviewd.daemon.cli", *arguments],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode, result.stdout, result.stderr


def test_kit_scaffold_writes_a_package_with_entry_point_and_fixtures(tmp_path):
    code, out, err = reviewd("new-plugin", "shot_notes", cwd=tmp_path)
    assert code == 0, err
    assert "cd shot_notes && pip install -e . && pytest" in out
    root = tmp_path / "shot_notes"
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) == [
        "README.md",
        "pyproject.toml",
        "src/shot_notes/__init__.py",
        "tests/test_shot_notes.py",
    ]
    project = tomllib.loads((root / "pyproject.toml").read_text())
    assert project["project"]["entry-points"]["reviewd.plugins"] == {"shot_notes": "shot_notes"}
    assert project["tool"]["pytest"]["ini_options"]["reviewd_fixtures"] is True
    test = (root / "tests" / "test_shot_notes.py").read_text()
    assert 'reviewd_plugin("shot_notes"' in test and "ftrack_changes.set_status" in test
    compile((root / "src" / "shot_notes" / "__init__.py").read_text(), "plugin", "exec")
    compile(test, "test", "exec")


def test_kit_scaffold_classic_style(tmp_path):
    root = write_plugin("legacy", tmp_path / "legacy", classic=True)
    source = (root / "src" / "legacy" / "__init__.py").read_text()
    assert "import ftrack_api" in source and "def register(session" in source
    assert "import reviewd" not in source and "from reviewd" not in source
    assert "ftrack_api_session" in (root / "tests" / "test_legacy.py").read_text()


@pytest.mark.parametrize("name", ["My-Plugin", "2fast", "class", "my plugin"])
def test_kit_scaffold_refuses_bad_names_with_a_suggestion(tmp_path, name, capsys):
    assert main([name, "--directory", str(tmp_path / "x")]) == 2
    message = capsys.readouterr().err
    assert message.startswith("reviewd new-plugin: plugin name") and "e.g. '" in message
    assert not (tmp_path / "x").exists()


def test_kit_scaffold_never_overwrites(tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.txt").write_text("keep me")
    assert main(["taken", "--directory", str(tmp_path / "taken")]) == 73
    assert "already exists and is not empty" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["mine.txt"]
