"""Acceptance 3: a pluggy plugin installed as a distribution, found by its entry point.

The distribution is built and installed for real, offline: a tiny project with its
own PEP 517 build backend (so neither network nor the ``wheel`` package is needed)
is installed by pip with ``--target`` into a temporary directory that the test then
puts on ``sys.path``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from reviewd.plugin import PluginHost
from tests.conftest import require
from tests.plugin.plugin_support import LocalSession, wait_until

BACKEND = '''
    """A minimal PEP 517 backend: one module, one dist-info, one entry point."""
    import base64
    import hashlib
    import os
    import zipfile

    DIST = "reviewd_approval_bell-1.0"
    MODULE = "reviewd_approval_bell.py"
    INFO = DIST + ".dist-info"
    TEXT = {
        INFO + "/METADATA": "Metadata-Version: 2.1\\nName: reviewd-approval-bell\\nVersion: 1.0\\n",
        INFO + "/WHEEL": "Wheel-Version: 1.0\\nGenerator: bell\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
        INFO + "/entry_points.txt": "[reviewd.plugins]\\napproval_bell = reviewd_approval_bell\\n",
    }


    def _digest(data):
        return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


    def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
        with open(os.path.join(os.path.dirname(__file__), MODULE), "rb") as handle:
            files = {MODULE: handle.read()}
        files.update({name: text.encode() for name, text in TEXT.items()})
        name = DIST + "-py3-none-any.whl"
        record = [f"{path},sha256={_digest(data)},{len(data)}" for path, data in files.items()]
        record.append(INFO + "/RECORD,,")
        with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as wheel:
            for path, data in files.items():
                wheel.writestr(path, data)
            wheel.writestr(INFO + "/RECORD", "\\n".join(record) + "\\n")
        return name
'''

PYPROJECT = """
    [build-system]
    requires = []
    build-backend = "bell_backend"
    backend-path = ["."]
"""

PLUGIN = '''
    """Rings when a review verdict arrives: replies with the bell text."""
    import reviewd

    RUNG = []


    def ring(event):
        RUNG.append(event["data"])
        return {"bell": "ding", "for": event["data"].get("version")}


    @reviewd.hookimpl
    def reviewd_register(registry, arguments):
        registry.subscribe("topic=review.bell", ring, concurrency=2, timeout=5)
'''


@pytest.fixture(scope="module")
def installed_site(tmp_path_factory):
    root = tmp_path_factory.mktemp("approval-bell")
    project, site = root / "project", root / "site"
    project.mkdir()
    for name, text in (
        ("bell_backend.py", BACKEND),
        ("pyproject.toml", PYPROJECT),
        ("reviewd_approval_bell.py", PLUGIN),
    ):
        (project / name).write_text(textwrap.dedent(text).lstrip())
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "--quiet",
            "--target",
            str(site),
            str(project),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    require(
        result.returncode == 0, f"pip could not install the fixture distribution: {result.stderr}"
    )
    assert (site / "reviewd_approval_bell-1.0.dist-info" / "entry_points.txt").is_file()
    return str(site)


@pytest.fixture
def on_path(installed_site, monkeypatch):
    monkeypatch.syspath_prepend(installed_site)
    yield installed_site
    for name in [n for n in sys.modules if n.startswith("reviewd_approval_bell")]:
        del sys.modules[name]


def test_entry_point_plugin_is_discovered_and_its_subscription_fires(on_path):
    session = LocalSession()
    host = PluginHost(session, [], entry_points=True)
    host.load_all()

    record = host.loaded["approval_bell"]
    assert record.origin == "entry-point" and record.kind == "pluggy"
    assert "reviewd-approval-bell 1.0" in record.source
    assert record.path == os.path.join(os.path.realpath(on_path), "reviewd_approval_bell.py")
    (subscription,) = record.subscriptions
    assert (subscription.options.concurrency, subscription.options.timeout) == (2, 5)
    assert session.deliver("review.bell", {"version": "v3"}) == [{"bell": "ding", "for": "v3"}]


def test_without_entry_points_the_installed_plugin_is_not_loaded(on_path):
    host = PluginHost(LocalSession(), [], entry_points=False)
    host.load_all()
    assert "approval_bell" not in host.loaded


def test_the_installed_module_on_a_plugin_path_too_is_loaded_once(on_path):
    host = PluginHost(LocalSession(), [on_path], entry_points=True)
    host.load_all()
    names = [r.name for r in host.plugins if "approval_bell" in r.name]
    assert names == [
        "reviewd_approval_bell"
    ]  # the path copy came first; the entry point is skipped


def test_installed_plugin_fires_for_an_event_from_the_embedded_server(on_path, devserver):
    from reviewd.api.session import Session

    session = Session(
        server_url=devserver.url,
        api_user=devserver.api_user,
        api_key=devserver.api_key,
        plugin_paths=[],
        schema_cache_path=False,
        event_dispatch_thread=True,  # handlers run as events arrive, as in the daemon
    )
    try:
        host = PluginHost(session, [], entry_points=True)
        host.load_all()
        session.event_hub.connect(wait=True, timeout=30)
        reply = devserver.emit("review.bell", {"version": "v7"}, wait_reply=20)
        assert reply is not None and reply["data"] == {"bell": "ding", "for": "v7"}
        module = host.loaded["approval_bell"].module
        wait_until(lambda: module.RUNG)
        assert module.RUNG == [{"version": "v7"}]
    finally:
        session.close()
