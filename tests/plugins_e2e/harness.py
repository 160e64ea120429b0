"""The end-to-end harness: the real ``reviewd`` process against a DevServer, a webhook
receiver, an event recorder, and the small steps a test takes as a user would."""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable

from tests.plugins_e2e.helpers import PLUGINS_DIR, wait_for
from tests.support import free_port, fresh_session, http_get, stop_process, wait_process_ready  # noqa: F401 - re-exported for the tests

README = os.path.join(PLUGINS_DIR, "README.md")
REVIEWD = os.path.join(os.path.dirname(sys.executable), "reviewd")


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))


class Daemon:
    """A ``reviewd`` process against a DevServer, with its HTTP endpoints and log."""

    def __init__(self, server, workdir, paths, plugin_arguments) -> None:
        self.server = server
        self.port = free_port()
        self.log_path = os.path.join(workdir, "reviewd.log")
        config = os.path.join(workdir, "reviewd.toml")
        lines = [
            "[server]",
            f"url = {toml_value(server.url)}",
            f"user = {toml_value(server.api_user)}",
            "[plugins]",
            f"paths = {toml_value(paths)}",
        ]
        for plugin, arguments in plugin_arguments.items():
            lines.append(f"[plugin.{plugin}]")
            lines += [f"{key} = {toml_value(value)}" for key, value in arguments.items()]
        with open(config, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        env = dict(os.environ, FTRACK_API_KEY=server.api_key, REVIEWD_STATE_DIR=str(workdir))
        env.pop("REVIEWD_CONFIG", None)
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [
                REVIEWD,
                "--config",
                config,
                "--http",
                f"127.0.0.1:{self.port}",
                "--journal",
                os.path.join(workdir, "journal.sqlite3"),
                "--log-format",
                "json",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(workdir),
        )

    def get(self, path: str):
        """The decoded JSON of ``GET path`` (the text of ``/metrics``); raises ``OSError``
        unless the daemon answers 2xx."""
        code, body = http_get(f"http://127.0.0.1:{self.port}{path}")
        if not 200 <= code < 300:
            raise OSError(f"GET {path}: {code or 'no answer'} {body}")
        return json.loads(body) if path != "/metrics" else body

    def wait_ready(self, timeout: float = 30.0, ready: bool = True) -> None:
        """Wait for ``/readyz`` to answer 200 or, with *ready* False, for start-up to
        finish (``/status`` says running) whatever readiness says."""

        def answers() -> bool:
            try:
                if not ready:
                    return self.get("/status")["state"] == "running"
                self.get("/readyz")
                return True
            except (OSError, ValueError):
                return False

        wait_process_ready(self.process, answers, self.log, timeout, 0.1, "reviewd /readyz")

    def plugins(self) -> dict:
        return self.get("/status")["plugins"]

    def handled(self, plugin: str) -> int:
        """Deliveries the plugin finished (succeeded or failed for good)."""
        return self.plugins()[plugin]["handled"]

    def wait_handled(self, plugin: str, at_least: int, timeout: float = 15.0) -> None:
        wait_for(
            lambda: self.handled(plugin) >= at_least,
            timeout,
            what=f"{plugin} to handle {at_least} deliveries",
        )

    def counter(self, plugin: str, action: str) -> float:
        """A plugin's own ``reviewd_plugin_<plugin>_actions_total{action=...}``, 0 if absent."""
        pattern = re.compile(
            rf'^reviewd_plugin_{plugin}_actions_total\{{action="{action}"\}} (\S+)$', re.M
        )
        match = pattern.search(self.get("/metrics"))
        return float(match.group(1)) if match else 0.0

    def log(self) -> str:
        self._log.flush()
        with open(self.log_path) as handle:
            return handle.read()

    def stop(self) -> None:
        stop_process(self.process, 20)
        self._log.close()


class Webhook:
    """A chat tool's incoming webhook: records every JSON POST it receives."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        received = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                length = int(self.headers.get("content-length") or 0)
                received.append(
                    {
                        "path": self.path,
                        "content_type": self.headers.get("content-type"),
                        "body": json.loads(self.rfile.read(length) or b"null"),
                    }
                )
                self.send_response(200)
                self.send_header("content-type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hooks/review"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Recorder:
    """A second hub on the server recording ``ftrack.update`` events, so a test can
    deliver exactly the same events again."""

    def __init__(self, server) -> None:
        from reviewd.api.event.hub import EventHub

        self.events: list = []
        self.hub = EventHub(server.url, server.api_user, server.api_key, dispatch_thread=True)
        self.hub.subscribe("topic=ftrack.update", self.events.append)
        self.hub.connect(wait=True, timeout=10)
        wait_for(lambda: self.hub.subscribed, 10, what="recorder subscription")

    def matching(self, predicate: Callable[[dict], bool]) -> list:
        return [
            event
            for event in list(self.events)
            if any(predicate(entity) for entity in event["data"].get("entities", []))
        ]

    def close(self) -> None:
        self.hub.disconnect()


def redeliver(server, event) -> None:
    """Deliver *event* again as the server would (same topic, data and source; a new
    id, as after a journal loss or a server-side resend: the daemon's id-based
    deduplication must not be what saves the plugin)."""
    server.emit(event["topic"], dict(event["data"]), source=dict(event["source"]))


def emit(server, topic, data):
    """``reviewd devserver emit TOPIC --data JSON --wait-reply S``: the pretend web UI."""
    result = subprocess.run(
        [
            REVIEWD,
            "devserver",
            "emit",
            topic,
            "--data",
            json.dumps(data),
            "--wait-reply",
            "15",
            "--server",
            server.url,
            "--api-user",
            server.api_user,
        ],
        env=dict(os.environ, FTRACK_API_KEY=server.api_key),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    reply = json.loads(result.stdout)
    return reply.get("data", reply) if "topic" in reply else reply


def readme_examples(directory) -> list[str]:
    """Write the README's two example plugins into *directory*; return their names."""
    with open(README) as handle:
        text = handle.read()
    names = []
    for block in re.findall(r"```python\n(.*?)```", text, re.S):
        first = block.splitlines()[0]
        match = re.match(r"# plugins/(\w+)\.py", first)
        assert match, f"README example must start with '# plugins/NAME.py': {first!r}"
        (directory / f"{match.group(1)}.py").write_text(block)
        names.append(match.group(1))
    return names
