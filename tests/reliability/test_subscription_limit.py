"""Subscriptions past the server's limit make their plugin not ready (issue 14, finding 8).

Before the fix the server's refusal was an error line only: ``/readyz`` stayed 200 and
the plugin looked healthy while it missed every event its refused subscriptions named.
"""

from __future__ import annotations

import json

from tests.daemon.daemon_harness import DaemonProcess, service_env, wait_for, write_plugin

GREEDY = """
    def register(session, **kwargs):
        for n in range(1010):
            session.event_hub.subscribe(f"topic=greedy.{n}", lambda event: None)
"""

MODEST = """
    def register(session, **kwargs):
        session.event_hub.subscribe("topic=modest.one", lambda event: None)
"""


def test_refused_subscriptions_make_readyz_503_naming_the_plugin(tmp_path, devserver):
    plugins = tmp_path / "plugins"
    write_plugin(plugins, "greedy", GREEDY)
    write_plugin(plugins, "a_modest", MODEST)  # loads first: within the limit
    env = service_env(devserver, FTRACK_EVENT_PLUGIN_PATH=str(plugins))
    daemon = DaemonProcess(tmp_path, [], env=env)
    try:

        def refused_reason():
            code, body = daemon.get("/readyz")
            if code != 503 or not body:
                return None
            reasons = json.loads(body)["reasons"]
            return next((r for r in reasons if "refused by the event server" in r), None)

        def refused_count(reason):
            return int(reason.split(": ", 1)[1].split(" ", 1)[0])

        # The refusals arrive one acknowledgement at a time: wait until all of them did
        # (1010 asked for, the server allows 1000 per connection).
        reason = wait_for(
            lambda: (r := refused_reason()) and refused_count(r) >= 10 and r,
            timeout=60,
            message="every refusal in /readyz",
        )
        assert reason.startswith("plugin greedy not ready:")
        assert "too many subscriptions" in reason
        body = json.loads(daemon.get("/readyz")[1])
        assert not any("a_modest" in r for r in body["reasons"])
    finally:
        assert daemon.stop() == 0, daemon.output()
