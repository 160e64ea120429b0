"""The plugin-path permission check covers the whole path (issue 14, finding 6).

Before the fix only the entry itself was checked for world-writability: a symlink into
a 0777 directory, a 0755 directory inside a 0777 parent, group-writable directories
and files owned by another user all loaded without a word.
"""

from __future__ import annotations

import os

import pytest

from reviewd.plugin.paths import find_candidates, unsafe_reason

PLUGIN = "def register(session, **kwargs):\n    pass\n"
OTHER_UID = 54321


def plugin_file(directory, name="plugin"):
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.py"
    path.write_text(PLUGIN)
    os.chmod(path, 0o644)
    return path


def refused(path) -> str:
    problems: list[str] = []
    assert find_candidates([str(path)], problems=problems) == []
    assert problems, "the refusal must be reported"
    return problems[0]


@pytest.fixture
def base(tmp_path):
    os.chmod(tmp_path, 0o755)
    return tmp_path


def test_safe_layout_loads(base):
    plugin_file(base / "plugins")
    assert [c.name for c in find_candidates([str(base / "plugins")])] == ["plugin"]


def test_symlinked_file_into_a_world_writable_directory_is_refused(base):
    shared = base / "shared"
    target = plugin_file(shared)
    os.chmod(shared, 0o777)
    plugins = base / "plugins"
    plugins.mkdir()
    os.symlink(target, plugins / "linked.py")
    message = refused(plugins / "linked.py")
    assert str(shared) in message and "world-writable" in message
    assert find_candidates([str(plugins)]) == []


def test_safe_directory_inside_a_world_writable_parent_is_refused(base):
    parent = base / "open"
    plugin_file(parent / "plugins")
    os.chmod(parent / "plugins", 0o755)
    os.chmod(parent, 0o777)
    message = refused(parent / "plugins")
    assert f"{parent} is world-writable" in message


def test_group_writable_directory_is_refused(base):
    plugins = base / "plugins"
    plugin_file(plugins)
    os.chmod(plugins, 0o775)
    assert "group-writable" in refused(plugins) and str(plugins) in refused(plugins)


def test_group_writable_file_is_refused(base):
    path = plugin_file(base / "plugins")
    os.chmod(path, 0o664)
    assert "group-writable" in refused(path)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown a file to another user")
def test_file_owned_by_another_user_is_refused(base):
    path = plugin_file(base / "plugins")
    os.chown(path, OTHER_UID, -1)
    message = refused(path)
    assert str(path) in message and f"uid {OTHER_UID}" in message


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown a directory")
def test_directory_owned_by_another_user_is_refused(base):
    plugins = base / "plugins"
    plugin_file(plugins)
    os.chown(plugins, OTHER_UID, -1)
    assert f"uid {OTHER_UID}" in refused(plugins)


def test_sticky_shared_directory_like_tmp_is_accepted(base):
    sticky = base / "sticky"
    sticky.mkdir()
    os.chmod(sticky, 0o1777)
    path = plugin_file(sticky / "mine")
    os.chmod(sticky / "mine", 0o755)
    assert unsafe_reason(str(path)) is None


def test_allow_world_writable_is_the_explicit_escape_hatch(base):
    plugins = base / "plugins"
    plugin_file(plugins)
    os.chmod(plugins, 0o777)
    assert find_candidates([str(plugins)], allow_world_writable=True)
