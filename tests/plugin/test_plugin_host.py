"""The daemon's plugin host: kinds, names, attribution, isolation, strict mode, reload."""

from __future__ import annotations

import datetime
import logging
import os
import sys

import pytest

from reviewd.api.exception import PluginError
from reviewd.plugin import PluginHost
from reviewd.plugin.registry import PluginHealth, RetryPolicy
from tests.plugin.plugin_support import LocalSession, write_plugin

PLUGGY = """
    import reviewd
    from reviewd.plugin.registry import RetryPolicy

    SEEN = []

    def on_verdict(event):
        SEEN.append(event["data"])
        return "{reply}"

    @reviewd.hookimpl
    def reviewd_register(registry, arguments, name):
        SEEN.append(("arguments", name, dict(arguments)))
        registry.subscribe("topic=review.verdict", on_verdict, priority=5, concurrency=3,
                           timeout=12.5, retry=RetryPolicy(max_attempts=2))
"""

CLASSIC = """
    def register(session, **kw):
        session.event_hub.subscribe("topic=review.classic", lambda event: "{reply}")
"""


def _host(session, *paths, **options):
    options.setdefault("entry_points", False)
    host = PluginHost(session, [str(p) for p in paths], **options)
    host.load_all()
    return host


def _hub_expressions(session):
    return sorted(s.subscription for s in session.event_hub.subscribers)


def test_pluggy_plugin_declares_subscriptions_with_options_and_gets_its_arguments(tmp_path):
    write_plugin(tmp_path, "verdicts.py", PLUGGY.format(reply="v1"))
    session = LocalSession()
    host = _host(
        session,
        tmp_path,
        arguments={"studio": "north", "channel": "#all"},
        plugin_arguments={"verdicts": {"channel": "#verdicts"}, "other": {"x": 1}},
    )

    record = host.loaded["verdicts"]
    assert record.kind == "pluggy" and record.origin == "path"
    assert record.module.SEEN == [
        ("arguments", "verdicts", {"studio": "north", "channel": "#verdicts"})
    ]
    (subscription,) = record.subscriptions
    assert subscription.origin == "hook"
    options = subscription.options
    assert (options.priority, options.concurrency, options.timeout) == (5, 3, 12.5)
    assert options.retry == RetryPolicy(max_attempts=2)
    assert host.owner_of(subscription.subscriber_id) is subscription
    assert [s.id for s in session.event_hub.subscribers] == [subscription.subscriber_id]
    assert session.deliver("review.verdict", {"status": "approved"}) == ["v1"]
    assert record.module.SEEN[-1] == {"status": "approved"}


def test_a_module_with_both_register_and_hooks_is_both(tmp_path):
    write_plugin(tmp_path, "both.py", PLUGGY.format(reply="hook") + CLASSIC.format(reply="classic"))
    session = LocalSession()
    host = _host(session, tmp_path)
    record = host.loaded["both"]
    assert record.kind == "classic+pluggy"
    assert sorted((s.origin, s.expression) for s in record.subscriptions) == [
        ("hook", "topic=review.verdict"),
        ("register", "topic=review.classic"),
    ]
    assert {host.owner_of(s.id).plugin for s in session.event_hub.subscribers} == {"both"}


def test_duplicate_names_are_an_error_naming_both_paths(tmp_path):
    first = write_plugin(tmp_path / "one", "notify.py", CLASSIC.format(reply="one"))
    second = write_plugin(tmp_path / "two", "notify.py", CLASSIC.format(reply="two"))
    session = LocalSession()
    host = _host(session, tmp_path / "one", tmp_path / "two")
    loaded, failed = host.plugins
    assert loaded.loaded and loaded.path == os.path.realpath(first)
    assert not failed.loaded and first in failed.error and second in failed.error
    assert session.deliver("review.classic") == ["one"]
    with pytest.raises(PluginError, match="two plugins are named 'notify'"):
        _host(LocalSession(), tmp_path / "one", tmp_path / "two", strict=True)


def test_the_same_file_is_never_imported_twice_under_different_names(tmp_path):
    path = write_plugin(tmp_path / "real", "once.py", CLASSIC.format(reply="once"))
    os.makedirs(tmp_path / "links")
    os.symlink(path, tmp_path / "links" / "alias.py")
    session = LocalSession()
    host = _host(session, tmp_path / "real", tmp_path / "links")
    assert [r.name for r in host.plugins] == ["once"]
    assert session.deliver("review.classic") == ["once"]


BROKEN = {
    "syntax.py": "def register(session:\n",
    "raising.py": "def register(session):\n    raise RuntimeError('no database')\n",
    "bad_expression.py": """
        import reviewd

        @reviewd.hookimpl
        def reviewd_register(registry):
            registry.subscribe("topic=review.fine", print)
            registry.subscribe("topic=review and (", print)
    """,
    "unknown_hook.py": """
        import reviewd

        @reviewd.hookimpl
        def reviewd_startd(session):
            pass
    """,
    "bad_hook_arguments.py": """
        import reviewd

        @reviewd.hookimpl
        def reviewd_started(session, colour):
            pass
    """,
    "bad_options.py": """
        import reviewd

        @reviewd.hookimpl
        def reviewd_register(registry):
            registry.subscribe("topic=review.x", print, concurrency=0)
    """,
}


def test_broken_plugins_are_reported_and_skipped_while_the_others_load(tmp_path, caplog):
    for name, source in BROKEN.items():
        write_plugin(tmp_path, name, source)
    write_plugin(tmp_path, "healthy.py", CLASSIC.format(reply="fine"))
    session = LocalSession()

    with caplog.at_level(logging.ERROR, logger="reviewd.plugin"):
        host = _host(session, tmp_path)

    assert list(host.loaded) == ["healthy"]
    errors = {r.name: r.error for r in host.failures}
    assert set(errors) == {name[:-3] for name in BROKEN}
    assert "SyntaxError" in errors["syntax"]
    assert "RuntimeError: no database" in errors["raising"]
    assert "invalid subscription 'topic=review and ('" in errors["bad_expression"]
    assert "unknown hook 'reviewd_startd'" in errors["unknown_hook"]
    assert "colour" in errors["bad_hook_arguments"]
    assert "concurrency must be an integer >= 1" in errors["bad_options"]
    assert _hub_expressions(session) == ["topic=review.classic"]
    for name in errors:
        assert any(f"plugin '{name}'" in r.getMessage() for r in caplog.records)
    health = host.health()
    assert health["healthy"].ready and not health["raising"].ready


def test_strict_mode_fails_with_one_line_and_unloads_everything(tmp_path):
    write_plugin(tmp_path, "good.py", CLASSIC.format(reply="good"))
    write_plugin(tmp_path, "raising.py", BROKEN["raising.py"])
    session = LocalSession()
    host = PluginHost(session, [str(tmp_path)], strict=True, entry_points=False)
    with pytest.raises(PluginError) as caught:
        host.load_all()
    message = str(caught.value)
    assert "\n" not in message
    assert "plugin 'raising'" in message and "no database" in message and "strict" in message
    assert session.event_hub.subscribers == [] and host.loaded == {}


def test_reload_swaps_the_handler(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", False)  # "old"/"new": same size, same second
    path = write_plugin(tmp_path, "swap.py", CLASSIC.format(reply="old"))
    session = LocalSession()
    host = _host(session, tmp_path)
    (old_subscription,) = host.loaded["swap"].subscriptions
    assert session.deliver("review.classic") == ["old"]

    write_plugin(tmp_path, "swap.py", CLASSIC.format(reply="new"))
    host.reload("swap")

    assert session.deliver("review.classic") == ["new"]
    assert host.owner_of(old_subscription.subscriber_id) is None
    assert len(session.event_hub.subscribers) == 1
    assert host.loaded["swap"].path == os.path.realpath(path)


def test_reload_of_broken_code_keeps_the_running_version(tmp_path):
    write_plugin(tmp_path, "keep.py", CLASSIC.format(reply="running"))
    session = LocalSession()
    host = _host(session, tmp_path)
    write_plugin(tmp_path, "keep.py", "def register(session:\n")
    with pytest.raises(PluginError, match="previous version keeps running"):
        host.reload("keep")
    assert host.loaded["keep"].loaded
    assert session.deliver("review.classic") == ["running"]


def test_reload_of_a_package_plugin_reimports_its_submodules(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", False)  # as in production: caches on
    write_plugin(
        tmp_path,
        "pkg/__init__.py",
        """
        from . import reply

        def register(session):
            session.event_hub.subscribe("topic=review.pkg", lambda e: reply.TEXT)
    """,
    )
    write_plugin(tmp_path, "pkg/reply.py", "TEXT = 'one'\n")
    session = LocalSession()
    host = _host(session, tmp_path)
    assert session.deliver("review.pkg") == ["one"]
    # same size, very likely the same second: a bytecode cache would serve stale code
    write_plugin(tmp_path, "pkg/reply.py", "TEXT = 'two'\n")
    host.reload("pkg")
    assert session.deliver("review.pkg") == ["two"]


def test_unload_removes_subscriptions_and_calls_stopping(tmp_path):
    write_plugin(
        tmp_path,
        "life.py",
        """
        import reviewd

        EVENTS = []

        @reviewd.hookimpl
        def reviewd_register(registry):
            registry.subscribe("topic=review.life", lambda e: "alive")

        @reviewd.hookimpl
        def reviewd_started(session):
            EVENTS.append("started")

        @reviewd.hookimpl
        def reviewd_stopping(session):
            EVENTS.append("stopping")
    """,
    )
    write_plugin(tmp_path, "other.py", CLASSIC.format(reply="other"))
    session = LocalSession()
    host = _host(session, tmp_path)
    module = host.loaded["life"].module
    host.started()
    assert session.deliver("review.life") == ["alive"]

    host.unload("life")

    assert module.EVENTS == ["started", "stopping"]
    assert session.deliver("review.life") == []
    assert _hub_expressions(session) == ["topic=review.classic"]
    assert "life" not in host.loaded
    with pytest.raises(PluginError, match="no plugin named 'life'"):
        host.unload("life")


def test_lifecycle_health_metrics_and_gap_hooks_are_isolated_per_plugin(tmp_path):
    write_plugin(
        tmp_path,
        "a_fragile.py",
        """
        import reviewd

        @reviewd.hookimpl
        def reviewd_started(session):
            raise RuntimeError("cannot start")

        @reviewd.hookimpl
        def reviewd_health(session):
            raise RuntimeError("cannot tell")

        @reviewd.hookimpl
        def reviewd_hub_gap(gap_start, gap_end):
            raise RuntimeError("cannot reconcile")
    """,
    )
    write_plugin(
        tmp_path,
        "b_sturdy.py",
        """
        import prometheus_client
        import reviewd

        CALLS = []
        VERDICTS = prometheus_client.Counter("sturdy_verdicts", "verdicts seen", registry=None)

        @reviewd.hookimpl
        def reviewd_started(session):
            CALLS.append("started")

        @reviewd.hookimpl
        def reviewd_health(session):
            return {"ready": False, "problems": ["slack token expired"]}

        @reviewd.hookimpl
        def reviewd_prometheus_collectors():
            return [VERDICTS]

        @reviewd.hookimpl
        def reviewd_hub_gap(session, gap_start, gap_end):
            CALLS.append(("gap", gap_start, gap_end))
    """,
    )
    write_plugin(tmp_path, "c_quiet.py", CLASSIC.format(reply="quiet"))
    host = _host(LocalSession(), tmp_path)
    sturdy = host.loaded["b_sturdy"].module

    outcomes = host.started()
    assert [(o.plugin, type(o.error).__name__ if o.error else None) for o in outcomes] == [
        ("a_fragile", "RuntimeError"),
        ("b_sturdy", None),
    ]
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    end = start + datetime.timedelta(minutes=3)
    host.hub_gap(start, end)
    assert sturdy.CALLS == ["started", ("gap", start, end)]

    health = host.health()
    assert health["a_fragile"] == PluginHealth(
        False, ("health hook raised RuntimeError: cannot tell",)
    )
    assert health["b_sturdy"] == PluginHealth(False, ("slack token expired",))
    assert health["c_quiet"] == PluginHealth(True, ())
    assert host.collectors() == {"b_sturdy": [sturdy.VERDICTS]}


def test_world_writable_path_is_refused_by_the_host_and_fatal_in_strict_mode(tmp_path, caplog):
    shared = tmp_path / "shared"
    write_plugin(shared, "evil.py", CLASSIC.format(reply="evil"))
    os.chmod(shared, 0o777)
    session = LocalSession()
    with caplog.at_level(logging.ERROR, logger="reviewd.plugin"):
        host = _host(session, shared)
    assert host.plugins == [] and session.event_hub.subscribers == []
    assert len(host.problems) == 1 and "world-writable" in host.problems[0]
    assert any(
        str(shared) in r.getMessage() and "world-writable" in r.getMessage() for r in caplog.records
    )
    with pytest.raises(PluginError, match="world-writable"):
        _host(LocalSession(), shared, strict=True)
    allowed = _host(LocalSession(), shared, allow_world_writable=True)
    assert list(allowed.loaded) == ["evil"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (True, PluginHealth(True)),
        ("disk full", PluginHealth(False, ("disk full",))),
        ([], PluginHealth(True)),
        (["a", "b"], PluginHealth(False, ("a", "b"))),
        ({"ready": True}, PluginHealth(True)),
        ({"problems": ["x"]}, PluginHealth(False, ("x",))),
    ],
)
def test_health_values_a_hook_may_return(value, expected):
    assert PluginHealth.coerce(value) == expected


def test_a_plugin_whose_new_register_fails_is_left_failed_and_recovers_on_the_next_reload(tmp_path):
    write_plugin(tmp_path, "flaky.py", CLASSIC.format(reply="v1"))
    session = LocalSession()
    host = _host(session, tmp_path)

    write_plugin(tmp_path, "flaky.py", BROKEN["raising.py"])
    record = host.reload("flaky")
    assert not record.loaded and "no database" in record.error
    assert session.event_hub.subscribers == [] and host.subscriptions == []
    assert not host.health()["flaky"].ready

    write_plugin(tmp_path, "flaky.py", CLASSIC.format(reply="v2"))
    assert host.reload("flaky").loaded
    assert session.deliver("review.classic") == ["v2"]
