"""Classic ftrack discovery: ``reviewd.plugin.discover`` as a Session calls it."""

from __future__ import annotations

import logging
import os

import pytest

from reviewd.api.exception import register_secret
from reviewd.plugin import cull_arguments, discover, find_candidates, split_plugin_paths
from tests.plugin.plugin_support import LocalSession, write_plugin

RECORDING = """
    CALLS = []

    def register({signature}):
        CALLS.append({record})
"""


def _by_name(records):
    return {r.name: r for r in records}


def test_loads_modules_and_packages_and_attributes_their_subscriptions(tmp_path):
    write_plugin(
        tmp_path,
        "alpha.py",
        """
        def register(session, **kw):
            session.event_hub.subscribe("topic=review.alpha", lambda event: "alpha")
    """,
    )
    write_plugin(
        tmp_path,
        "beta/__init__.py",
        """
        from .handlers import on_beta

        def register(session):
            session.event_hub.subscribe("topic=review.beta", on_beta, priority=10)
    """,
    )
    write_plugin(
        tmp_path,
        "beta/handlers.py",
        """
        def on_beta(event):
            return "beta:" + event["data"]["x"]
    """,
    )
    session = LocalSession()

    records = _by_name(discover([str(tmp_path)], [session]))

    assert set(records) == {"alpha", "beta"}  # handlers.py is part of the package, not a plugin
    assert all(r.error is None and r.kind == "classic" for r in records.values())
    hub_ids = {s.id: s.subscription for s in session.event_hub.subscribers}
    for name, topic in (("alpha", "topic=review.alpha"), ("beta", "topic=review.beta")):
        (subscription,) = records[name].subscriptions
        assert subscription.plugin == name
        assert subscription.origin == "register"
        assert hub_ids[subscription.subscriber_id] == topic
    assert records["beta"].subscriptions[0].options.priority == 10
    assert session.deliver("review.beta", {"x": "1"}) == ["beta:1"]


def test_register_arguments_are_culled_to_the_signature(tmp_path, caplog):
    write_plugin(tmp_path, "no_kwargs.py", RECORDING.format(signature="session", record="{}"))
    write_plugin(
        tmp_path,
        "some_kwargs.py",
        RECORDING.format(
            signature="session, channel=None, *, retries=1",
            record="dict(channel=channel, retries=retries)",
        ),
    )
    write_plugin(
        tmp_path, "all_kwargs.py", RECORDING.format(signature="session, **kw", record="kw")
    )
    session = LocalSession()
    arguments = {"channel": "#review", "retries": 3, "colour": "red"}

    with caplog.at_level(logging.WARNING, logger="reviewd.plugin"):
        records = _by_name(discover([str(tmp_path)], [session], arguments))

    calls = {name: record.module.CALLS for name, record in records.items()}
    assert calls == {
        "no_kwargs": [{}],
        "some_kwargs": [{"channel": "#review", "retries": 3}],
        "all_kwargs": [arguments],
    }
    warnings = {r.getMessage() for r in caplog.records if r.levelno == logging.WARNING}
    no_kwargs = [w for w in warnings if "'no_kwargs'" in w]
    some_kwargs = [w for w in warnings if "'some_kwargs'" in w]
    assert len(no_kwargs) == 1 and all(
        k in no_kwargs[0] for k in ("'channel'", "'retries'", "'colour'")
    )
    assert (
        len(some_kwargs) == 1 and "'colour'" in some_kwargs[0] and "'channel'" not in some_kwargs[0]
    )
    assert not [w for w in warnings if "'all_kwargs'" in w]


@pytest.mark.parametrize(
    ("signature", "positional", "keyword", "expected"),
    [
        ("def f(session): ...", ("s",), {"a": 1}, (("s",), {}, ["a"])),
        ("def f(session, a=0): ...", ("s",), {"a": 1, "b": 2}, (("s",), {"a": 1}, ["b"])),
        ("def f(session, **kw): ...", ("s",), {"a": 1}, (("s",), {"a": 1}, [])),
        ("def f(*args, **kw): ...", ("s", "t"), {"a": 1}, (("s", "t"), {"a": 1}, [])),
        ("def f(): ...", ("s",), {}, ((), {}, ["<positional 0>"])),
        # a keyword naming a parameter already filled positionally would be a TypeError
        ("def f(session, **kw): ...", ("s",), {"session": 2}, (("s",), {}, ["session"])),
        ("def f(session, *, only=0): ...", ("s",), {"only": 5}, (("s",), {"only": 5}, [])),
    ],
)
def test_cull_arguments(signature, positional, keyword, expected):
    namespace = {}
    exec(signature, namespace)
    assert cull_arguments(namespace["f"], positional, keyword) == expected


def test_broken_plugins_are_reported_and_skipped_and_leave_nothing_behind(tmp_path, caplog):
    write_plugin(tmp_path, "a_syntax.py", "def register(session:\n")
    write_plugin(
        tmp_path,
        "b_raises.py",
        """
        def register(session):
            session.event_hub.subscribe("topic=review.half", lambda e: None)
            raise RuntimeError("database unreachable")
    """,
    )
    write_plugin(
        tmp_path,
        "c_bad_expression.py",
        """
        def register(session):
            session.event_hub.subscribe("topic=review.ok", lambda e: None)
            session.event_hub.subscribe("topic=review and (", lambda e: None)
    """,
    )
    write_plugin(
        tmp_path,
        "d_good.py",
        """
        def register(session):
            session.event_hub.subscribe("topic=review.good", lambda e: "good")
    """,
    )
    session = LocalSession()

    with caplog.at_level(logging.ERROR, logger="reviewd.plugin"):
        records = _by_name(discover([str(tmp_path)], [session]))

    assert records["d_good"].error is None
    assert "SyntaxError" in records["a_syntax"].error and "line 1" in records["a_syntax"].error
    assert "RuntimeError: database unreachable" in records["b_raises"].error
    assert records["c_bad_expression"].error.startswith("register() raised")
    # the half-registered plugins' subscriptions were rolled back
    assert [s.subscription for s in session.event_hub.subscribers] == ["topic=review.good"]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for name in ("a_syntax", "b_raises", "c_bad_expression"):
        assert f"plugin '{name}'" in logged
        assert os.path.join(str(tmp_path), f"{name}.py") in logged


def test_a_module_without_register_is_warned_about(tmp_path, caplog):
    write_plugin(tmp_path, "helper.py", "VALUE = 1\n")
    with caplog.at_level(logging.WARNING, logger="reviewd.plugin"):
        (record,) = discover([str(tmp_path)], [LocalSession()])
    assert record.error is None and record.kind == "none"
    assert any(
        "'helper'" in r.getMessage() and "register()" in r.getMessage() for r in caplog.records
    )


def test_each_discovery_registers_afresh_for_its_session(tmp_path):
    write_plugin(
        tmp_path,
        "counter.py",
        """
        def register(session):
            session.event_hub.subscribe("topic=review.count", lambda e: id(session))
    """,
    )
    first, second = LocalSession(), LocalSession()
    (a,) = discover([str(tmp_path)], [first])
    (b,) = discover([str(tmp_path)], [second])
    assert a.module is not b.module
    assert first.deliver("review.count") == [id(first)]
    assert second.deliver("review.count") == [id(second)]


def test_subdirectories_are_searched_and_overlapping_paths_load_once(tmp_path):
    write_plugin(
        tmp_path,
        "team/nested.py",
        "def register(session):\n    session.hits = getattr(session, 'hits', 0) + 1\n",
    )
    write_plugin(
        tmp_path,
        ".hidden/secret.py",
        "def register(session):\n    raise SystemExit('must not load')\n",
    )
    write_plugin(tmp_path, "__init__.py", "raise SystemExit('package glue must not load')\n")
    session = LocalSession()
    records = discover([str(tmp_path), str(tmp_path / "team"), ""], [session])
    assert [r.name for r in records] == ["nested"]
    assert session.hits == 1


def test_split_plugin_paths():
    value = os.pathsep.join(["/a", "", " /b "])
    assert split_plugin_paths(value) == ["/a", "/b"]
    assert split_plugin_paths(None) == []


def test_world_writable_directory_is_refused_with_a_clear_log_line(tmp_path, caplog):
    shared = tmp_path / "shared"
    write_plugin(shared, "evil.py", "def register(session):\n    session.ran = True\n")
    os.chmod(shared, 0o777)
    session = LocalSession()
    with caplog.at_level(logging.ERROR, logger="reviewd.plugin"):
        assert discover([str(shared)], [session]) == []
    assert not hasattr(session, "ran")
    (line,) = [r.getMessage() for r in caplog.records if "world-writable" in r.getMessage()]
    assert str(shared) in line and "chmod o-w" in line

    problems = []
    assert find_candidates([str(shared)], allow_world_writable=True, problems=problems)
    assert problems == []


def test_world_writable_file_is_refused(tmp_path):
    path = write_plugin(tmp_path, "open.py", "def register(session):\n    session.ran = True\n")
    write_plugin(tmp_path, "closed.py", "def register(session):\n    session.closed = True\n")
    os.chmod(path, 0o666)
    problems = []
    assert [c.name for c in find_candidates([str(tmp_path)], problems=problems)] == ["closed"]
    assert len(problems) == 1 and path in problems[0]


def test_the_api_key_never_reaches_a_load_error(tmp_path, caplog):
    key = "plugin-test-secret-4f1c9d"
    register_secret(key)
    write_plugin(
        tmp_path,
        "leaky.py",
        f"""
        def register(session):
            raise ValueError("cannot authenticate with {key}")
    """,
    )
    with caplog.at_level(logging.DEBUG, logger="reviewd.plugin"):
        (record,) = discover([str(tmp_path)], [LocalSession()])
    assert "cannot authenticate with ***" in record.error
    assert key not in record.error and key not in record.traceback
    assert key not in caplog.text
