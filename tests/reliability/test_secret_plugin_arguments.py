"""Secret plugin arguments never show (issue 14, finding 7).

Before the fix a plugin argument such as ``api_token`` appeared verbatim in logs, in
``/status`` ``last_error`` and in dead letters when the plugin's error quoted it.
"""

from __future__ import annotations

import pytest

from reviewd.daemon import config as config_module
from tests.daemon.daemon_harness import DaemonProcess, service_env, wait_for, write_plugin
from tests.daemon.test_daemon_acceptance_start import wait_subscribed
from tests.daemon.test_daemon_config import run_cli

LEAKY = """
    import logging

    def register(session, api_token=None, db_password=None, vault_secret=None, mirror_key=None,
                 site=None, custom=None, **kwargs):
        logging.getLogger("leaky").warning("connecting with %s %s %s %s %s",
                                           api_token, db_password, vault_secret, mirror_key, custom)

        def on_event(event):
            raise RuntimeError(f"login failed for {api_token}/{db_password}/{vault_secret}"
                               f"/{mirror_key}/{custom} at {site}")
        session.event_hub.subscribe("topic=test.leak", on_event)
"""

SECRETS = ["tok-AAAA-1111", "pw-BBBB-2222", "sec-CCCC-3333", "key-DDDD-4444", "cus-EEEE-5555"]


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("api_key", True),
        ("mirror_key", True),
        ("API_TOKEN", True),
        ("tokens", True),
        ("db_password", True),
        ("client_secret", True),
        ("site", False),
        ("keyframe", False),
    ],
)
def test_secret_argument_names(name, secret):
    assert config_module.is_secret_argument(name) is secret


def test_secret_arguments_are_redacted_in_logs_status_and_dead_letters(tmp_path, devserver):
    plugins = tmp_path / "plugins"
    write_plugin(plugins, "leaky", LEAKY)
    config = tmp_path / "reviewd.toml"
    config.write_text(
        '[plugins]\nsecret_arguments = ["custom"]\n'
        "[plugin.leaky]\n"
        f'api_token = "{SECRETS[0]}"\ndb_password = "{SECRETS[1]}"\n'
        f'vault_secret = "{SECRETS[2]}"\nmirror_key = "{SECRETS[3]}"\ncustom = "{SECRETS[4]}"\n'
        'site = "studio-east"\n'
    )
    env = service_env(
        devserver,
        FTRACK_EVENT_PLUGIN_PATH=str(plugins),
        REVIEWD_MAX_ATTEMPTS="1",
        REVIEWD_JOURNAL=str(tmp_path / "journal.sqlite3"),
    )
    daemon = DaemonProcess(tmp_path, ["--config", str(config)], env=env)
    try:
        daemon.wait_ready()
        wait_subscribed(devserver, "test.leak")
        devserver.emit("test.leak", {})
        wait_for(lambda: daemon.status().get("dead_letters"), message="the dead letter")
        status_text = daemon.get("/status")[1]
        assert "studio-east" in status_text  # not a secret: shown, proving the text is there
        assert "***" in status_text
    finally:
        assert daemon.stop() == 0, daemon.output()
    output = daemon.output()
    assert "connecting with" in output
    # The dead letter as stored in the journal, read by a process that knows no secrets.
    listing = run_cli(
        "journal", "list", env={"REVIEWD_JOURNAL": str(tmp_path / "journal.sqlite3")}, cwd=tmp_path
    )
    for secret in SECRETS:
        assert secret not in status_text
        assert secret not in output
        assert secret not in listing.stdout
    assert "leaky" in listing.stdout
