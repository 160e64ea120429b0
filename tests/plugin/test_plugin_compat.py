"""The ftrack_api import shim: unedited plugins import reviewd's own classes."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap

import pytest

import reviewd.api.event.base
import reviewd.api.exception
import reviewd.api.symbol
from reviewd import compat
from tests.plugin.plugin_support import write_plugin

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(code: str, *, pythonpath: list[str] = ()) -> subprocess.CompletedProcess:
    """Run *code* in a fresh interpreter so sys.modules and sys.meta_path start clean."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([ROOT, *pythonpath])
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=60,
    )


@pytest.fixture
def aliases():
    if compat.real_ftrack_api_available():
        pytest.fail("a real ftrack_api is importable from the test environment")
    assert compat.install() is True
    yield
    # leave the hook installed (other tests' plugins may rely on it) but forget the
    # modules so each test imports them afresh
    for name in [n for n in sys.modules if n == "ftrack_api" or n.startswith("ftrack_api.")]:
        del sys.modules[name]


def test_ftrack_api_names_resolve_to_reviewd_objects(aliases):
    import ftrack_api
    import ftrack_api.event.base
    from ftrack_api.symbol import NOT_SET

    assert ftrack_api.event.base.Event is reviewd.api.event.base.Event
    assert ftrack_api.exception.NotFoundError is reviewd.api.exception.NotFoundError
    assert ftrack_api.exception.Error is reviewd.api.exception.Error
    assert ftrack_api.exception.AttributeError is reviewd.api.exception.AttributeError_
    assert NOT_SET is reviewd.api.symbol.NOT_SET
    assert ftrack_api.symbol.COMPONENT_ADDED_TO_LOCATION_TOPIC == "ftrack.location.component-added"
    # reviewd's own modules are not renamed by the aliasing
    assert reviewd.api.exception.__name__ == "reviewd.api.exception"
    assert reviewd.api.exception.__spec__.name == "reviewd.api.exception"


def test_session_alias_is_reviewds_session(aliases):
    try:
        session_module = importlib.import_module("reviewd.api.session")
    except ImportError:
        pytest.fail("reviewd.api.session is not available yet")
    import ftrack_api

    assert ftrack_api.Session is session_module.Session


def test_missing_pieces_fail_with_a_clear_message(aliases):
    with pytest.raises(ModuleNotFoundError, match="reviewd stands in for ftrack_api") as caught:
        importlib.import_module("ftrack_api.accessor.disk")
    assert caught.value.name == "ftrack_api.accessor"
    import ftrack_api

    with pytest.raises(AttributeError, match="has no attribute 'no_such_thing'"):
        ftrack_api.exception.no_such_thing  # noqa: B018


def test_real_ftrack_api_is_left_alone_with_one_warning_naming_the_guarded_plugin(tmp_path):
    fake = tmp_path / "site"
    write_plugin(fake, "ftrack_api/__init__.py", "class Session:\n    pass\nREAL = True\n")
    plugins = tmp_path / "plugins"
    write_plugin(plugins, "guarded.py", """
        import ftrack_api

        def register(session, **kw):
            if not isinstance(session, ftrack_api.Session):
                return
            session.event_hub.subscribe("topic=ftrack.update", print)
    """)
    write_plugin(plugins, "unguarded.py", "def register(session):\n    pass\n")
    result = _run(f"""
        import json, logging, sys
        records = []
        class Keep(logging.Handler):
            def emit(self, record):
                records.append((record.name, record.getMessage()))
        logging.getLogger().addHandler(Keep())
        logging.getLogger().setLevel(logging.INFO)
        from reviewd import compat
        from reviewd.plugin import PluginHost

        class Hub:
            subscribers = []
        class FakeSession:
            event_hub = Hub()

        first, second = compat.install(), compat.install()
        host = PluginHost(FakeSession(), [{str(plugins)!r}], entry_points=False)
        host.load_all()
        import ftrack_api
        print(json.dumps({{"installed": [first, second], "real": getattr(ftrack_api, "REAL", False),
                          "loaded": sorted(host.loaded), "logs": records}}))
    """, pythonpath=[str(fake)])
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["installed"] == [False, False]
    assert report["real"] is True
    assert report["loaded"] == ["guarded", "unguarded"]
    warnings = [message for name, message in report["logs"] if name == "reviewd.compat"]
    assert len([w for w in warnings if "leaving it alone" in w]) == 1
    guard = [w for w in warnings if "checks isinstance(session, ftrack_api.Session)" in w]
    assert len(guard) == 1 and "'guarded'" in guard[0]
    assert not [w for w in warnings if "'unguarded'" in w]


def test_uninstall_removes_the_hook():
    result = _run("""
        import importlib, sys
        from reviewd import compat
        assert compat.install() and compat.installed()
        import ftrack_api.exception
        compat.uninstall()
        assert not compat.installed() and "ftrack_api" not in sys.modules
        try:
            importlib.import_module("ftrack_api")
        except ModuleNotFoundError:
            print("gone")
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "gone"
