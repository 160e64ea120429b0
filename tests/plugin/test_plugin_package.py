"""``reviewd.plugin`` is a package of small modules; its import point must not move.

The daemon, the Session, ``reviewd plugins`` and third-party code import these
names from ``reviewd.plugin``; splitting the module must not break any of them.
"""

from __future__ import annotations

import logging
import subprocess
import sys

import reviewd
import reviewd.plugin

PUBLIC = [
    "ENTRY_POINT_GROUP",
    "PROJECT_NAME",
    "Candidate",
    "HookOutcome",
    "PluginHost",
    "PluginRecord",
    "cull_arguments",
    "discover",
    "find_candidates",
    "hookimpl",
    "import_candidate",
    "run_classic_register",
    "split_plugin_paths",
]


def test_every_public_name_is_importable_from_reviewd_plugin():
    assert sorted(reviewd.plugin.__all__) == sorted(PUBLIC)
    for name in PUBLIC:
        assert getattr(reviewd.plugin, name) is not None, name
    assert (
        reviewd.plugin.discover.__module__ == "reviewd.plugin.discovery"
    )  # a function, not a module
    assert reviewd.plugin.ENTRY_POINT_GROUP == "reviewd.plugins"
    assert reviewd.plugin.PROJECT_NAME == "reviewd"


def test_reviewd_hookimpl_is_the_plugin_marker():
    assert reviewd.hookimpl is reviewd.plugin.hookimpl
    assert reviewd.hookimpl.project_name == "reviewd"


def test_ftrack_api_plugin_resolves_to_the_package_under_compat():
    """An unedited ftrack plugin's ``import ftrack_api.plugin`` finds ftrack's module path
    in reviewd (``reviewd.api.plugin``), whose ``discover`` runs reviewd's loader."""
    code = (
        "from reviewd import compat; assert compat.install()\n"
        "import ftrack_api.plugin, reviewd.api.plugin\n"
        "assert ftrack_api.plugin is reviewd.api.plugin\n"
        "import inspect\n"
        "assert 'reviewd.plugin.discovery' in inspect.getsource(ftrack_api.plugin.discover)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_the_loader_logs_on_one_logger(tmp_path, caplog):
    """Operators filter the loader by ``reviewd.plugin``, whichever module speaks."""
    (tmp_path / "broken.py").write_text("def register(:\n")
    (tmp_path / "picky.py").write_text("def register(session):\n    pass\n")
    with caplog.at_level(logging.DEBUG, logger="reviewd.plugin"):
        reviewd.plugin.discover([str(tmp_path)], [object()], {"unknown": 1})
    names = {record.name for record in caplog.records}
    messages = " | ".join(record.getMessage() for record in caplog.records)
    assert "failed to load" in messages and "dropped it" in messages
    assert names == {"reviewd.plugin"}
