"""Helpers shared by the plugin tests: loading plugin modules by path, polling."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from typing import TypeVar

from tests.support import wait_until

#: The plugins under test; REVIEWD_TEST_PLUGINS_DIR points the suite at a modified copy
#: (how the tests themselves were checked: each must fail against a broken plugin).
PLUGINS_DIR = os.environ.get("REVIEWD_TEST_PLUGINS_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", "..", "plugins")
)
T = TypeVar("T")


def load_plugin_module(name: str):
    """Import ``plugins/<name>.py`` as its own module (``plugins/`` is a plugin path,
    not a package, so it cannot be imported by dotted name)."""
    module_name = f"_reviewd_test_plugin_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(
        module_name, os.path.join(PLUGINS_DIR, f"{name}.py")
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def wait_for(
    probe: Callable[[], T], timeout: float = 10.0, interval: float = 0.1, what: str = ""
) -> T:
    """:func:`tests.support.wait_until` polling every 100 ms (each probe may be an
    HTTP round trip to the daemon or a query to the server), with *what* for *message*."""
    return wait_until(probe, timeout, interval, what)
