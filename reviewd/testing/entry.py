"""The ``pytest11`` entry point: does nothing unless a project asks for the fixtures.

pytest loads every installed ``pytest11`` entry point in every project, so this module
only declares the ``reviewd_fixtures`` ini option and, when a project sets it, loads
:mod:`reviewd.testing`; any other project pays for importing this small module and
nothing more.  ``pytest_plugins = ["reviewd.testing"]`` or ``-p reviewd.testing`` load
the same plugin without the option.
"""

from __future__ import annotations

import pytest

PLUGIN = "reviewd.testing"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "reviewd_fixtures",
        type="bool",
        default=False,
        help="load reviewd's fixtures (ftrack_server, ftrack_session, "
        "reviewd_plugin, emit, ftrack_changes, wait_for)",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getini("reviewd_fixtures"):
        config.pluginmanager.import_plugin(PLUGIN)
