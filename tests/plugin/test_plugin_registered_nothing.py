"""A classic plugin whose register() subscribed nothing is a load problem: it is
loaded, but its health is "not ready" with the reason, which the daemon's /readyz
and /status show (the daemon's readiness lists every plugin that is not ready)."""

from __future__ import annotations

from reviewd.plugin import PluginHost
from reviewd.plugin.host import REGISTERED_NOTHING
from tests.plugin.plugin_support import write_plugin
from tests.support import fresh_session

GUARDED_IDLE = """
    import ftrack_api as fa

    def register(session, **kw):
        if not isinstance(session, fa.Session):
            return
        if kw.get("enabled"):
            session.event_hub.subscribe("topic=ftrack.update", lambda event: None)
"""


def test_classic_plugin_without_subscriptions_is_not_ready_with_the_reason(devserver, tmp_path):
    write_plugin(tmp_path, "idle.py", GUARDED_IDLE)
    write_plugin(tmp_path, "busy.py", GUARDED_IDLE)
    session = fresh_session(devserver, schema_cache_path=False)
    try:
        host = PluginHost(
            session,
            [str(tmp_path)],
            plugin_arguments={"busy": {"enabled": True}},
            entry_points=False,
        )
        host.load_all()
        assert sorted(host.loaded) == ["busy", "idle"]
        health = host.health()
        assert health["busy"].ready is True
        assert health["idle"].ready is False
        (problem,) = health["idle"].problems
        assert problem.startswith(REGISTERED_NOTHING) and "likely cause" in problem
        assert any(w.startswith(REGISTERED_NOTHING) for w in host.get("idle").warnings)
    finally:
        session.close()
