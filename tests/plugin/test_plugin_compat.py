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
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
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
    assert ftrack_api.session is importlib.import_module("reviewd.api.session")
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
        importlib.import_module("ftrack_api.no_such_module")
    assert caught.value.name == "ftrack_api.no_such_module"
    import ftrack_api

    with pytest.raises(AttributeError, match="no_such_thing"):
        ftrack_api.exception.no_such_thing  # noqa: B018


#: Every public module of ftrack-python-api 3.1.0.
FTRACK_API_MODULES = [
    "ftrack_api",
    "ftrack_api.session",
    "ftrack_api.entity",
    "ftrack_api.entity.base",
    "ftrack_api.entity.factory",
    "ftrack_api.entity.asset_version",
    "ftrack_api.entity.component",
    "ftrack_api.entity.job",
    "ftrack_api.entity.location",
    "ftrack_api.entity.note",
    "ftrack_api.entity.project_schema",
    "ftrack_api.entity.user",
    "ftrack_api.attribute",
    "ftrack_api.collection",
    "ftrack_api.cache",
    "ftrack_api.query",
    "ftrack_api.operation",
    "ftrack_api.symbol",
    "ftrack_api.exception",
    "ftrack_api.inspection",
    "ftrack_api.data",
    "ftrack_api.formatter",
    "ftrack_api.logging",
    "ftrack_api.plugin",
    "ftrack_api.event",
    "ftrack_api.event.base",
    "ftrack_api.event.expression",
    "ftrack_api.event.hub",
    "ftrack_api.event.subscriber",
    "ftrack_api.event.subscription",
    "ftrack_api.accessor",
    "ftrack_api.accessor.base",
    "ftrack_api.accessor.disk",
    "ftrack_api.accessor.server",
    "ftrack_api.structure",
    "ftrack_api.structure.base",
    "ftrack_api.structure.entity_id",
    "ftrack_api.structure.id",
    "ftrack_api.structure.origin",
    "ftrack_api.structure.standard",
    "ftrack_api.resource_identifier_transformer",
    "ftrack_api.resource_identifier_transformer.base",
]


@pytest.mark.parametrize("name", FTRACK_API_MODULES)
def test_every_ftrack_api_module_is_the_same_named_reviewd_api_module(aliases, name):
    module = importlib.import_module(name)
    counterpart = "reviewd.api" + name[len("ftrack_api") :]
    assert module is importlib.import_module(counterpart)
    # aliasing does not rename reviewd's module
    assert module.__name__ == counterpart and module.__spec__.name == counterpart


def test_ftrack_api_names_tests_and_plugins_use_exist(aliases):
    import ftrack_api
    import ftrack_api.cache
    import ftrack_api.event.expression
    import ftrack_api.structure.id

    assert callable(ftrack_api.mixin)
    assert ftrack_api.cache.Memoiser().call(lambda x: x * 2, (21,)) == 42
    for name in ("All", "Any", "Not", "Condition", "Parser", "Expression"):
        assert hasattr(ftrack_api.event.expression, name)
    assert issubclass(ftrack_api.structure.id.IdStructure, ftrack_api.structure.base.Structure)
    assert ftrack_api.symbol.SERVER_LOCATION_ID == "3a372bde-05bc-11e4-8908-20c9d081909b"


def _fake_real_package(tmp_path):
    fake = tmp_path / "site"
    write_plugin(fake, "ftrack_api/__init__.py", "class Session:\n    pass\nREAL = True\n")
    write_plugin(fake, "ftrack_api/session.py", "from ftrack_api import Session\n")
    return fake


GUARDED_PLUGIN = """
    import ftrack_api

    def register(session, **kw):
        if not isinstance(session, ftrack_api.Session):
            return
        session.event_hub.subscribe("topic=ftrack.update", print)
"""

_HOST_SCRIPT = """
    import json, logging, sys
    records = []
    class Keep(logging.Handler):
        def emit(self, record):
            records.append((record.name, record.getMessage()))
    logging.getLogger().addHandler(Keep())
    logging.getLogger().setLevel(logging.INFO)
    from reviewd import compat
    from reviewd.plugin import PluginHost
    import reviewd.api.session

    class Subscriber:
        def __init__(self, subscription):
            self.id, self.subscription, self.priority = subscription, subscription, 100
    class Hub:
        subscribers = []
        def subscribe(self, subscription, callback, **kw):
            self.subscribers.append(Subscriber(subscription))
    class FakeSession(reviewd.api.session.Session):
        def __init__(self):
            self._hub = Hub()
        @property
        def event_hub(self):
            return self._hub
        def __del__(self):
            pass

    host = PluginHost(FakeSession(), [PLUGINS], entry_points=False, ftrack_api=MODE)
    host.load_all()
    import ftrack_api
    print(json.dumps({"installed": compat.installed(), "real": getattr(ftrack_api, "REAL", False),
                      "subscriptions": {r.name: len(r.subscriptions) for r in host.plugins},
                      "logs": records}))
"""


def _host_run(tmp_path, mode):
    fake = _fake_real_package(tmp_path)
    plugins = tmp_path / "plugins"
    write_plugin(plugins, "guarded.py", GUARDED_PLUGIN)
    script = _HOST_SCRIPT.replace("PLUGINS", repr(str(plugins))).replace("MODE", repr(mode))
    result = _run(script, pythonpath=[str(fake)])
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_with_the_real_package_installed_plugins_get_reviewds_ftrack_api_by_default(tmp_path):
    report = _host_run(tmp_path, "reviewd")
    assert report["installed"] is True
    assert report["real"] is False  # the plugin imported reviewd's ftrack_api
    assert report["subscriptions"] == {"guarded": 1}  # so its guard let the session in


def test_setting_installed_gives_plugins_the_real_package_and_names_the_guarded_plugin(tmp_path):
    report = _host_run(tmp_path, "installed")
    assert report["installed"] is False
    assert report["real"] is True
    assert report["subscriptions"] == {"guarded": 0}
    guard = [m for name, m in report["logs"] if name == "reviewd.compat" and "'guarded'" in m]
    assert len(guard) == 1 and "isinstance(session, ftrack_api.Session)" in guard[0]


@pytest.mark.parametrize(
    "source",
    [
        "import ftrack_api\nisinstance(s, ftrack_api.Session)",
        "import ftrack_api\nisinstance(s, ftrack_api.session.Session)",
        "import ftrack_api.session\nisinstance(s, ftrack_api.session.Session)",
        "import ftrack_api as fa\nisinstance(s, fa.Session)",
        "import ftrack_api.session as fs\nisinstance(s, fs.Session)",
        "from ftrack_api import Session\nisinstance(s, Session)",
        "from ftrack_api import Session as FS\nisinstance(s, FS)",
        "from ftrack_api.session import Session\nisinstance(s, Session)",
        "from ftrack_api import session\nisinstance(s, session.Session)",
        "import ftrack_api\nisinstance(s, (dict, ftrack_api.Session))",
    ],
)
def test_guard_detector_recognises_every_spelling(source):
    assert compat.guard_lines(source) == [2]


@pytest.mark.parametrize(
    "source",
    [
        "import reviewd\nisinstance(s, reviewd.Session)",
        "class Session: pass\nisinstance(s, Session)",
        "import ftrack_api\nisinstance(s, ftrack_api.Event)",
        "this is not python",
    ],
)
def test_guard_detector_ignores_other_checks(source):
    assert compat.guard_lines(source) == []


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
